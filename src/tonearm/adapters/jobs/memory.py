"""In-memory job queue: a fast fake for unit tests. Not transactional: it ignores `conn`.

Payloads round-trip through JSON so a handler sees exactly what the durable queue would give it.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from tonearm.ports.jobs import Job, backoff_s


@dataclass
class _Row:
    id: int
    kind: str
    payload: str
    status: str
    attempts: int
    run_after: float
    dedupe_key: str | None
    locked_until: float = 0.0
    last_error: str | None = None


class MemoryJobQueue:
    def __init__(self, *, lease_s: float = 300, max_attempts: int = 5) -> None:
        self.lease_s = lease_s
        self.max_attempts = max_attempts
        self._rows: dict[int, _Row] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def enqueue(
        self,
        conn: sa.Connection,
        kind: str,
        payload: dict[str, Any],
        *,
        delay_s: float = 0,
        dedupe_key: str | None = None,
    ) -> None:
        with self._lock:
            if dedupe_key and any(
                r.dedupe_key == dedupe_key and r.status in ("queued", "running") for r in self._rows.values()
            ):
                return
            job_id = next(self._ids)
            self._rows[job_id] = _Row(
                job_id, kind, json.dumps(payload), "queued", 0, time.monotonic() + delay_s, dedupe_key
            )

    def enqueue_many(self, conn: sa.Connection, kind: str, payloads: list[dict[str, Any]]) -> None:
        for payload in payloads:
            self.enqueue(conn, kind, payload)

    def claim(self, worker_id: str) -> Job | None:
        now = time.monotonic()
        with self._lock:
            for row in sorted(self._rows.values(), key=lambda r: (r.run_after, r.id)):
                due = (row.status == "queued" and row.run_after <= now) or (
                    row.status == "running" and row.locked_until < now
                )
                if due:
                    row.status, row.attempts, row.locked_until = (
                        "running",
                        row.attempts + 1,
                        now + self.lease_s,
                    )
                    return Job(row.id, row.kind, json.loads(row.payload), row.attempts, self.max_attempts)
        return None

    def heartbeat(self, job: Job, worker_id: str) -> None:
        with self._lock:
            self._rows[job.id].locked_until = time.monotonic() + self.lease_s

    def complete(self, job: Job) -> None:
        with self._lock:
            self._rows[job.id].status = "done"

    def fail(self, job: Job, error: str, *, retry: bool) -> None:
        with self._lock:
            row = self._rows[job.id]
            row.last_error = error
            if retry and row.attempts < self.max_attempts:
                row.status, row.run_after = "queued", time.monotonic() + backoff_s(row.attempts)
            else:
                row.status = "failed"

    def counts(self) -> dict[str, int]:
        with self._lock:
            out: dict[str, int] = {}
            for row in self._rows.values():
                out[row.status] = out.get(row.status, 0) + 1
            return out
