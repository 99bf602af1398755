"""The embedded search index: tantivy (a Rust search engine library, in process) on local disk.

Layout under the root directory:

    CURRENT        the name of the live generation (replaced atomically)
    gen-<stamp>/   a complete tantivy index, plus `seq`: the change-log position it reflects
    build-<stamp>/ a generation being built by `rebuild()`; renamed to gen-* when finished
    leader.lock    flock()ed by the one process that writes (`try_lead`)

Searching runs in two steps. Tantivy finds the candidates, with boosts that approximate the
port's ranking (exact > prefix > typo, field weights, BM25's length normalisation, popularity
through `weight_by_field`), and counts every hit exactly. Then the best `window` candidates are
scored with the port's reference rules (`_scoring.py`, the same code the memory adapter uses),
blended with popularity and sorted. So results are ordered exactly like the reference within
the window (which covers any page up to offset 1,000 in tiers), and tantivy's own scoring only
decides which documents enter it. With no words (filters only) tantivy orders by popularity
itself. See docs/search.md.

Other processes see a commit on their next search after at most `reload_s` (they reload their
reader), and follow CURRENT to a new generation the same way.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import tantivy

from tonearm.adapters.search._scoring import text_score
from tonearm.ports.search import (
    FIELD_WEIGHTS,
    FIELDS,
    FUZZY_FACTOR,
    FUZZY_FIELDS,
    KINDS,
    PREFIX_FACTOR,
    SHORT_PREFIX,
    Field,
    Hits,
    IndexQuery,
    Kind,
    Must,
    SearchDoc,
    SearchUnavailable,
    Term,
    blend,
    genre_key,
    tokens,
)

WINDOW_TIER = 50  # candidates re-ranked: the page's end rounded up to a multiple of this
MAX_WINDOW = 1200
SCHEMA_VERSION = "5"  # bump when SCHEMA changes: older generations are then rebuilt
WRITER_HEAP = 64 * 1024 * 1024
# A rebuild writes with one thread and a budget large enough that 1,000,000 tracks make one
# segment: searching one segment is ~1.5x faster than four. Memory is taken as needed (a small
# catalog takes little): the 1,000,000-track benchmark peaked at 1.3 GB RSS, catalog included.
BUILD_HEAP = 3 * 1024**3
# In FIELDS' order, never a set's: queries name fields by their number in this process's SCHEMA,
# so every process must number them alike (a frozenset's order changes with PYTHONHASHSEED).
_PREFIXED = tuple(f for f in FIELDS if f in FUZZY_FIELDS)


def _text_field(kind: Kind, field: str) -> str:
    """Each kind's text has fields of its own ("name" for tracks, "artist.name" for artists...):
    a query for artists then walks only artists' words and postings, not the tracks' as well,
    which outnumber them ten to one. Only the filters are shared."""
    return field if kind == "track" else f"{kind}.{field}"


def _schema() -> Any:
    b = tantivy.SchemaBuilder()
    b.add_text_field("key", stored=False, tokenizer_name="raw", index_option="basic")  # "kind:id"
    b.add_text_field("kind", stored=False, tokenizer_name="raw", index_option="basic")
    b.add_text_field("id", stored=True, tokenizer_name="raw", index_option="basic")
    for kind in KINDS:
        for field in FIELDS:
            # Text arrives as tokens() joined by spaces: the whitespace tokenizer keeps every
            # word exactly as the port made it, so both sides of a match agree.
            b.add_text_field(
                _text_field(kind, field), stored=True, tokenizer_name="whitespace", index_option="position"
            )
        for field in _PREFIXED:
            # The first 1..SHORT_PREFIX letters of every word: the word being typed, while it is
            # that short, is one term lookup instead of a union of thousands of words.
            b.add_text_field(
                _text_field(kind, f"{field}_pfx"), stored=False, tokenizer_name="raw", index_option="basic"
            )
    b.add_text_field("genre", stored=False, tokenizer_name="raw", index_option="basic")  # genre_key()s
    b.add_text_field("owner", stored=False, tokenizer_name="raw", index_option="basic")
    b.add_unsigned_field("public", indexed=True, fast=False)
    b.add_integer_field("year", indexed=True, fast=True)
    b.add_unsigned_field("popularity", stored=True, fast=True)
    # blend()'s popularity factor in the form weight_by_field applies (score * log2(2 + value)),
    # so that tantivy picks the candidates by the same trade of relevance against plays.
    b.add_float_field("boost", stored=False, fast=True)
    return b.build()


SCHEMA = _schema()


def _document(doc: SearchDoc) -> Any:
    d = tantivy.Document()
    d.add_text("key", f"{doc.kind}:{doc.id}")
    d.add_text("kind", doc.kind)
    d.add_text("id", doc.id)
    for field in FIELDS:
        words = tokens(doc.text(field))
        d.add_text(_text_field(doc.kind, field), " ".join(words))
        if field in FUZZY_FIELDS:
            pfx = _text_field(doc.kind, f"{field}_pfx")
            for p in {w[:n] for w in words for n in range(1, min(len(w), SHORT_PREFIX) + 1)}:
                d.add_text(pfx, p)
    for g in dict.fromkeys(genre_key(g) for g in doc.genres):
        if g:
            d.add_text("genre", g)
    if doc.owner_id:
        d.add_text("owner", doc.owner_id)
    d.add_unsigned("public", 1 if doc.public else 0)
    if doc.year is not None:
        d.add_integer("year", doc.year)
    d.add_unsigned("popularity", max(doc.popularity, 0))
    d.add_float("boost", 2.0 ** blend(1.0, doc.popularity) - 2.0)
    return d


# Query building ------------------------------------------------------------------------------


def _term_query(kind: Kind, field: Field, term: Term) -> Any:
    """Exact, prefix and typo variants of one word in one field, weighted like the reference."""
    weight = FIELD_WEIGHTS[field]
    name = _text_field(kind, field)
    variants = [(tantivy.Occur.Should, tantivy.Query.boost_query(_exact(name, term.text), weight))]
    names = field in FUZZY_FIELDS
    typos = bool(term.edits and names)
    if term.prefix and not typos:
        q = None
        if names and len(term.text) <= SHORT_PREFIX:
            q = _exact(_text_field(kind, f"{field}_pfx"), term.text)
        elif names or len(term.text) > SHORT_PREFIX:
            q = tantivy.Query.fuzzy_term_query(SCHEMA, name, term.text, distance=0, prefix=True)
        if q is not None:
            variants.append((tantivy.Occur.Should, tantivy.Query.boost_query(q, weight * PREFIX_FACTOR)))
    if typos:
        # With `prefix`, this one also finds what the prefix variant would (a superset), so that
        # one is left out: the union is walked once, not twice. Its candidates count as prefix
        # matches here; the re-ranking tells the typos apart.
        q = tantivy.Query.fuzzy_term_query(
            SCHEMA, name, term.text, distance=term.edits, transposition_cost_one=True, prefix=term.prefix
        )
        factor = PREFIX_FACTOR if term.prefix else FUZZY_FACTOR
        variants.append((tantivy.Occur.Should, tantivy.Query.boost_query(q, weight * factor)))
    return variants[0][1] if len(variants) == 1 else tantivy.Query.boolean_query(variants)


def _exact(field: str, text: str) -> Any:
    return tantivy.Query.term_query(SCHEMA, field, text)


def _phrase_query(kind: Kind, field: Field, terms: Sequence[Term]) -> Any:
    words: list[str | tuple[int, str]] = [t.text for t in terms]
    weight = FIELD_WEIGHTS[field]
    name = _text_field(kind, field)
    if not terms[-1].prefix:
        return tantivy.Query.boost_query(tantivy.Query.phrase_query(SCHEMA, name, words), weight)
    # A phrase still being typed: the words before the last as a phrase, the last as a prefix in
    # the same field. A superset of the real matches; the re-ranking drops the others.
    parts = [(tantivy.Occur.Must, _term_query(kind, field, Term(terms[-1].text, prefix=True)))]
    if len(words) > 2:
        parts.append((tantivy.Occur.Must, tantivy.Query.phrase_query(SCHEMA, name, words[:-1])))
    elif len(words) == 2:
        parts.append((tantivy.Occur.Must, _exact(name, terms[0].text)))
    return tantivy.Query.boost_query(tantivy.Query.boolean_query(parts), weight)


def _must_query(kind: Kind, must: Must) -> Any:
    if must.phrase:
        alternatives = [_phrase_query(kind, f, must.terms) for f in must.fields]
    else:
        alternatives = [_term_query(kind, f, must.terms[0]) for f in must.fields]
    if len(alternatives) == 1:
        return alternatives[0]
    return tantivy.Query.boolean_query([(tantivy.Occur.Should, a) for a in alternatives])


_KINDS = ("track", "album", "artist", "playlist")
_OTHER_KINDS = {k: [o for o in _KINDS if o != k] for k in _KINDS}


def _filters(query: IndexQuery) -> list[tuple[Any, Any]]:
    """Conditions that restrict without scoring. Written as exclusions where the excluded set is
    the small one: intersecting with "is a track" or "is public" (most documents) costs as much
    as the search itself, excluding the few others costs little."""
    out: list[tuple[Any, Any]] = []
    if query.kind == "track":
        others = [(tantivy.Occur.Should, _exact("kind", k)) for k in _OTHER_KINDS["track"]]
        out.append((tantivy.Occur.MustNot, tantivy.Query.boolean_query(others)))
    else:
        out.append((tantivy.Occur.Must, _exact("kind", query.kind)))
    hidden: Any = _exact("public", 0)  # type: ignore[arg-type]
    if query.viewer_id:  # private, and not the viewer's own
        hidden = tantivy.Query.boolean_query(
            [(tantivy.Occur.Must, hidden), (tantivy.Occur.MustNot, _exact("owner", query.viewer_id))]
        )
    out.append((tantivy.Occur.MustNot, hidden))
    out += [(tantivy.Occur.Must, _exact("genre", g)) for g in query.genres]
    if query.years:
        out.append(
            (
                tantivy.Occur.Must,
                tantivy.Query.range_query(
                    SCHEMA, "year", tantivy.FieldType.Integer, query.years[0], query.years[1]
                ),
            )
        )
    return [(occur, tantivy.Query.const_score_query(q, 0.0)) for occur, q in out]


def _tantivy_query(query: IndexQuery) -> Any:
    clauses = [(tantivy.Occur.Must, _must_query(query.kind, m)) for m in query.must]
    clauses += _filters(query)
    if all(occur == tantivy.Occur.MustNot for occur, _ in clauses):
        clauses.append((tantivy.Occur.Must, tantivy.Query.all_query()))
    return tantivy.Query.boolean_query(clauses)


# The index -----------------------------------------------------------------------------------


def _short_prefix_only(query: IndexQuery) -> bool:
    """One or two letters typed and nothing else: such a query matches most of the catalog (all
    of it must be counted and ranked, tens of ms), and there are only ~1,300 of them, asked
    over and over (every search starts with one). Their answers are kept until the index changes
    (`version()`)."""
    return (
        len(query.must) == 1
        and not query.must[0].phrase
        and (query.must[0].terms[0].prefix and len(query.must[0].terms[0].text) <= 2)
    )


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    tmp.write_text(text)
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _new_name(prefix: str) -> str:
    return f"{prefix}-{time.time_ns()}-{os.getpid()}"


class TantivySearchIndex:
    def __init__(self, root: Path, *, reload_s: float = 0.1) -> None:
        self.root = root
        self.reload_s = reload_s
        root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._lead_fd: int | None = None
        self._writer: Any = None
        self._writer_gen: str | None = None
        self._gen: str | None = None
        self._seen: tuple[str | None, int, int, int] = (None, 0, 0, 0)  # version(): _commit_stamp()
        self._index: Any = None
        self._checked = 0.0
        self._current_stat: tuple[int, int] | None = None
        self._short_cache: dict[tuple[IndexQuery, int, int, object], Hits] = {}
        self._ensure_generation()

    # Generations ---------------------------------------------------------------------------
    def _usable(self) -> bool:
        """CURRENT names a generation written with this version's schema."""
        try:
            name = (self.root / "CURRENT").read_text().strip()
            return (self.root / name / "schema").read_text().strip() == SCHEMA_VERSION
        except OSError:
            return False

    def _ensure_generation(self) -> None:
        """Starts an empty generation when there is none, or when the live one was written by a
        version with another schema (an upgrade): the indexer then rebuilds it from the database."""
        if self._usable():
            return
        with (self.root / "init.lock").open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            if self._usable():
                return
            name = _new_name("gen")
            tantivy.Index(SCHEMA, path=str(self._mkdir(name)))
            _write_atomically(self.root / name / "seq", "0")
            _write_atomically(self.root / name / "schema", SCHEMA_VERSION)
            _write_atomically(self.root / "CURRENT", name)

    def _mkdir(self, name: str) -> Path:
        path = self.root / name
        path.mkdir()
        return path

    def _refresh(self, *, force: bool = False) -> Any:
        """The live generation's index, reopened when CURRENT moved and reloaded at most every
        `reload_s` (commits made by another process become visible)."""
        now = time.monotonic()
        if not force and self._index is not None and now - self._checked < self.reload_s:
            return self._index
        with self._lock:
            current = self.root / "CURRENT"
            st = current.stat()
            stamp = (st.st_ino, st.st_mtime_ns)
            if self._index is None or stamp != self._current_stat:
                name = current.read_text().strip()
                if name != self._gen or self._index is None:
                    seen = self._commit_stamp(name)
                    index = tantivy.Index.open(str(self.root / name))
                    index.config_reader(reload_policy="Manual")
                    self._index, self._gen, self._seen = index, name, seen
                self._current_stat = stamp
            else:
                # Read before the reload (the leader replaces `seq` after each commit), published
                # after it: whoever sees a version searches contents at least that new.
                seen = self._commit_stamp(self._gen)
                self._index.reload()
                self._seen = seen
            self._checked = now
            return self._index

    def _commit_stamp(self, name: str | None) -> tuple[str | None, int, int, int]:
        """Which commit of a generation its `seq` file marks: the seq it records, and as every
        commit replaces the file, its inode and time too (a commit may record a seq again)."""
        path = self.root / str(name) / "seq"
        try:
            st = path.stat()
            return (name, self._read_seq(name), st.st_ino, st.st_mtime_ns)
        except FileNotFoundError:
            return (name, 0, 0, 0)

    def _read_seq(self, name: str | None) -> int:
        try:
            return int((self.root / str(name) / "seq").read_text() or 0)
        except FileNotFoundError:
            return 0

    # Reading -------------------------------------------------------------------------------
    def search(self, query: IndexQuery, *, limit: int, offset: int) -> Hits:
        try:
            short = _short_prefix_only(query)
            if short:
                self._refresh()
                key = (query, limit, offset, self._seen)
                hit = self._short_cache.get(key)
                if hit is not None:
                    return hit
            hits = self._search(query, limit=limit, offset=offset)
            if short:
                if len(self._short_cache) > 4096:
                    self._short_cache.clear()
                self._short_cache[key] = hits
            return hits
        except SearchUnavailable:
            raise
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # a missing or corrupt index, an engine error; a Rust panic
            # arrives as pyo3's PanicException, which derives from BaseException
            raise SearchUnavailable(f"tantivy: {type(exc).__name__}: {exc}") from exc

    def _search(self, query: IndexQuery, *, limit: int, offset: int) -> Hits:
        searcher = self._refresh().searcher()
        q = _tantivy_query(query)
        if not query.must:
            found = searcher.search(q, limit=max(limit, 1), offset=offset, order_by_field="popularity")
            addrs = [a for _, a in found.hits][:limit]
            pops = searcher.fast_field_values("popularity", addrs) if addrs else []
            ids = [searcher.doc(a).get_first("id") for a in addrs]
            return Hits(ids, [blend(1.0, p or 0) for p in pops], found.count)
        end = offset + limit
        window = min(MAX_WINDOW, max(WINDOW_TIER, -(-end // WINDOW_TIER) * WINDOW_TIER))
        found = searcher.search(q, limit=window, weight_by_field="boost")
        scored: list[tuple[float, str]] = []
        fields = {f for m in query.must for f in m.fields}
        stored = {f: _text_field(query.kind, f) for f in fields}
        memos: list[dict[str, float]] = [{} for _ in query.must]
        for _, addr in found.hits:
            doc = searcher.doc(addr)
            words = {f: (doc.get_first(stored[f]) or "").split() for f in fields}
            text = text_score(query.must, words, memos)
            if text:
                scored.append((blend(text, int(doc.get_first("popularity") or 0)), doc.get_first("id")))
        scored.sort(key=lambda x: (-x[0], x[1]))
        dropped = len(found.hits) - len(scored)  # candidates tantivy over-approximated
        page = scored[offset:end]
        return Hits([i for _, i in page], [s for s, _ in page], max(found.count - dropped, len(scored)))

    def count(self, kind: Kind) -> int:
        searcher = self._refresh(force=True).searcher()
        return int(searcher.search(_exact("kind", kind), limit=1).count)

    # Writing (the leader only) ---------------------------------------------------------------
    def try_lead(self) -> bool:
        with self._lock:
            if self._lead_fd is not None:
                return True
            fd = os.open(self.root / "leader.lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            self._lead_fd = fd
            return True

    def _live_writer(self) -> Any:
        if self._lead_fd is None and not self.try_lead():
            raise SearchUnavailable("another process writes this search index (it holds leader.lock)")
        index = self._refresh(force=True)
        if self._writer is None or self._writer_gen != self._gen:
            self._drop_writer()
            self._writer = index.writer(heap_size=WRITER_HEAP, num_threads=1)
            self._writer_gen = self._gen
        return self._writer

    def _drop_writer(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.rollback()  # nothing uncommitted survives a generation switch anyway
                writer.wait_merging_threads()
            except ValueError:
                pass  # its generation was replaced and deleted underneath it

    def upsert(self, docs: Sequence[SearchDoc]) -> None:
        with self._lock:
            writer = self._live_writer()
            for doc in docs:
                writer.delete_documents_by_term("key", f"{doc.kind}:{doc.id}")
                writer.add_document(_document(doc))

    def delete(self, keys: Iterable[tuple[Kind, str]]) -> None:
        with self._lock:
            writer = self._live_writer()
            for kind, id_ in keys:
                writer.delete_documents_by_term("key", f"{kind}:{id_}")

    def commit(self, seq: int) -> None:
        with self._lock:
            writer_gen = self._writer_gen
            writer = self._live_writer()
            if writer_gen is not None and writer_gen != self._writer_gen:
                # A rebuild swapped generations after these changes were written to the old one:
                # they are gone with it, so the caller must replay them (from the new `seq`).
                raise SearchUnavailable("the index was rebuilt meanwhile; replay from applied_seq()")
            writer.commit()
            assert self._gen is not None
            _write_atomically(self.root / self._gen / "seq", str(seq))
            self._refresh(force=True).reload()

    def applied_seq(self) -> int:
        self._refresh()
        return self._read_seq(self._gen)

    def version(self) -> object:
        """The live generation and the last commit its reader reflects (at most reload_s old)."""
        self._refresh()
        return self._seen

    def rebuild(self) -> _TantivyBuilder:
        return _TantivyBuilder(self)

    def _switch_to(self, build: Path, seq: int) -> None:
        name = _new_name("gen")
        _write_atomically(build / "seq", str(seq))
        _write_atomically(build / "schema", SCHEMA_VERSION)
        os.replace(build, self.root / name)
        with self._lock:
            old = (self.root / "CURRENT").read_text().strip()
            _write_atomically(self.root / "CURRENT", name)
            if self._writer_gen == old:
                self._drop_writer()
            self._refresh(force=True)
        # Processes that still search the old generation keep their open files (POSIX unlink
        # semantics) until they notice CURRENT moved, at most reload_s later.
        for path in self.root.glob("gen-*"):
            if path.name != name:
                shutil.rmtree(path, ignore_errors=True)

    def close(self) -> None:
        with self._lock:
            self._drop_writer()
            if self._lead_fd is not None:
                os.close(self._lead_fd)
                self._lead_fd = None
            self._index = None


class _TantivyBuilder:
    def __init__(self, index: TantivySearchIndex) -> None:
        self._owner = index
        self._path = index._mkdir(_new_name("build"))
        self._index = tantivy.Index(SCHEMA, path=str(self._path))
        self._writer = self._index.writer(heap_size=BUILD_HEAP, num_threads=1)

    def add(self, docs: Sequence[SearchDoc]) -> None:
        for doc in docs:
            self._writer.add_document(_document(doc))

    def finish(self, seq: int) -> None:
        self._writer.commit()
        self._writer.wait_merging_threads()
        self._owner._switch_to(self._path, seq)

    def abort(self) -> None:
        try:
            self._writer.rollback()
            self._writer.wait_merging_threads()
        finally:
            shutil.rmtree(self._path, ignore_errors=True)
