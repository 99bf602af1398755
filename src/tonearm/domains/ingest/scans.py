"""Rescans of the server's music folder (`Settings.library_dir`): an admin asks (Subsonic's
startScan), a job runs the importer over the folder (only new and changed files are read, see
importer.py), and its progress is written to `library_scans` as it goes, so getScanStatus on any
process can show it. One scan at a time: asking while one is queued or running answers that one.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tonearm.domains.ingest.importer import Importer
from tonearm.domains.ingest.tables import library_scans
from tonearm.kernel.clock import Clock
from tonearm.kernel.db import Database
from tonearm.kernel.errors import BadRequest
from tonearm.kernel.ids import new_id
from tonearm.ports.jobs import JobQueue

SCAN_JOB = "ingest.library_scan"
PROGRESS_EVERY_S = 1.0  # how often a running scan writes its count


class LibraryScans:
    def __init__(
        self, db: Database, jobs: JobQueue, clock: Clock, importer: Importer, library_dir: Path | None
    ) -> None:
        self.db = db
        self.jobs = jobs
        self.clock = clock
        self.importer = importer
        self.library_dir = library_dir

    def start(self) -> dict[str, Any]:
        """Queues a scan (with its job, in one transaction) unless one is queued or running."""
        if self.library_dir is None:
            raise BadRequest(
                "no music folder is configured to scan (set TONEARM_LIBRARY_DIR); uploads are added "
                "as they arrive, and `tonearm import DIR` imports a folder once"
            )
        with self.db.write() as conn:
            active = conn.execute(
                sa.select(library_scans.c.id).where(library_scans.c.status.in_(("queued", "running")))
            ).first()
            if active is None:
                scan_id = new_id()
                conn.execute(library_scans.insert().values(id=scan_id, created_at=self.clock.now()))
                self.jobs.enqueue(conn, SCAN_JOB, {"scan_id": scan_id}, dedupe_key="library-scan")
        return self.status()

    def status(self) -> dict[str, Any]:
        """The newest scan: {scanning, status, done, found, imported, unchanged, failed, created_at,
        finished_at}; {"scanning": False} when there has never been one."""
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(library_scans).order_by(library_scans.c.created_at.desc()).limit(1)
            ).first()
        if row is None:
            return {"scanning": False}
        return {
            "scanning": row.status in ("queued", "running"),
            "status": row.status,
            "found": row.found,
            "done": row.done,
            "imported": row.imported,
            "unchanged": row.unchanged,
            "failed": row.failed,
            "error": row.error,
            "created_at": row.created_at,
            "finished_at": row.finished_at,
        }

    def run(self, scan_id: str) -> None:
        """The job. A worker that dies mid-scan leaves the job to be retried: the importer's ledger
        makes the retry skip what the first try finished."""
        if self.library_dir is None or not self.library_dir.is_dir():
            self._finish(scan_id, "failed", error=f"the music folder {self.library_dir} is not there")
            return
        self._set(scan_id, status="running", done=0)
        done = 0
        last = time.monotonic()

        def on_total(n: int) -> None:
            self._set(scan_id, found=n)

        def progress(n: int, _failed: int) -> None:
            nonlocal done, last
            done += n
            if time.monotonic() - last >= PROGRESS_EVERY_S:
                last = time.monotonic()
                self._set(scan_id, done=done)

        report = self.importer.run(self.library_dir, progress=progress, on_total=on_total)
        self._finish(
            scan_id,
            "done",
            done=done,
            imported=report.imported,
            unchanged=report.unchanged,
            failed=report.failed,
        )

    def _set(self, scan_id: str, **values: Any) -> None:
        with self.db.write() as conn:
            conn.execute(library_scans.update().where(library_scans.c.id == scan_id).values(**values))

    def _finish(self, scan_id: str, status: str, **values: Any) -> None:
        self._set(scan_id, status=status, finished_at=self.clock.now(), **values)
