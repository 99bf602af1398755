"""The scheduler: turns periodic work (renewals due, retries, lapses) into ordinary jobs.

It runs beside the job workers (in `tonearm serve` and in every `tonearm worker`). Several
processes may run one each: a job's dedupe key names its time slot, so each slot is queued once
while it waits or runs, and the periodic handlers are written to be safe when run twice anyway.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import structlog

from tonearm.kernel.clock import Clock
from tonearm.kernel.db import Database
from tonearm.ports.jobs import JobQueue

log = structlog.get_logger("tonearm.scheduler")


@dataclass(frozen=True, slots=True)
class Periodic:
    kind: str
    every_s: float


class Scheduler:
    def __init__(self, db: Database, jobs: JobQueue, clock: Clock, entries: list[Periodic]) -> None:
        self.db = db
        self.jobs = jobs
        self.clock = clock
        self.entries = entries
        self.stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> list[str]:
        """Queues every periodic job whose current time slot has none yet; returns the kinds queued."""
        now = self.clock.now().timestamp()
        queued = []
        with self.db.write() as conn:
            for e in self.entries:
                slot = math.floor(now / e.every_s)
                self.jobs.enqueue(conn, e.kind, {"slot": slot}, dedupe_key=f"{e.kind}@{slot}")
                queued.append(e.kind)
        return queued

    def run_forever(self) -> None:
        if not self.entries:
            return
        period = min(e.every_s for e in self.entries)
        while True:
            try:
                self.tick()
            except Exception:  # the database went away: try again next period
                log.exception("scheduler.tick_failed")
            if self.stop.wait(period):
                return

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self.run_forever, name="tonearm-scheduler", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self.stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
