"""Playback grants: what a listener may play right now, as signed, short-lived URLs.

The grant is where entitlements are enforced: free listeners are capped at 160 kbps, premium gets
every rendition including a lossless original. (HLS, ads and skip limits build on this.)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from tonearm.domains.catalog.service import CatalogService, check_id
from tonearm.domains.catalog.tables import renditions, tracks
from tonearm.kernel.db import Database
from tonearm.kernel.errors import Forbidden, NotFound

FREE_MAX_KBPS = 160
TARGET_LUFS = -14.0  # what Spotify normalises to by default


@dataclass(frozen=True, slots=True)
class StreamTarget:
    blob_key: str
    content_type: str
    size_bytes: int


class StreamingService:
    def __init__(
        self,
        db: Database,
        catalog: CatalogService,
        secret_key: str,
        public_url: str,
        *,
        grant_ttl_s: int = 900,
    ):
        self.db = db
        self.catalog = catalog
        self._key = hashlib.sha256(b"stream:" + secret_key.encode()).digest()
        self.base = public_url.rstrip("/")
        self.grant_ttl_s = grant_ttl_s

    def _sign(self, track_id: str, rendition: str, user_id: str, exp: int) -> str:
        mac = hmac.new(self._key, f"{track_id}|{rendition}|{user_id}|{exp}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac[:18]).decode()

    def grant(self, track_id: str, user_id: str, product: str) -> dict[str, Any]:
        check_id(track_id, "track")
        self.catalog.check_visible(track_id, user_id)
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(renditions)
                .where(renditions.c.track_id == track_id)
                .order_by(renditions.c.bitrate_kbps)
            ).all()
            loud = conn.execute(
                sa.select(tracks.c.loudness_lufs, tracks.c.true_peak_dbtp).where(tracks.c.id == track_id)
            ).one()
        exp = int(time.time()) + self.grant_ttl_s
        allowed = []
        for r in rows:
            lossless = r.bitrate_kbps == 0
            if product != "premium" and (lossless or r.bitrate_kbps > FREE_MAX_KBPS):
                continue
            sig = self._sign(track_id, r.name, user_id, exp)
            allowed.append(
                {
                    "name": r.name,
                    "codec": r.codec,
                    "bitrate_kbps": r.bitrate_kbps,
                    "container": r.container,
                    "content_type": r.content_type,
                    "size_bytes": r.size_bytes,
                    "lossless": lossless,
                    "url": f"{self.base}/stream/{track_id}/{r.name}?u={user_id}&exp={exp}&sig={sig}",
                }
            )
        if not allowed:
            raise Forbidden("no rendition of this track is available to your plan yet; try again shortly")
        gain = 0.0
        if loud.loudness_lufs is not None:
            gain = TARGET_LUFS - loud.loudness_lufs
            if loud.true_peak_dbtp is not None:
                gain = min(gain, -1.0 - loud.true_peak_dbtp)  # never push peaks past -1 dBTP
        return {
            "track": {"id": track_id, "uri": f"tonearm:track:{track_id}"},
            "expires_at": exp,
            "loudness": {
                "integrated_lufs": loud.loudness_lufs,
                "true_peak_dbtp": loud.true_peak_dbtp,
                "gain_db": round(gain, 2),
            },
            "renditions": allowed,
            "quality_cap_kbps": None if product == "premium" else FREE_MAX_KBPS,
        }

    def resolve(self, track_id: str, rendition: str, user_id: str, exp: str, sig: str) -> StreamTarget:
        """Checks a signed stream URL; a bad or expired signature looks like a missing file."""
        if not exp.isdigit() or int(exp) < time.time():
            raise Forbidden("this stream URL has expired; ask for a new playback grant")
        if not hmac.compare_digest(self._sign(track_id, rendition, user_id, int(exp)), sig):
            raise Forbidden("invalid stream signature")
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(renditions.c.blob_key, renditions.c.content_type, renditions.c.size_bytes).where(
                    renditions.c.track_id == track_id, renditions.c.name == rendition
                )
            ).first()
        if row is None:
            raise NotFound("rendition not found")
        return StreamTarget(row.blob_key, row.content_type, row.size_bytes)
