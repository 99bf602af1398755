"""The change log: a transactional outbox of "this catalog object changed" notices.

A service that changes something searchable calls `record(conn, ...)` inside the same
transaction as the change, so the notice exists if and only if the change committed. Consumers
(the search indexer; later, recommendations) read the log in `seq` order from a cursor they keep
themselves, reload the objects by id and bring their derived store up to date. Notices carry ids
only, never data: a consumer that lags or replays always sees the current state.

On PostgreSQL, concurrent transactions take sequence numbers in one order and may commit in
another, so a reader can see seq 12 before seq 11 appears. `Reader` handles it: it never moves
its cursor past a gap until the gap fills, or until it is old enough to be a rolled-back
transaction's number that will never appear.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from tonearm.kernel.db import UTCDateTime, metadata

Entity = Literal["track", "album", "artist", "playlist"]

changes = sa.Table(
    "changes",
    metadata,
    sa.Column(
        "seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    sa.Column("entity", sa.String(16), nullable=False),
    sa.Column("entity_id", sa.String(22), nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False, index=True),
)


def record(conn: sa.Connection, entity: Entity, ids: Iterable[str | None], now: dt.datetime) -> None:
    """Notes that these objects changed (were created, edited or deleted), in `conn`'s transaction."""
    rows = [{"entity": entity, "entity_id": i, "at": now} for i in dict.fromkeys(ids) if i]
    if rows:
        conn.execute(sa.insert(changes), rows)


def head(conn: sa.Connection) -> int:
    """The newest seq (0 for an empty log)."""
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(changes.c.seq), 0))).scalar_one())


def oldest(conn: sa.Connection) -> int:
    """The oldest seq still kept (0 for an empty log)."""
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.min(changes.c.seq), 0))).scalar_one())


def prune(conn: sa.Connection, before: dt.datetime, *, keep_after: int) -> int:
    """Deletes notices older than `before` that every consumer has read (seq <= keep_after)."""
    result = conn.execute(sa.delete(changes).where(changes.c.at < before, changes.c.seq <= keep_after))
    return int(result.rowcount or 0)


@dataclass(frozen=True, slots=True)
class Change:
    seq: int
    entity: Entity
    entity_id: str


class Reader:
    """Reads the log after a cursor, holding the cursor back at gaps (see the module docstring)."""

    def __init__(self, *, gap_timeout_s: float = 10.0) -> None:
        self.gap_timeout_s = gap_timeout_s
        self._gaps: dict[int, float] = {}  # missing seq -> when we first noticed it (monotonic)

    def read(self, conn: sa.Connection, cursor: int, *, limit: int) -> tuple[list[Change], int]:
        """Up to `limit` changes after `cursor`, and the cursor to store once they are applied:
        the last seq before which nothing can appear any more. Changes past an open gap are
        returned (applying them early is harmless) and returned again next time."""
        rows: Sequence[Any] = conn.execute(
            sa.select(changes.c.seq, changes.c.entity, changes.c.entity_id)
            .where(changes.c.seq > cursor)
            .order_by(changes.c.seq)
            .limit(limit)
        ).all()
        now = time.monotonic()
        safe = cursor
        blocked = False
        expected = cursor + 1
        for seq, _, _ in rows:
            for missing in range(expected, seq):
                first_seen = self._gaps.setdefault(missing, now)
                if now - first_seen < self.gap_timeout_s:
                    blocked = True
            if not blocked:
                safe = seq
            expected = seq + 1
        self._gaps = {s: t for s, t in self._gaps.items() if s > safe}
        return [Change(seq, entity, eid) for seq, entity, eid in rows], safe


def since_time(conn: sa.Connection, moment: dt.datetime) -> int:
    """The first seq written at or after `moment`, or head + 1 when there is none."""
    first = conn.execute(sa.select(sa.func.min(changes.c.seq)).where(changes.c.at >= moment)).scalar_one()
    return int(first) if first is not None else head(conn) + 1
