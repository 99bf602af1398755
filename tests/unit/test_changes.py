"""The change log's reader never skips a notice whose transaction commits late."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from tonearm.kernel import changes

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


def _engine() -> sa.Engine:
    engine = sa.create_engine("sqlite://")
    changes.changes.create(engine)
    return engine


def _insert(conn: sa.Connection, *seqs: int) -> None:
    conn.execute(
        sa.insert(changes.changes),
        [{"seq": s, "entity": "track", "entity_id": f"t{s}", "at": NOW} for s in seqs],
    )


def test_the_cursor_waits_at_a_gap_until_it_fills() -> None:
    engine = _engine()
    reader = changes.Reader(gap_timeout_s=60)
    with engine.begin() as conn:
        _insert(conn, 1, 2, 4)  # 3 belongs to a transaction that has not committed yet
        found, safe = reader.read(conn, 0, limit=100)
        assert [c.seq for c in found] == [1, 2, 4] and safe == 2
        _insert(conn, 3)
        found, safe = reader.read(conn, safe, limit=100)
        assert [c.seq for c in found] == [3, 4] and safe == 4
        assert changes.head(conn) == 4 and changes.oldest(conn) == 1


def test_a_gap_that_never_fills_is_given_up_after_the_timeout() -> None:
    engine = _engine()
    reader = changes.Reader(gap_timeout_s=0)  # a rolled-back transaction's number
    with engine.begin() as conn:
        _insert(conn, 1, 3)
        found, safe = reader.read(conn, 0, limit=100)
        assert [c.seq for c in found] == [1, 3] and safe == 3


def test_record_dedupes_and_prune_keeps_unread_notices() -> None:
    engine = _engine()
    with engine.begin() as conn:
        changes.record(conn, "track", ["a", "b", "a", None], NOW)
        assert [r.entity_id for r in conn.execute(sa.select(changes.changes))] == ["a", "b"]
        assert changes.prune(conn, NOW + dt.timedelta(days=1), keep_after=1) == 1  # b is unread
        assert changes.oldest(conn) == 2
        assert changes.since_time(conn, NOW) == 2
        assert changes.since_time(conn, NOW + dt.timedelta(seconds=1)) == 3
