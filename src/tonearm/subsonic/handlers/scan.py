"""Scanning: getScanStatus and startScan, over LibraryScans (domains/ingest/scans.py).

The library is filled by uploads (each processed as it arrives), by `tonearm import DIR`, and by
rescans of the server's music folder (`TONEARM_LIBRARY_DIR`), which an admin starts here. While a
scan runs, `count` is the files read so far; otherwise it is the songs the caller can play. OS
fields: `lastScan` (when the newest scan finished) and `folderCount` (1: one music folder).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tonearm.domains.catalog.tables import tracks
from tonearm.kernel.errors import BadRequest
from tonearm.subsonic.objects import visible_tracks
from tonearm.subsonic.protocol import GENERIC, Call, SubsonicError, iso, method


def _status(call: Call) -> dict[str, Any]:
    scan = call.c.scans.status()
    if scan["scanning"]:
        out: dict[str, Any] = {"scanning": True, "count": int(scan["done"])}
    else:
        with call.c.db.read() as conn:
            count = conn.execute(
                sa.select(sa.func.count()).select_from(tracks).where(visible_tracks(call.user_id))
            ).scalar_one()
        out = {"scanning": False, "count": int(count)}
    if call.os:
        out["folderCount"] = 1
        if scan.get("finished_at"):
            out["lastScan"] = iso(scan["finished_at"])
    return {"scanStatus": out}


@method("getScanStatus")
def get_scan_status(call: Call) -> dict[str, Any]:
    return _status(call)


@method("startScan")
def start_scan(call: Call) -> dict[str, Any]:
    call.require_admin()
    try:
        call.c.scans.start()
    except BadRequest as err:  # no music folder configured: say how music gets in instead
        raise SubsonicError(GENERIC, err.message) from None
    return _status(call)
