"""An in-memory search index: the fast fake for tests, and the reference for what the port's
matching and ranking rules mean (a linear scan that scores every document in Python)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tonearm.adapters.search._scoring import text_score
from tonearm.ports.search import (
    FIELDS,
    Field,
    Hits,
    IndexQuery,
    Kind,
    SearchDoc,
    SearchUnavailable,
    blend,
    genre_key,
    tokens,
)


@dataclass(slots=True)
class _Entry:
    doc: SearchDoc
    words: dict[Field, list[str]]
    genre_keys: frozenset[str]


def _entry(doc: SearchDoc) -> _Entry:
    return _Entry(
        doc,
        {f: tokens(doc.text(f)) for f in FIELDS},
        frozenset(genre_key(g) for g in doc.genres),
    )


class MemorySearchIndex:
    def __init__(self) -> None:
        self._docs: dict[tuple[Kind, str], _Entry] = {}
        self._pending: dict[tuple[Kind, str], _Entry | None] = {}
        self._seq = 0
        self._version = 0  # commits and rebuilds so far
        self._lock = threading.Lock()
        self.broken = False  # tests flip it to play an outage

    # Reading ---------------------------------------------------------------------------------
    def search(self, query: IndexQuery, *, limit: int, offset: int) -> Hits:
        if self.broken:
            raise SearchUnavailable("memory index is switched off")
        with self._lock:
            entries = [e for (k, _), e in self._docs.items() if k == query.kind]
        scored: list[tuple[float, str]] = []
        for e in entries:
            d = e.doc
            if not d.public and (query.viewer_id is None or d.owner_id != query.viewer_id):
                continue
            if query.years and (d.year is None or not query.years[0] <= d.year <= query.years[1]):
                continue
            if any(g not in e.genre_keys for g in query.genres):
                continue
            text = text_score(query.must, e.words) if query.must else 1.0
            if text:
                scored.append((blend(text, d.popularity), d.id))
        scored.sort(key=lambda x: (-x[0], x[1]))
        page = scored[offset : offset + limit]
        return Hits([i for _, i in page], [s for s, _ in page], len(scored))

    def count(self, kind: Kind) -> int:
        with self._lock:
            return sum(1 for k, _ in self._docs if k == kind)

    # Writing ---------------------------------------------------------------------------------
    def upsert(self, docs: Sequence[SearchDoc]) -> None:
        with self._lock:
            for d in docs:
                self._pending[(d.kind, d.id)] = _entry(d)

    def delete(self, keys: Iterable[tuple[Kind, str]]) -> None:
        with self._lock:
            for key in keys:
                self._pending[key] = None

    def commit(self, seq: int) -> None:
        with self._lock:
            for key, entry in self._pending.items():
                if entry is None:
                    self._docs.pop(key, None)
                else:
                    self._docs[key] = entry
            self._pending.clear()
            self._seq = seq
            self._version += 1

    def applied_seq(self) -> int:
        return self._seq

    def version(self) -> object:
        return self._version

    def rebuild(self) -> _MemoryBuilder:
        return _MemoryBuilder(self)

    def try_lead(self) -> bool:
        return True

    def close(self) -> None:
        pass


class _MemoryBuilder:
    def __init__(self, index: MemorySearchIndex) -> None:
        self._index = index
        self._docs: dict[tuple[Kind, str], _Entry] = {}

    def add(self, docs: Sequence[SearchDoc]) -> None:
        for d in docs:
            self._docs[(d.kind, d.id)] = _entry(d)

    def finish(self, seq: int) -> None:
        with self._index._lock:
            self._index._docs = self._docs
            self._index._pending.clear()
            self._index._seq = seq
            self._index._version += 1

    def abort(self) -> None:
        self._docs = {}
