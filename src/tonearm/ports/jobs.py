"""The job queue port: durable background work.

Jobs carry ids, never rows: a handler reloads what it needs, so a retried job sees fresh data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int  # including the current one
    max_attempts: int


class JobQueue(Protocol):
    def enqueue(
        self,
        conn: sa.Connection,
        kind: str,
        payload: dict[str, Any],
        *,
        delay_s: float = 0,
        dedupe_key: str | None = None,
    ) -> None:
        """MUST make the job visible to workers only if `conn`'s transaction commits (so data and
        its job are written together or not at all). A `dedupe_key` already queued or running
        MUST NOT create a second job. The payload MUST survive a JSON round trip."""
        ...

    def enqueue_many(self, conn: sa.Connection, kind: str, payloads: list[dict[str, Any]]) -> None:
        """MUST behave like `enqueue` (no delay, no dedupe key) for each payload, in one round trip
        where the backend allows (bulk imports queue thousands)."""
        ...

    def claim(self, worker_id: str) -> Job | None:
        """MUST hand each due job to one worker at a time, under a lease. A job whose lease ran
        out (its worker died) MUST be claimable again."""
        ...

    def heartbeat(self, job: Job, worker_id: str) -> None:
        """MUST extend the lease of a job this worker holds."""
        ...

    def complete(self, job: Job) -> None: ...

    def fail(self, job: Job, error: str, *, retry: bool) -> None:
        """MUST requeue the job with backoff when `retry` and attempts remain, else mark it failed."""
        ...

    def counts(self) -> dict[str, int]:
        """Jobs per status, for /metrics and /readyz."""
        ...


def backoff_s(attempts: int) -> float:
    """Exponential backoff between retries: 2, 4, 8 ... seconds, capped at 10 minutes."""
    return float(min(600, 2**attempts))
