"""Keeps the search index following the catalog.

Every change to something searchable writes a notice to the change log in its own transaction
(`kernel/changes.py`). The indexer reads the log from the position the index last committed,
reloads those objects (`catalog/documents.py`; playlists: `library/playlist_search.py`), upserts
the ones that should be found and deletes the others, and commits the new position with them; a
crash between two commits replays a few notices, which is harmless. It runs in a thread of every
process that serves, but only the process the index elects (`SearchIndex.try_lead`) writes; the
others keep asking, so one takes over when the leader goes away. A notice reaches search results
within `poll_s` plus one batch's work (a quarter of a second on an idle server): within the same
process `poke()` skips the wait.

`reindex()` rebuilds the whole index from the database beside the live one (which keeps
answering) and swaps it in; the notices written meanwhile are replayed on top.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import sqlalchemy as sa
import structlog
from prometheus_client import Counter, Gauge

from tonearm.domains.catalog import documents
from tonearm.domains.library import playlist_search
from tonearm.kernel import changes
from tonearm.kernel.clock import Clock
from tonearm.kernel.db import Database
from tonearm.ports.search import Kind, SearchDoc, SearchIndex, SearchUnavailable

log = structlog.get_logger(__name__)

INDEXED = Counter("tonearm_search_indexed_total", "Documents written to the search index", ["op"])
PENDING = Gauge("tonearm_search_index_pending", "Change-log notices the search index has not applied yet")
LEADER = Gauge("tonearm_search_indexer_leader", "1 in the process that writes the search index")


@dataclass(frozen=True, slots=True)
class ReindexResult:
    documents: int
    seconds: float
    seq: int


class Indexer:
    def __init__(
        self,
        db: Database,
        index: SearchIndex,
        clock: Clock,
        *,
        poll_s: float = 0.25,
        batch: int = 1000,
        retention: dt.timedelta = dt.timedelta(days=7),
        gap_timeout_s: float = 10.0,
    ) -> None:
        self.db = db
        self.index = index
        self.clock = clock
        self.poll_s = poll_s
        self.batch = batch
        self.retention = retention
        self.gap_timeout_s = gap_timeout_s
        self.leading = False
        self._reader = changes.Reader(gap_timeout_s=gap_timeout_s)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._write_lock = threading.Lock()  # one writer per process: the loop or a reindex
        self._last_prune = 0.0
        self._first_run = True  # a new index over an existing catalog is filled by a rebuild

    # Following the log ---------------------------------------------------------------------
    def poke(self) -> None:
        """Something changed in this process: look now rather than at the next poll."""
        self._wake.set()

    def run_once(self) -> int:
        """Applies the next batch of notices if this process leads; returns how many it read."""
        if not self.leading:
            self.leading = self.index.try_lead()
            LEADER.set(1 if self.leading else 0)
            if not self.leading:
                return 0
            log.info("search.indexer.leading")
        with self._write_lock:
            cursor = self.index.applied_seq()
            with self.db.read() as conn:
                first, self._first_run = self._first_run, False
                if first and cursor == 0 and self.index.count("track") == 0 and _count(conn):
                    need_rebuild = "the index is empty"
                elif cursor and cursor < changes.oldest(conn) - 1:
                    need_rebuild = "the change log was pruned past the index's position"
                else:
                    need_rebuild = ""
                if not need_rebuild:
                    found, safe = self._reader.read(conn, cursor, limit=self.batch)
                    PENDING.set(max(changes.head(conn) - safe, 0))
                    by_kind: dict[Kind, list[str]] = {}
                    for c in found:
                        by_kind.setdefault(c.entity, []).append(c.entity_id)
                    docs = {k: _documents(conn, k, list(dict.fromkeys(ids))) for k, ids in by_kind.items()}
            if need_rebuild:
                log.info("search.indexer.rebuilding", reason=need_rebuild)
                self._reindex_locked(None)
                return 0
            if not found:
                self._maybe_prune(cursor)
                return 0
            upserts = [d for per_kind in docs.values() for d in per_kind.values()]
            deletes = [(k, i) for k, ids in by_kind.items() for i in ids if i not in docs[k]]
            if upserts:
                self.index.upsert(upserts)
            if deletes:
                self.index.delete(deletes)
            self.index.commit(safe)
        INDEXED.labels("upsert").inc(len(upserts))
        INDEXED.labels("delete").inc(len(deletes))
        return len(found)

    def _maybe_prune(self, cursor: int) -> None:
        now = time.monotonic()
        if now - self._last_prune < 600:
            return
        self._last_prune = now
        with self.db.write() as conn:
            n = changes.prune(conn, self.clock.now() - self.retention, keep_after=cursor)
        if n:
            log.info("search.changes.pruned", notices=n)

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="tonearm-search-indexer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                busy = self.run_once() >= self.batch
                failures = 0
            except SearchUnavailable as exc:  # e.g. a rebuild swapped the index: replay now
                log.warning("search.indexer.retry", reason=str(exc))
                busy = True
                self._stop.wait(0.05)
            except Exception:
                failures += 1
                log.exception("search.indexer.failed", attempt=failures)
                busy = False
                self._stop.wait(min(30.0, 0.5 * 2**failures))
            if not busy:
                self._wake.wait(self.poll_s if self.leading else max(self.poll_s, 5.0))
                self._wake.clear()

    def wait_caught_up(self, timeout_s: float = 10.0) -> bool:
        """Waits until every notice committed so far is applied (tests, and the CLI)."""
        deadline = time.monotonic() + timeout_s
        with self.db.read() as conn:
            target = changes.head(conn)
        while time.monotonic() < deadline:
            if self.index.applied_seq() >= target:
                return True
            self.poke()
            time.sleep(0.02)
        return False

    # Rebuilding ----------------------------------------------------------------------------
    def reindex(self, progress: Callable[[int, int], None] | None = None) -> ReindexResult:
        """Rebuilds the index from the database while the live one answers, then swaps it in.
        `progress(done, total)` is called after every batch."""
        with self._write_lock:
            return self._reindex_locked(progress)

    def _reindex_locked(self, progress: Callable[[int, int], None] | None) -> ReindexResult:
        started = time.monotonic()
        with self.db.read() as conn:
            # Start from before any notice recent enough to belong to a transaction that had not
            # committed yet: replaying a notice twice is harmless, missing one is not.
            recent = self.clock.now() - dt.timedelta(seconds=self.gap_timeout_s)
            seq = changes.since_time(conn, recent) - 1
            total = _count(conn)
        builder = self.index.rebuild()
        done = 0
        try:
            for kind in INDEXED_KINDS:
                with self.db.read() as conn:
                    for ids in _iter_ids(conn, kind, batch=2000):
                        builder.add(list(_documents(conn, kind, ids).values()))
                        done += len(ids)
                        if progress is not None:
                            progress(done, total)
            builder.finish(max(seq, 0))
        except BaseException:
            builder.abort()
            raise
        seconds = time.monotonic() - started
        log.info("search.reindexed", documents=done, seconds=round(seconds, 2), seq=seq)
        self.poke()
        return ReindexResult(done, seconds, max(seq, 0))


# Where each kind's documents come from: the catalog's tables, and the library's public playlists.
INDEXED_KINDS: tuple[Kind, ...] = (*documents.CATALOG_KINDS, "playlist")


def _documents(conn: sa.Connection, kind: Kind, ids: list[str]) -> dict[str, SearchDoc]:
    """The documents of these ids that should be in the index (a missing id is deleted from it)."""
    if kind == "playlist":
        return playlist_search.documents(conn, ids)
    return documents.documents(conn, kind, ids)


def _iter_ids(conn: sa.Connection, kind: Kind, *, batch: int) -> Iterator[list[str]]:
    if kind == "playlist":
        return playlist_search.iter_ids(conn, batch=batch)
    return documents.iter_ids(conn, kind, batch=batch)


def _count(conn: sa.Connection) -> int:
    return documents.count(conn) + playlist_search.count(conn)
