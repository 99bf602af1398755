"""Write-behind for what the playback grant decides in memory: free listeners' ad counters
(`ad_state`), ad impressions and entitlement decisions, written by a daemon thread every
`interval_s` (one transaction per flush) so that no grant waits for the database.

* `ad_state` is coalesced per listener: the latest absolute values win (`last_ad_at` is written
  only when this process served an ad, so it never goes back).
* Each table's rows go in one statement: an executemany on SQLite, an INSERT ... SELECT FROM
  unnest(arrays) on PostgreSQL (where an executemany costs the driver far more CPU per row).
* A flush that fails keeps its rows for the next one (the database is down, say); one that fails
  on a row referring to something gone (an account or ad deleted meanwhile) is written again row
  by row, and only those rows are dropped, so one bad row cannot block the rest forever.
* Bounded: with `max_rows` queued, `room()` (which callers run before queueing) flushes in the
  caller's thread, and raises if that fails: the grant then fails as it would have without the
  buffer, and memory cannot grow without limit.
* `flush()` writes everything queued before the call (waiting for a flush in progress): readers of
  these tables call it first. `close()` stops the thread and flushes.

A crash loses what was queued: at most the last `interval_s` of counts, impressions and logged
decisions (see ads.py for why that is the trade).
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects import sqlite

from tonearm.domains.entitlements.tables import ad_impressions, ad_state, entitlement_log
from tonearm.kernel.db import Database

log = structlog.get_logger("tonearm.entitlements")


def _unnest(dialect: sa.Dialect, table: sa.Table, suffix: str = "") -> str:
    """PostgreSQL: INSERT ... SELECT * FROM unnest(one array per column): a batch in one statement."""
    names = ", ".join(c.name for c in table.c)
    arrays = ", ".join(f"CAST(%s AS {c.type.compile(dialect=dialect)}[])" for c in table.c)
    return f"INSERT INTO {table.name} ({names}) SELECT * FROM unnest({arrays}){suffix}"  # noqa: S608 (our metadata's names)


# ad_state's upsert: the absolute count, and last_ad_at unless NULL (not changed here).
_SQLITE_STATE = sqlite.insert(ad_state)
_SQLITE = {
    ad_impressions.name: sa.insert(ad_impressions),
    ad_state.name: _SQLITE_STATE.on_conflict_do_update(
        index_elements=[ad_state.c.user_id],
        set_={
            "tracks_since_ad": _SQLITE_STATE.excluded.tracks_since_ad,
            "last_ad_at": sa.func.coalesce(_SQLITE_STATE.excluded.last_ad_at, ad_state.c.last_ad_at),
        },
    ),
    entitlement_log.name: sa.insert(entitlement_log),
}
_POSTGRES_SUFFIX = {
    ad_state.name: " ON CONFLICT (user_id) DO UPDATE SET tracks_since_ad = excluded.tracks_since_ad, "
    "last_ad_at = COALESCE(excluded.last_ad_at, ad_state.last_ad_at)",
}
_POSTGRES: dict[str, str] = {}  # built on first use, with the connection's dialect


@dataclass(slots=True)
class _Batch:
    # user_id -> (tracks_since_ad, last_ad_at or None: unchanged)
    state: dict[str, tuple[int, dt.datetime | None]] = field(default_factory=dict)
    impressions: list[dict[str, Any]] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.state) + len(self.impressions) + len(self.log)


def _merge_state(
    older: tuple[int, dt.datetime | None] | None, newer: tuple[int, dt.datetime | None]
) -> tuple[int, dt.datetime | None]:
    if older is None or newer[1] is not None:
        return newer
    return newer[0], older[1]


class WriteBehind:
    def __init__(self, db: Database, *, interval_s: float = 0.5, max_rows: int = 10_000) -> None:
        self.db = db
        self.interval_s = interval_s
        self.max_rows = max_rows
        self._lock = threading.Lock()  # the queue
        self._flushing = threading.Lock()  # one flush at a time, in order
        self._queue = _Batch()
        self._inflight: frozenset[str] = frozenset()  # listeners whose ad_state is being written
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    # Queueing (never touches the database) ------------------------------------------------------
    def room(self) -> None:
        """Makes room before queueing: with `max_rows` queued, flushes here (raises if it fails)."""
        if len(self._queue) >= self.max_rows:
            self.flush()

    def state(self, user_id: str, tracks_since_ad: int, last_ad_at: dt.datetime | None = None) -> None:
        """The listener's ad counter, and `last_ad_at` when an ad was just served."""
        with self._lock:
            self._queue.state[user_id] = _merge_state(
                self._queue.state.get(user_id), (tracks_since_ad, last_ad_at)
            )
            self._started()

    def impression(self, row: dict[str, Any]) -> None:
        with self._lock:
            self._queue.impressions.append(row)
            self._started()

    def decision(self, row: dict[str, Any]) -> None:
        """An `entitlement_log` row."""
        with self._lock:
            self._queue.log.append(row)
            self._started()

    def holds(self, user_id: str) -> bool:
        """Whether the listener's ad_state is queued or being written (not yet readable)."""
        with self._lock:
            return user_id in self._queue.state or user_id in self._inflight

    def queued(self) -> int:
        with self._lock:
            return len(self._queue)

    def _started(self) -> None:
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(target=self._run, name="tonearm-write-behind", daemon=True)
            self._thread.start()

    # Writing --------------------------------------------------------------------------------------
    def flush(self) -> None:
        """Writes everything queued so far in one transaction; on failure the rows stay queued
        and the error is raised."""
        with self._flushing:
            with self._lock:
                batch, self._queue = self._queue, _Batch()
                self._inflight = frozenset(batch.state)
            try:
                if len(batch):
                    self._write(batch)
            except BaseException:
                with self._lock:  # back in front of what was queued meanwhile
                    for user_id, newer in self._queue.state.items():
                        batch.state[user_id] = _merge_state(batch.state.get(user_id), newer)
                    batch.impressions += self._queue.impressions
                    batch.log += self._queue.log
                    self._queue = batch
                raise
            finally:
                with self._lock:
                    self._inflight = frozenset()

    def close(self) -> None:
        """Stops the thread and writes what is queued (logged, not raised, if that fails); rows
        queued afterwards wait for the next `flush()`."""
        self._closed = True
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=30)
        try:
            self.flush()
        except Exception:
            log.exception("entitlements.write_behind_lost", rows=self.queued())

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.flush()
            except Exception:
                log.exception("entitlements.write_behind_failed", rows=self.queued())

    def _write(self, batch: _Batch) -> None:
        try:
            with self.db.write() as conn:
                self._execute(conn, batch, None)
        except sa.exc.IntegrityError:
            dropped: list[str] = []
            with self.db.write() as conn:
                self._execute(conn, batch, dropped)
            log.warning("entitlements.write_behind_dropped", rows=dropped)

    def _execute(self, conn: sa.Connection, batch: _Batch, dropped: list[str] | None) -> None:
        """All of the batch (dropped is None), else row by row, each in a savepoint, noting in
        `dropped` those refused for referring to what is gone."""
        state = [{"user_id": u, "tracks_since_ad": n, "last_ad_at": at} for u, (n, at) in batch.state.items()]
        for table, rows in (
            (ad_impressions, batch.impressions),
            (ad_state, state),
            (entitlement_log, batch.log),
        ):
            if not rows:
                continue
            if dropped is None:
                _insert(conn, table, rows)
                continue
            for row in rows:
                try:
                    with conn.begin_nested():
                        _insert(conn, table, [row])
                except sa.exc.IntegrityError:
                    dropped.append(f"{table.name} of user {row['user_id']}")


def _insert(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    if conn.dialect.name != "postgresql":
        conn.execute(_SQLITE[table.name], rows)
        return
    arrays = []
    for c in table.c:
        process = c.type.bind_processor(conn.dialect)  # (UTCDateTime: naive UTC)
        values = [r[c.name] for r in rows]
        arrays.append([process(v) for v in values] if process is not None else values)
    sql = _POSTGRES.get(table.name)
    if sql is None:
        sql = _POSTGRES[table.name] = _unnest(conn.dialect, table, _POSTGRES_SUFFIX.get(table.name, ""))
    conn.exec_driver_sql(sql, tuple(arrays))
