"""The scheduler queues each periodic job once per time slot, however often it ticks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from tonearm.adapters.jobs.sql import SqlJobQueue
from tonearm.kernel.clock import FrozenClock
from tonearm.kernel.db import Database, make_engine
from tonearm.workers.scheduler import Periodic, Scheduler


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    d = Database(make_engine(db_url))
    yield d
    d.dispose()


def test_one_job_per_slot_even_from_two_schedulers(db: Database) -> None:
    clock = FrozenClock(dt.datetime(2026, 5, 1, 12, 0, 10, tzinfo=dt.UTC))
    queue = SqlJobQueue(db, lease_s=60, max_attempts=3, clock=clock)
    entries = [Periodic("billing.sweep", 60.0)]
    one, two = Scheduler(db, queue, clock, entries), Scheduler(db, queue, clock, entries)
    one.tick()
    two.tick()  # another process, same minute
    job = queue.claim("w")
    assert job is not None and job.kind == "billing.sweep"
    assert queue.claim("w") is None
    one.tick()  # still running: not queued again
    assert queue.claim("w") is None
    queue.complete(job)
    clock.advance(60)
    two.tick()
    nxt = queue.claim("w")
    assert nxt is not None and nxt.payload["slot"] == job.payload["slot"] + 1


def test_start_and_close_leave_no_thread_behind(db: Database) -> None:
    clock = FrozenClock()
    queue = SqlJobQueue(db, lease_s=60, max_attempts=3, clock=clock)
    s = Scheduler(db, queue, clock, [Periodic("x", 3600.0)])
    s.start()
    s.close()
    assert s._thread is None
    job = queue.claim("w")
    assert job is not None and job.kind == "x"  # it ticked once on start
