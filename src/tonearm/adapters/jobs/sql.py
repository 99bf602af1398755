"""Jobs stored in the application database (SQLite or PostgreSQL).

Enqueueing is an INSERT on the caller's connection, so a job exists exactly when the data it acts
on was committed. Claiming sets a lease (`locked_until`); a worker heartbeats while it works, and a
worker that dies simply stops heartbeating, so its job becomes claimable again when the lease ends.
On PostgreSQL claims use `FOR UPDATE SKIP LOCKED`; on SQLite the single writer lock serialises them.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import sqlalchemy as sa

from tonearm.kernel.clock import Clock, SystemClock
from tonearm.kernel.db import Database
from tonearm.ports.jobs import Job, backoff_s
from tonearm.workers.tables import jobs


class SqlJobQueue:
    def __init__(
        self, db: Database, *, lease_s: int = 300, max_attempts: int = 5, clock: Clock | None = None
    ):
        self.db = db
        self.lease_s = lease_s
        self.max_attempts = max_attempts
        self.clock = clock or SystemClock()

    def enqueue(
        self,
        conn: sa.Connection,
        kind: str,
        payload: dict[str, Any],
        *,
        delay_s: float = 0,
        dedupe_key: str | None = None,
    ) -> None:
        now = self.clock.now()
        if dedupe_key is not None:
            active = conn.execute(
                sa.select(jobs.c.id, jobs.c.status).where(jobs.c.dedupe_key == dedupe_key)
            ).first()
            if active is not None:
                if active.status in ("queued", "running"):
                    return
                # A finished job with the same key: free the key for the new one.
                conn.execute(sa.update(jobs).where(jobs.c.id == active.id).values(dedupe_key=None))
        conn.execute(
            sa.insert(jobs).values(
                kind=kind,
                payload=json.dumps(payload),
                status="queued",
                attempts=0,
                max_attempts=self.max_attempts,
                run_after=now + dt.timedelta(seconds=delay_s),
                dedupe_key=dedupe_key,
                created_at=now,
            )
        )

    def enqueue_many(self, conn: sa.Connection, kind: str, payloads: list[dict[str, Any]]) -> None:
        now = self.clock.now()
        rows = [
            {
                "kind": kind,
                "payload": json.dumps(p),
                "status": "queued",
                "attempts": 0,
                "max_attempts": self.max_attempts,
                "run_after": now,
                "dedupe_key": None,
                "created_at": now,
            }
            for p in payloads
        ]
        if rows:
            conn.execute(sa.insert(jobs), rows)

    def claim(self, worker_id: str) -> Job | None:
        now = self.clock.now()
        due = sa.or_(
            sa.and_(jobs.c.status == "queued", jobs.c.run_after <= now),
            sa.and_(jobs.c.status == "running", jobs.c.locked_until < now),
        )
        pick = sa.select(jobs.c.id).where(due).order_by(jobs.c.run_after, jobs.c.id).limit(1)
        if not self.db.sqlite:
            pick = pick.with_for_update(skip_locked=True)
        with self.db.write() as conn:
            row = conn.execute(pick).first()
            if row is None:
                return None
            claimed = conn.execute(
                sa.update(jobs)
                .where(jobs.c.id == row.id)
                .values(
                    status="running",
                    attempts=jobs.c.attempts + 1,
                    locked_by=worker_id,
                    locked_until=now + dt.timedelta(seconds=self.lease_s),
                )
                .returning(jobs.c.id, jobs.c.kind, jobs.c.payload, jobs.c.attempts, jobs.c.max_attempts)
            ).one()
        return Job(
            id=claimed.id,
            kind=claimed.kind,
            payload=json.loads(claimed.payload),
            attempts=claimed.attempts,
            max_attempts=claimed.max_attempts,
        )

    def heartbeat(self, job: Job, worker_id: str) -> None:
        with self.db.write() as conn:
            conn.execute(
                sa.update(jobs)
                .where(jobs.c.id == job.id, jobs.c.locked_by == worker_id)
                .values(locked_until=self.clock.now() + dt.timedelta(seconds=self.lease_s))
            )

    def complete(self, job: Job) -> None:
        with self.db.write() as conn:
            conn.execute(
                sa.update(jobs)
                .where(jobs.c.id == job.id)
                .values(status="done", locked_by=None, locked_until=None, finished_at=self.clock.now())
            )

    def fail(self, job: Job, error: str, *, retry: bool) -> None:
        now = self.clock.now()
        again = retry and job.attempts < job.max_attempts
        values: dict[str, Any] = {"last_error": error[:4000], "locked_by": None, "locked_until": None}
        if again:
            values |= {"status": "queued", "run_after": now + dt.timedelta(seconds=backoff_s(job.attempts))}
        else:
            values |= {"status": "failed", "finished_at": now}
        with self.db.write() as conn:
            conn.execute(sa.update(jobs).where(jobs.c.id == job.id).values(**values))

    def counts(self) -> dict[str, int]:
        with self.db.read() as conn:
            rows = conn.execute(sa.select(jobs.c.status, sa.func.count()).group_by(jobs.c.status)).all()
        return {str(status): int(n) for status, n in rows}
