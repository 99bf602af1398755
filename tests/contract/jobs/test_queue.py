"""One contract for every job queue adapter: the durable SQL one (SQLite, PostgreSQL) and the fake."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tonearm.adapters.jobs.memory import MemoryJobQueue
from tonearm.adapters.jobs.sql import SqlJobQueue
from tonearm.kernel.clock import FrozenClock
from tonearm.kernel.db import Database, make_engine
from tonearm.ports.jobs import JobQueue


@pytest.fixture
def frozen() -> FrozenClock:
    return FrozenClock(dt.datetime.now(dt.UTC))


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    d = Database(make_engine(db_url))
    yield d
    d.dispose()


@pytest.fixture
def queue(db: Database, frozen: FrozenClock) -> SqlJobQueue:
    return SqlJobQueue(db, lease_s=60, max_attempts=3, clock=frozen)


def test_job_exists_only_if_its_transaction_commits(queue: SqlJobQueue, db: Database) -> None:
    class Boom(Exception):
        pass

    def enqueue_then_fail() -> None:
        with db.write() as conn:
            queue.enqueue(conn, "k", {"n": 1})
            raise Boom

    with pytest.raises(Boom):
        enqueue_then_fail()
    assert queue.claim("w1") is None
    with db.write() as conn:
        queue.enqueue(conn, "k", {"n": 2})
    job = queue.claim("w1")
    assert job is not None and job.payload == {"n": 2} and job.attempts == 1


def test_each_job_goes_to_one_worker(queue: SqlJobQueue, db: Database) -> None:
    with db.write() as conn:
        for i in range(3):
            queue.enqueue(conn, "k", {"i": i})
    got = [queue.claim(f"w{i}") for i in range(4)]
    assert [j.payload["i"] for j in got if j] == [0, 1, 2]
    assert got[3] is None


def test_dead_worker_job_is_retried_after_lease(
    queue: SqlJobQueue, db: Database, frozen: FrozenClock
) -> None:
    with db.write() as conn:
        queue.enqueue(conn, "k", {})
    first = queue.claim("dies")
    assert first is not None
    assert queue.claim("other") is None  # leased
    frozen.advance(61)
    again = queue.claim("other")
    assert again is not None and again.id == first.id and again.attempts == 2


def test_heartbeat_keeps_the_lease(queue: SqlJobQueue, db: Database, frozen: FrozenClock) -> None:
    with db.write() as conn:
        queue.enqueue(conn, "k", {})
    job = queue.claim("w")
    assert job is not None
    frozen.advance(50)
    queue.heartbeat(job, "w")
    frozen.advance(50)
    assert queue.claim("x") is None


def test_failure_backs_off_then_gives_up(queue: SqlJobQueue, db: Database, frozen: FrozenClock) -> None:
    with db.write() as conn:
        queue.enqueue(conn, "k", {})
    for attempt in (1, 2):
        job = queue.claim("w")
        assert job is not None and job.attempts == attempt
        queue.fail(job, "boom", retry=True)
        assert queue.claim("w") is None  # backing off
        frozen.advance(3600)
    job = queue.claim("w")
    assert job is not None and job.attempts == 3
    queue.fail(job, "boom", retry=True)
    frozen.advance(3600)
    assert queue.claim("w") is None
    assert queue.counts() == {"failed": 1}


def test_permanent_failure_is_not_retried(queue: SqlJobQueue, db: Database, frozen: FrozenClock) -> None:
    with db.write() as conn:
        queue.enqueue(conn, "k", {})
    job = queue.claim("w")
    assert job is not None
    queue.fail(job, "not audio", retry=False)
    frozen.advance(3600)
    assert queue.claim("w") is None
    assert queue.counts() == {"failed": 1}


def test_dedupe_key_while_active(queue: SqlJobQueue, db: Database) -> None:
    with db.write() as conn:
        queue.enqueue(conn, "k", {"a": 1}, dedupe_key="one")
        queue.enqueue(conn, "k", {"a": 2}, dedupe_key="one")
    job = queue.claim("w")
    assert job is not None and queue.claim("w") is None
    queue.complete(job)
    with db.write() as conn:
        queue.enqueue(conn, "k", {"a": 3}, dedupe_key="one")  # finished: a new one may start
    again = queue.claim("w")
    assert again is not None and again.payload == {"a": 3}


def test_memory_queue_round_trips_json_and_dedupes() -> None:
    q: JobQueue = MemoryJobQueue(lease_s=60, max_attempts=2)
    conn = sa.Connection.__new__(sa.Connection)  # the fake ignores its connection
    q.enqueue(conn, "k", {"t": (1, 2)}, dedupe_key="d")
    q.enqueue(conn, "k", {"t": (3,)}, dedupe_key="d")
    job = q.claim("w")
    assert job is not None and job.payload == {"t": [1, 2]}  # tuples become lists, as via the database
    assert q.claim("w") is None
    q.fail(job, "x", retry=False)
    assert q.counts() == {"failed": 1}


def test_enqueue_many_is_transactional_and_claimable(queue: SqlJobQueue, db: Database) -> None:
    with db.write() as conn:
        queue.enqueue_many(conn, "bulk", [{"i": i} for i in range(5)])
    claimed = [queue.claim("w") for _ in range(6)]
    assert sorted(j.payload["i"] for j in claimed if j) == [0, 1, 2, 3, 4]
    assert claimed[5] is None
