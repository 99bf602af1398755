"""The scale-out search index: PostgreSQL full-text search (GIN over tsvector).

Tables, in the schema the URL's `search_path` names (created on first use if missing):

    search_docs   one row per document: the port's tokens() of each field (space-joined, for
                  re-ranking), filters (kind, genre_keys, year, public, owner_id, popularity), a
                  static `rank` and `tsv`, a tsvector of field-tagged lexemes (below). GIN on tsv
                  (made by rebuild(): one partial index per band of static rank, see below; else
                  one index) and genre_keys; btree on (kind, popularity desc, id), (kind, rank desc).
    search_words  the vocabulary of the name fields (name, artists, album: where typos count):
                  word, a bit per field that contains it, and `n`, the order it was added in.
    search_meta   one row: `seq` (the change-log position the index reflects), `generation`
                  (bumped by every rebuild, so that a writer notices its buffered changes were
                  made against an index that has since been replaced) and `tiers`, the rank
                  tiers the last rebuild made ((share, threshold) pairs). Its xmin is version().

The tsvector is written by Python from `tokens()` (not by a text search parser, whose idea of a
word differs from the port's): every word is tagged with its field's letter, so `nlove` is
"love" in the name, `alove` in the artists, `llove` in the album, `glove` in the genres and
`dlove` in the description, with positions (phrases are `<->`). The name fields also carry their
words' first 1..SHORT_PREFIX letters as lexemes `N`, `A` and `L` + prefix: the word being typed,
while it is that short, is one GIN lookup instead of a union of thousands of words (the tantivy
adapter's `*_pfx` fields), and every name-field word once more as `x` + word (in any name
field: a typo's variants, and the words a typed prefix of 4+ letters begins, spelled out from the
vocabulary, are looked up once instead of once per field; searches use them once a rebuild has
made rank tiers, below). User text only reaches SQL as bound parameters, and tsquery strings
are built from tokens() output (letters and digits only).

Searching runs in two steps like the tantivy adapter. SQL finds candidates: the best matches by
static rank (the best one word can score in the document: its shortest field weighted, times its
popularity). rebuild() cuts the documents into bands of static rank (the top 0.5%, the next 1.5%,
6%, 22%, and the rest), each with its own partial GIN index, and a search reads its first
COUNT_CAP matches band by band, best band first, stopping early: fewer match, and they are
counted exactly and the best chosen among them; more, and the bands read whole hold the best of
all (or the next bands are asked for theirs), and `total` is estimated from how far into the
table the last band was read and the share of the documents the bands read hold. A query that
matches much of the catalog thus reads the postings and rows of its best documents only. An
index no rebuild has made (one GIN index) reads the first COUNT_CAP matches in heap order, and
when more match, the best by static rank among all (a walk down the rank index that stops early
when matches are dense, a sort of the GIN matches when sparse). A rare genre filter (fewer than
GENRE_SCAN_ROWS documents, by ANALYZE's statistics) reads its documents and checks their text
instead, and counts them exactly. Answers to queries of 1-3 letter words only are cached while
version() stays the same. Then the window is scored with the port's reference rules
(`_scoring.text_score`) blended with popularity and sorted, so results order exactly like the
memory adapter's within the window. Typos: each process mirrors the
vocabulary (refreshed every VOCABULARY_REFRESH_S) and expands a fuzzy `Term` to the words within
its OSA distance with rapidfuzz.

Writes are buffered in memory and applied by `commit(seq)` in one transaction with the vocabulary
and the seq; `rebuild()` COPYs into fresh tables, indexes them, and swaps them in by renames in
one transaction (searchers wait for the swap's lock, then read the new tables). Only one process
leads (a session-level advisory lock held by a dedicated connection). Every database error,
timeout (`statement_timeout`) or missing table surfaces as `SearchUnavailable`.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import re
import secrets
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import unquote

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from rapidfuzz import process
from rapidfuzz.distance import OSA
from sqlalchemy import exc as sa_exc
from sqlalchemy import pool as sa_pool

from tonearm.adapters.search._scoring import text_score
from tonearm.ports.search import (
    FIELD_WEIGHTS,
    FIELDS,
    FUZZY_FIELDS,
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

COUNT_CAP = 1000  # matches counted exactly; beyond, `total` is an estimate
DENSE_FRACTION = 0.05  # COUNT_CAP matches found in less of the table: walk the rank index
WINDOW_TIER = 100  # candidates re-ranked: the page's end rounded up to a multiple of this
MAX_WINDOW = 1200
# Rank tiers (made by rebuild()): the top 0.5%, 2%, 8% and 30% of documents by static rank, each
# band between two of them with its own partial GIN index (disjoint, so that each band's query can
# only use its own index). Matches are read best band first and the reading stops early: a query
# matching much of the catalog reads the postings and rows of its best documents only, instead of
# all of its postings and then every matching row at random to sort them.
TIER_FRACTIONS = (0.005, 0.02, 0.08, 0.3)
# A genre filter expected to keep fewer documents than this: they are read and their text checked,
# rather than every match of the words found (a common prefix has 100,000s) and kept if in genre.
GENRE_SCAN_ROWS = 5000
STATEMENT_TIMEOUT_MS = 2000  # a search slower than this is an outage: the caller falls back
WRITE_TIMEOUT_MS = 120_000  # commits, counts and rebuilds may take longer
VOCABULARY_REFRESH_S = 0.5  # how soon a word committed elsewhere is matched with typos
VERSION_TTL_S = 0.1  # how often version() asks the database (the answer cache's key)
# The word being typed, from SHORT_PREFIX + 1 letters on, matches the name fields' words that begin
# with it: up to this many, spelled out from the vocabulary (GIN skips through exact words' postings
# where it must read every posting of a prefix's words, `:*`); more, as a prefix.
PREFIX_WORDS = 16
MAX_LEXEME_BYTES = 2000  # PostgreSQL refuses lexemes of 2 KiB and more
MAX_POSITIONS = 255  # and keeps at most 256 positions of one lexeme

# One letter per field, prefixed to each word: one tsvector and one GIN index hold every field,
# and a query names the field it looks in. Upper-case letters tag the short-prefix lexemes.
_TAG: dict[Field, str] = {"name": "n", "artists": "a", "album": "l", "genres": "g", "description": "d"}
_PREFIX_TAG: dict[Field, str] = {"name": "N", "artists": "A", "album": "L"}
_WEIGHT: dict[Field, str] = {"name": "A", "artists": "B", "album": "C", "genres": "D", "description": "D"}
_FIELD_BIT: dict[Field, int] = {"name": 1, "artists": 2, "album": 4}
_TEXT_COLUMNS = {"name": "name", "artists": "artists", "album": "album", "genres": "genres_text",
                 "description": "description"}  # fmt: skip
_SEARCH_PATH = re.compile(r"search_path\s*=\s*([^\s,]+)")


# Documents -----------------------------------------------------------------------------------


def _lexeme(text: str) -> str | None:
    """A quoted tsvector/tsquery lexeme; `text` is a tag and a tokens() word (letters, digits)."""
    return None if len(text.encode()) > MAX_LEXEME_BYTES else f"'{text}'"


def _tsvector(words: dict[Field, list[str]], genre_keys: Sequence[str] = ()) -> str:
    positions: dict[str, list[str]] = {}
    for field in FIELDS:
        tag, weight = _TAG[field], _WEIGHT[field]
        for pos, word in enumerate(words[field], 1):
            positions.setdefault(tag + word, []).append(f"{min(pos, 16383)}{weight}")
    out = [f"'{lex}':{','.join(p[:MAX_POSITIONS])}" for lex, p in positions.items() if _lexeme(lex)]
    short = {
        _PREFIX_TAG[f] + w[:n]
        for f in _PREFIX_TAG
        for w in words[f]
        for n in range(1, min(len(w), SHORT_PREFIX) + 1)
    }
    out += [f"'{lex}'" for lex in short]
    # Every word of the name fields once more, tagged `x` (any of them), without positions: a
    # typo-tolerant term looks for each of its variants once instead of once per name field.
    out += [f"'x{w}'" for w in dict.fromkeys(w for f in _FIELD_BIT for w in words[f]) if _lexeme("x" + w)]
    # And its genre_keys, tagged `k` ("kclassical jungle"): a genre filter is one more GIN key,
    # whose postings GIN skips through along with the words', not a bitmap of the whole genre.
    out += [f"'k{g}'" for g in genre_keys if _lexeme("k" + g)]
    return " ".join(out)


def _static_rank(words: dict[Field, list[str]], popularity: int) -> float:
    """The best blend() a single word could score in this document: its shortest field, weighted,
    times its popularity. Candidates for queries that match too many documents to rank them
    all are taken in this order."""
    best = max((FIELD_WEIGHTS[f] / math.sqrt(len(w)) for f, w in words.items() if w), default=0.0)
    return blend(best, popularity)


def _doc_row(doc: SearchDoc, vocabulary: dict[str, int]) -> tuple[Any, ...]:
    """The search_docs row of a document; adds its name-field words to `vocabulary`."""
    words: dict[Field, list[str]] = {f: tokens(doc.text(f)) for f in FIELDS}
    for field, bit in _FIELD_BIT.items():
        for w in words[field]:
            if len(w.encode()) <= MAX_LEXEME_BYTES:
                vocabulary[w] = vocabulary.get(w, 0) | bit
    genre_keys = list(dict.fromkeys(k for k in (genre_key(g) for g in doc.genres) if k))
    return (
        doc.kind,
        doc.id,
        *(" ".join(words[f]) for f in FIELDS),
        genre_keys,
        doc.year,
        max(doc.popularity, 0),
        _static_rank(words, doc.popularity),
        doc.public,
        doc.owner_id,
        _tsvector(words, genre_keys),
    )


_DOC_COLUMNS = (
    "kind, id, name, artists, album, genres_text, description, genre_keys, year, popularity, rank, public, "
    "owner_id, tsv"
)


def _docs_table_sql(table: str) -> sql.Composed:
    return sql.SQL(
        """CREATE TABLE IF NOT EXISTS {} (
            kind text NOT NULL,
            id text NOT NULL,
            name text NOT NULL,
            artists text NOT NULL,
            album text NOT NULL,
            genres_text text NOT NULL,
            description text NOT NULL,
            genre_keys text[] NOT NULL,
            year integer,
            popularity bigint NOT NULL,
            rank real NOT NULL,
            public boolean NOT NULL,
            owner_id text,
            tsv tsvector NOT NULL
        )"""
    ).format(sql.Identifier(table))


def _words_table_sql(table: str) -> sql.Composed:
    # n: the order words were added or changed in, so that processes fetch only what is new.
    return sql.SQL(
        "CREATE TABLE IF NOT EXISTS {} (word text NOT NULL, fields integer NOT NULL, "
        "n bigint GENERATED BY DEFAULT AS IDENTITY)"
    ).format(sql.Identifier(table))


def _index_sql(table: str, name: str) -> list[sql.Composed]:
    """The indexes of a docs table `table` and its words table `name`-words, named after `name`
    (the live tables' names, so that a swapped-in table's indexes are renamed to match)."""
    t, w = sql.Identifier(table), sql.Identifier(table.replace("docs", "words"))

    def ix(suffix: str) -> sql.Identifier:
        return sql.Identifier(f"{name}_{suffix}")

    return [
        sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY (kind, id)").format(t, ix("pkey")),
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} USING gin (tsv) WITH (fastupdate = off)").format(
            ix("tsv"), t
        ),
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} USING gin (genre_keys) WITH (fastupdate = off)").format(
            ix("genres"), t
        ),
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (kind, popularity DESC, id)").format(ix("popular"), t),
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (kind, rank DESC)").format(ix("rank"), t),
        sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY (word)").format(w, ix("words_pkey")),
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (n)").format(ix("words_n"), w),
    ]


def _band(tiers: Sequence[tuple[float, float]], i: int) -> str:
    """The predicate of rank band `i`: documents of tier i that are in no smaller tier, and for
    i = len(tiers), the documents of no tier. The partial index of the band and every query of
    it spell it the same (the planner proves the index applies by comparing them); the bounds
    are finite floats read from the database."""
    hi = f"rank::float8 < {float(tiers[i - 1][1])!r}" if i else ""
    if i == len(tiers):
        return hi
    lo = f"rank::float8 >= {float(tiers[i][1])!r}"
    return f"{lo} AND {hi}" if hi else lo


def _tier_index_sql(table: str, name: str, tiers: Sequence[tuple[float, float]]) -> list[sql.Composed]:
    return [
        sql.SQL(
            "CREATE INDEX IF NOT EXISTS {} ON {} USING gin (tsv) WITH (fastupdate = off) WHERE {}"
        ).format(sql.Identifier(f"{name}_tier{i}"), sql.Identifier(table), sql.SQL(_band(tiers, i)))
        for i in range(len(tiers) + 1)
    ]


def _tiers(rows: Sequence[tuple[float, Any]]) -> list[tuple[float, float]]:
    """(fraction, static rank threshold) per tier, decreasing thresholds (a tier whose threshold
    equals the next one's would be an empty band: the larger fraction stands for both)."""
    out: list[tuple[float, float]] = []
    for fraction, threshold in rows:
        if threshold is None or not math.isfinite(float(threshold)):
            continue
        if out and float(threshold) >= out[-1][1]:
            out[-1] = (float(fraction), out[-1][1])
        else:
            out.append((float(fraction), float(threshold)))
    return out


# Queries -------------------------------------------------------------------------------------


def _window(offset: int, limit: int) -> int:
    end = offset + limit
    return min(MAX_WINDOW, max(WINDOW_TIER, -(-end // WINDOW_TIER) * WINDOW_TIER))


Expansion = tuple[dict[str, int], dict[str, int] | None]  # typo variants, words with the prefix


def _term_alternatives(field: Field, term: Term, expansion: Expansion) -> list[str]:
    """tsquery alternatives for one word in one field: exact, prefix, typo variants."""
    tag = _TAG[field]
    fuzzy_words, prefixed = expansion
    out = [_lexeme(tag + term.text)]
    if term.prefix:
        names = field in FUZZY_FIELDS
        if names and len(term.text) <= SHORT_PREFIX:
            out.append(_lexeme(_PREFIX_TAG[field] + term.text))
        elif names and prefixed is not None:
            bit = _FIELD_BIT[field]
            out += [_lexeme(tag + w) for w, bits in prefixed.items() if bits & bit]
        elif names or len(term.text) > SHORT_PREFIX:
            lex = _lexeme(tag + term.text)
            out.append(f"{lex}:*" if lex else None)
    if term.edits and field in FUZZY_FIELDS:
        bit = _FIELD_BIT[field]
        out += [_lexeme(tag + w) for w, bits in fuzzy_words.items() if bits & bit and w != term.text]
    return [a for a in dict.fromkeys(out) if a]


def _phrase_alternative(field: Field, terms: Sequence[Term]) -> str | None:
    parts = [_lexeme(_TAG[field] + t.text) for t in terms]
    if not all(parts):
        return None
    if terms[-1].prefix:
        parts[-1] = f"{parts[-1]}:*"
    return "(" + " <-> ".join(p for p in parts if p) + ")"


def _tsquery(musts: Sequence[Must], expansions: Sequence[Expansion]) -> str | None:
    """The tsquery of every Must (None: one of them cannot match anything)."""
    clauses = _tsqueries(musts, expansions)
    return None if clauses is None else " & ".join(clauses)


def _any_name_alternatives(term: Term, expansion: Expansion) -> list[str]:
    """tsquery alternatives for one word in any of the name fields (the `x` lexemes)."""
    fuzzy_words, prefixed = expansion
    out = [_lexeme("x" + term.text)]
    if term.prefix:
        if len(term.text) <= SHORT_PREFIX:
            out += [_lexeme(_PREFIX_TAG[f] + term.text) for f in _PREFIX_TAG]
        elif prefixed is not None:
            out += [_lexeme("x" + w) for w in prefixed]
        else:
            lex = _lexeme("x" + term.text)
            out.append(f"{lex}:*" if lex else None)
    if term.edits:
        out += [_lexeme("x" + w) for w in fuzzy_words if w != term.text]
    return [a for a in dict.fromkeys(out) if a]


def _tsqueries(
    musts: Sequence[Must], expansions: Sequence[Expansion], *, any_name: bool = False
) -> list[str] | None:
    """One tsquery per Must (None: one of them cannot match anything). Asked as one condition
    each, GIN reads the postings of the rarest first and skips ahead in the others', where one
    tsquery for all of them has it merge every posting of every word (several times slower).
    `any_name`: the documents carry `x` lexemes (written since rank tiers were), and a word
    looked for in every name field is looked for once among them."""
    clauses = []
    for must, expansion in zip(musts, expansions, strict=True):
        if must.phrase:
            alts = [a for a in (_phrase_alternative(f, must.terms) for f in must.fields) if a]
        elif any_name and FUZZY_FIELDS.issubset(must.fields):
            rest = [f for f in must.fields if f not in FUZZY_FIELDS]
            alts = _any_name_alternatives(must.terms[0], expansion)
            alts += [a for f in rest for a in _term_alternatives(f, must.terms[0], expansion)]
        else:
            alts = [a for f in must.fields for a in _term_alternatives(f, must.terms[0], expansion)]
        if not alts:
            return None
        clauses.append("(" + " | ".join(alts) + ")")
    return clauses


def _fuzzy_term(must: Must) -> Term | None:
    term = must.terms[0]
    if must.phrase or not term.edits or not FUZZY_FIELDS.intersection(must.fields):
        return None
    return term


def _typed_term(must: Must) -> Term | None:
    """The word being typed, when longer than SHORT_PREFIX and looked for in a name field."""
    term = must.terms[0]
    if must.phrase or not term.prefix or len(term.text) <= SHORT_PREFIX:
        return None
    return term if FUZZY_FIELDS.intersection(must.fields) else None


def _short_words_only(query: IndexQuery) -> bool:
    """Only words of one to SHORT_PREFIX letters: such a query matches much of the catalog (its
    words are common, or the prefixes of many), and few of them are asked over and over (every
    search starts with one, and "the", "lov", "man r" are typed on the way to many titles)."""
    return bool(query.must) and all(len(t.text) <= SHORT_PREFIX for m in query.must for t in m.terms)


def _conninfo(url: str, statement_timeout_ms: int) -> str:
    """libpq connection string for a postgresql:// (or SQLAlchemy postgresql+psycopg://) URL,
    with a statement_timeout added to whatever `options` the URL carries."""
    scheme, rest = url.split("://", 1)
    if not scheme.startswith("postgres"):
        raise ValueError(f"not a PostgreSQL URL: {scheme}://")
    params = conninfo_to_dict("postgresql://" + rest)
    # No search query needs a sequential scan of the documents (each has an index path); the
    # planner must not pick one for a LIMIT it expects to reach early and then read the table.
    # Nor a parallel plan (searches are short, many run at once, and the bands of the rank tiers
    # are read in order), nor JIT compilation: it costs 20-100 ms, and the cost enable_seqscan
    # puts on a scan of the one-row search_meta is far above jit_above_cost.
    options = (
        f"{params.get('options', '')} -c statement_timeout={statement_timeout_ms} -c enable_seqscan=off "
        "-c max_parallel_workers_per_gather=0 -c jit=off"
    )
    options = options.strip()
    params["options"] = options
    params.setdefault("connect_timeout", "3")
    params.setdefault("application_name", "tonearm-search")
    return make_conninfo("", **{k: v for k, v in params.items() if v is not None})


def _schema_of(url: str) -> str | None:
    """The first schema of the URL's search_path (`?options=-csearch_path%3Dname,public`)."""
    m = _SEARCH_PATH.search(unquote(url.split("?", 1)[1]) if "?" in url else "")
    return m.group(1).strip("\"'") if m else None


class _Vocabulary:
    """The name fields' words (search_words), mirrored in each process and refreshed at most
    every VOCABULARY_REFRESH_S: typos are matched here, in C (rapidfuzz), against every word.
    In SQL, Levenshtein scans of the vocabulary (fuzzystrmatch) cost 5-15 ms a query, and
    trigram similarity (pg_trgm) misses short words with a transposition ("lvoe")."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.generation: int | None = None
        self.last = 0  # the highest search_words.n seen
        self.checked = 0.0
        self.words: dict[str, int] = {}
        self.by_length: dict[int, list[str]] = {}
        self.by_prefix: dict[int, dict[str, list[str]]] = {}  # length -> prefix -> words
        self.cache: dict[Term, dict[str, int]] = {}

    def refresh(self, conn: psycopg.Connection[Any]) -> None:
        now = time.monotonic()
        if now - self.checked < VOCABULARY_REFRESH_S:
            return
        with self._lock:
            if now - self.checked < VOCABULARY_REFRESH_S:
                return
            row = conn.execute("SELECT generation FROM search_meta").fetchone()
            generation = int(row[0]) if row else 0
            if generation != self.generation:
                self.words, self.by_length, self.by_prefix, self.last = {}, {}, {}, 0
            rows = conn.execute(
                "SELECT n, word, fields FROM search_words WHERE n > %s ORDER BY n", (self.last,)
            ).fetchall()
            if rows:
                self.cache = {}
                for _, word, bits in rows:
                    if word not in self.words:
                        self.by_length.setdefault(len(word), []).append(word)
                        for length, prefixes in self.by_prefix.items():
                            if len(word) >= length:
                                prefixes.setdefault(word[:length], []).append(word)
                    self.words[word] = bits
                self.last = rows[-1][0]
            self.generation, self.checked = generation, now

    def expand(self, term: Term) -> dict[str, int]:
        found = self.cache.get(term)
        if found is not None:
            return found
        n, e = len(term.text), term.edits
        matches: set[str] = set()
        with self._lock:
            for length in range(max(1, n - e), n + e + 1):
                if term.prefix:
                    # Some prefix of the word, n-e..n+e letters long, is within e edits.
                    prefixes = self._prefixes(length)
                    for p, _, _ in process.extract(
                        term.text, list(prefixes), scorer=OSA.distance, score_cutoff=e, limit=None
                    ):
                        matches.update(prefixes[p])
                else:
                    for w, _, _ in process.extract(
                        term.text,
                        self.by_length.get(length, []),
                        scorer=OSA.distance,
                        score_cutoff=e,
                        limit=None,
                    ):
                        matches.add(w)
            found = {w: self.words[w] for w in matches}
            if len(self.cache) > 10_000:
                self.cache.clear()
            self.cache[term] = found
        return found

    def prefixed(self, text: str) -> dict[str, int] | None:
        """The words that begin with `text` (with their field bits); None: more than PREFIX_WORDS."""
        with self._lock:
            words = self._prefixes(len(text)).get(text, [])
            return None if len(words) > PREFIX_WORDS else {w: self.words[w] for w in words}

    def _prefixes(self, length: int) -> dict[str, list[str]]:
        prefixes = self.by_prefix.get(length)
        if prefixes is None:
            prefixes = {}
            for w in self.words:
                if len(w) >= length:
                    prefixes.setdefault(w[:length], []).append(w)
            self.by_prefix[length] = prefixes
        return prefixes


# The index -----------------------------------------------------------------------------------


class PostgresSearchIndex:
    def __init__(
        self, url: str, *, pool_size: int = 8, statement_timeout_ms: int = STATEMENT_TIMEOUT_MS
    ) -> None:
        self._conninfo = _conninfo(url, statement_timeout_ms)
        self.schema = _schema_of(url)
        # The leader's advisory lock is per database: the schema tells indexes apart.
        digest = hashlib.sha256(f"tonearm-search:{self.schema or ''}".encode()).digest()
        self._lock_key = int.from_bytes(digest[:8], "big", signed=True)
        creator: Any = self._connect  # a psycopg connection is a DBAPI connection
        self._pool = sa_pool.QueuePool(
            creator, pool_size=pool_size, max_overflow=pool_size, timeout=STATEMENT_TIMEOUT_MS / 1000
        )
        self._lock = threading.Lock()
        self._ready = False
        self._pending: dict[tuple[Kind, str], SearchDoc | None] = {}
        self._generation: int | None = None  # of the index the buffered changes were read against
        self._lead_conn: psycopg.Connection[Any] | None = None
        self._seen_version: tuple[float, object] = (-1e18, None)  # (time.monotonic(), version)
        # Answers to queries of short words only (they match much of the catalog, and few of them
        # are asked over and over), valid while version() stays the same.
        self._short_cache: dict[tuple[IndexQuery, int, int, object], Hits] = {}
        self._vocabulary = _Vocabulary()
        # search_docs' genre statistics: share per common genre, the rarest share among them,
        # documents, and when they were read.
        self._genre_stats: tuple[dict[str, float], float, float, float] = ({}, math.inf, 0.0, -math.inf)

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self._conninfo, autocommit=True)

    @contextlib.contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection; every database failure leaves as SearchUnavailable."""
        try:
            proxied = self._pool.connect()
        except (psycopg.Error, sa_exc.SQLAlchemyError, OSError) as exc:
            raise SearchUnavailable(f"postgres: {type(exc).__name__}: {exc}") from exc
        try:
            conn: psycopg.Connection[Any] = proxied.dbapi_connection  # type: ignore[assignment]
            if not self._ready:
                self._ensure_schema(conn)
            yield conn
        except psycopg.Error as exc:
            if proxied.dbapi_connection is not None and (
                proxied.dbapi_connection.closed or getattr(proxied.dbapi_connection, "broken", False)
            ):
                proxied.invalidate()
            raise SearchUnavailable(f"postgres: {type(exc).__name__}: {exc}") from exc
        finally:
            proxied.close()

    def _ensure_schema(self, conn: psycopg.Connection[Any]) -> None:
        """Creates what is missing (idempotent; an advisory lock keeps processes from racing)."""
        with self._lock:
            if self._ready:
                return
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key ^ 1,))
                if self.schema:
                    conn.execute(
                        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
                    )
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS search_meta (one integer PRIMARY KEY CHECK (one = 1), "
                    "seq bigint NOT NULL, generation bigint NOT NULL)"
                )
                conn.execute("INSERT INTO search_meta VALUES (1, 0, 0) ON CONFLICT DO NOTHING")
                has_tiers = conn.execute(
                    "SELECT count(*) FROM pg_attribute WHERE attrelid = 'search_meta'::regclass "
                    "AND attname = 'tiers' AND NOT attisdropped"
                ).fetchone()
                if not (has_tiers and has_tiers[0]):  # made before rank tiers existed
                    conn.execute("ALTER TABLE search_meta ADD COLUMN tiers float8[]")
                exists = conn.execute("SELECT to_regclass('search_docs') IS NOT NULL").fetchone()
                if not (exists and exists[0]):
                    conn.execute(_docs_table_sql("search_docs"))
                    conn.execute(_words_table_sql("search_words"))
                    for stmt in _index_sql("search_docs", "search_docs"):
                        conn.execute(stmt)
            self._ready = True

    # Reading ---------------------------------------------------------------------------------
    def search(self, query: IndexQuery, *, limit: int, offset: int) -> Hits:
        short = _short_words_only(query)
        with self._conn() as conn:
            if not short:
                return self._search(conn, query, limit=limit, offset=offset)
            key = (query, limit, offset, self._version(conn))
            hits = self._short_cache.get(key)
            if hits is None:
                hits = self._search(conn, query, limit=limit, offset=offset)
                if len(self._short_cache) > 16_384:
                    self._short_cache.clear()
                self._short_cache[key] = hits
            return hits

    def version(self) -> object:
        """Asked before every search (the answer cache): read at most every VERSION_TTL_S, like
        the tantivy adapter's reader reloads. A version that lags only ever files a newer answer
        under an older version, which the next reading replaces."""
        at, seen = self._seen_version
        now = time.monotonic()
        if now - at < VERSION_TTL_S:
            return seen
        with self._conn() as conn:
            seen = self._version(conn)
        self._seen_version = (now, seen)
        return seen

    def _version(self, conn: psycopg.Connection[Any]) -> object:
        """Every commit and rebuild updates the meta row: its xmin (the writing transaction)
        changes with what searches see, in every process, in the same transaction."""
        row = conn.execute("SELECT xmin::text, generation FROM search_meta").fetchone()
        return (row[0], int(row[1])) if row else None

    def _search(self, conn: psycopg.Connection[Any], query: IndexQuery, *, limit: int, offset: int) -> Hits:
        where = ["kind = %(kind)s", "(public OR owner_id = %(viewer)s)"]
        params: dict[str, Any] = {"kind": query.kind, "viewer": query.viewer_id}
        if query.genres:
            where.append("genre_keys @> %(genres)s")
            params["genres"] = list(query.genres)
        if query.years:
            where.append("year BETWEEN %(y0)s AND %(y1)s")
            params["y0"], params["y1"] = query.years
        if not query.must:
            rows = conn.execute(
                f"SELECT id, popularity, count(*) OVER () FROM search_docs WHERE {' AND '.join(where)} "  # noqa: S608 - fixed SQL, bound parameters
                "ORDER BY popularity DESC, id LIMIT %(limit)s OFFSET %(offset)s",
                {**params, "limit": limit, "offset": offset},
            ).fetchall()
            total = rows[0][2] if rows else self._count(conn, where, params) if offset else 0
            return Hits([r[0] for r in rows], [blend(1.0, r[1]) for r in rows], total)
        pages, tiers = self._layout(conn)
        tsqs = _tsqueries(query.must, self._expand(conn, query.must), any_name=bool(tiers))
        if tsqs is None:
            return Hits([], [], 0)
        genre_lexemes = [_lexeme("k" + g) for g in query.genres]
        if tiers and genre_lexemes and all(genre_lexemes):
            # The documents carry `k` lexemes (written since rank tiers were): the genres are one
            # more GIN key, and the genre_keys condition only a check (no index of its own).
            where[2] = "(genre_keys @> %(genres)s) IS TRUE"
            tsqs.append(" & ".join(g for g in genre_lexemes if g))
        fields = list(dict.fromkeys(f for m in query.must for f in m.fields))
        columns = ", ".join(_TEXT_COLUMNS[f] for f in fields)
        where.append(" AND ".join(f"tsv @@ %(q{i})s::tsquery" for i in range(len(tsqs))))
        window = _window(offset, limit)
        params.update({f"q{i}": q for i, q in enumerate(tsqs)}, q=" & ".join(tsqs), window=window)
        params["cap"] = COUNT_CAP + 1
        gin_where = " AND ".join(["(kind = %(kind)s) IS TRUE", *where[1:]])  # no btree index applies
        if query.genres and self._genre_rows(conn, query.genres) <= GENRE_SCAN_ROWS:
            # The text conditions written so that no GIN index on tsv applies.
            where = ["(kind = %(kind)s) IS TRUE", *where[1:-1], f"({where[-1]}) IS TRUE"]
            where[2] = "genre_keys @> %(genres)s"  # the only index that applies
            rows = conn.execute(
                f"SELECT id, popularity, {columns}, count(*) OVER () FROM search_docs "  # noqa: S608 - fixed SQL, bound parameters
                f"WHERE {' AND '.join(where)} ORDER BY rank DESC LIMIT %(window)s",
                params,
            ).fetchall()
            rows, found = [r[:-1] for r in rows], (int(rows[0][-1]) if rows else 0)  # counted exactly
        elif tiers:
            rows, found = self._tiered(conn, tiers, pages, gin_where, columns, params, window)
        else:
            rows, found = self._untiered(conn, where, pages, gin_where, columns, params)
        scored: list[tuple[float, str]] = []
        memos: list[dict[str, float]] = [{} for _ in query.must]
        for row in rows:
            words = {f: (row[2 + i] or "").split() for i, f in enumerate(fields)}
            text = text_score(query.must, words, memos)
            if text:
                scored.append((blend(text, row[1]), row[0]))
        scored.sort(key=lambda x: (-x[0], x[1]))
        dropped = len(rows) - len(scored)  # candidates the SQL over-approximated
        page = scored[offset : offset + limit]
        return Hits([i for _, i in page], [s for s, _ in page], max(found - dropped, len(scored)))

    def _untiered(
        self,
        conn: psycopg.Connection[Any],
        where: list[str],
        pages: int,
        gin_where: str,
        columns: str,
        params: dict[str, Any],
    ) -> tuple[list[tuple[Any, ...]], int]:
        """Candidates (id, popularity, text columns) and the number of matches, exact up to
        COUNT_CAP, without rank tiers (an index no rebuild() has made yet)."""
        # The first COUNT_CAP + 1 matches from the GIN index, in the heap's order (it stops early),
        # counted, and the best of them by static rank (an upper bound of what one word can
        # score in a document: its shortest field, weighted, times its popularity).
        rows = conn.execute(
            f"SELECT id, popularity, count(*) OVER (), max(blk) OVER (), {columns} FROM ("  # noqa: S608 - fixed SQL, bound parameters
            f"SELECT id, popularity, rank, (ctid::text::point)[0] AS blk, {columns} FROM search_docs "
            f"WHERE {gin_where} LIMIT %(cap)s) m ORDER BY rank DESC LIMIT %(window)s",
            params,
        ).fetchall()
        found = rows[0][2] if rows else 0
        if found > COUNT_CAP:
            # More match than that: how far into the table the scan had to go to find them
            # estimates how many there are. Dense matches: walk the rank index and stop after
            # `window` of them (the tsquery written so that no GIN index applies); sparser ones:
            # sort every GIN match by rank. `total` is then that estimate.
            found = max(COUNT_CAP + 1, int(COUNT_CAP * pages / (rows[0][3] + 1)))
            dense = (rows[0][3] + 1) / pages < DENSE_FRACTION
            sql_text = (
                f"SELECT id, popularity, 0, 0, {columns} FROM search_docs WHERE "  # noqa: S608 - fixed SQL, bound parameters
                + (" AND ".join([*where[:-1], "(tsv @@ %(q)s::tsquery) IS TRUE"]) if dense else gin_where)
                + " ORDER BY rank DESC LIMIT %(window)s"
            )
            seen = {r[0] for r in rows}
            rows += [r for r in conn.execute(sql_text, params).fetchall() if r[0] not in seen]
        return [(r[0], r[1], *r[4:]) for r in rows], found

    def _tiered(
        self,
        conn: psycopg.Connection[Any],
        tiers: Sequence[tuple[float, float]],
        pages: int,
        gin_where: str,
        columns: str,
        params: dict[str, Any],
        window: int,
    ) -> tuple[list[tuple[Any, ...]], int]:
        """Candidates (id, popularity, text columns): the `window` best matches by static rank,
        and the number of matches, exact up to COUNT_CAP.

        The first COUNT_CAP + 1 matches are read band by band, best band first, each band from
        its own partial GIN index (the last band: the documents of no tier), stopping early.
        Fewer: every match was read, counted exactly, and the best are chosen among them. More,
        ending in band `last`: every match of the bands before it was read, and they outrank all
        others, so when they hold a window they are the best of all; otherwise band `last` and
        the next ones are asked for their best, until a window is found. A query matching much
        of the catalog thus reads the postings of its best documents only, not all of its own.
        `total` is then estimated from how far into the table band `last` was read and the
        share of the documents the bands read hold."""
        n = len(tiers)
        bands = [_band(tiers, i) for i in range(n + 1)]
        union = " UNION ALL ".join(
            f"(SELECT id, popularity, {columns}, rank, {i} AS band, (ctid::text::point)[0] AS blk "  # noqa: S608 - fixed SQL, bound parameters
            f"FROM search_docs WHERE {gin_where} AND {band})"
            for i, band in enumerate(bands)
        )
        rows = conn.execute(
            f"SELECT id, popularity, {columns}, last, complete, last_blk, read FROM ("  # noqa: S608 - fixed SQL, bound parameters
            "SELECT *, count(*) OVER () AS read, count(*) FILTER (WHERE band < last) OVER () AS complete, "
            "max(blk) FILTER (WHERE band = last) OVER () AS last_blk FROM ("
            f"SELECT *, max(band) OVER () AS last FROM ({union} LIMIT %(cap)s) a) b) c "
            "ORDER BY rank DESC LIMIT %(window)s",
            params,
        ).fetchall()
        if not rows:
            return [], 0
        last, complete, last_blk, read = (int(x) for x in rows[0][-4:])
        out = [r[:-4] for r in rows]
        if read <= COUNT_CAP:
            return out, read
        share = tiers[last][0] if last < n else 1.0
        found = max(COUNT_CAP + 1, int((complete + (read - complete) * pages / (last_blk + 1)) / share))
        if complete >= window:
            return out, found
        out = out[:complete]  # every match of the bands before `last`, the best first
        for i in range(last, n + 1):
            best = conn.execute(
                f"SELECT id, popularity, {columns} FROM search_docs WHERE {gin_where} AND {bands[i]} "  # noqa: S608 - fixed SQL, bound parameters
                "ORDER BY rank DESC LIMIT %(window)s",
                params,
            ).fetchall()
            out += best
            if len(out) >= window:
                break
        return out[:window], found  # in rank order: bands best first, each best first

    def _genre_rows(self, conn: psycopg.Connection[Any], genres: Sequence[str]) -> float:
        """How many documents carry all these genres, as ANALYZE estimates it (its most common
        genres and their shares; any other is rarer than those), refreshed every minute."""
        now = time.monotonic()
        if now - self._genre_stats[3] > 60:
            row = conn.execute(
                "SELECT s.most_common_elems::text::text[], s.most_common_elem_freqs, c.reltuples "
                "FROM pg_class c LEFT JOIN pg_stats s ON s.schemaname = current_schema() "
                "AND s.tablename = 'search_docs' AND s.attname = 'genre_keys' "
                "WHERE c.oid = 'search_docs'::regclass"
            ).fetchone()
            if row is None or row[0] is None or row[1] is None or len(row[1]) < len(row[0]) + 1:
                self._genre_stats = ({}, math.inf, 0.0, now)
            else:
                elems, freqs = row[0], row[1]
                self._genre_stats = (dict(zip(elems, freqs, strict=False)), freqs[len(elems)], row[2], now)
        shares, rarest, rows, _ = self._genre_stats
        return min(float(shares.get(g, rarest)) for g in genres) * max(float(rows), 0.0)

    def _layout(self, conn: psycopg.Connection[Any]) -> tuple[int, list[tuple[float, float]]]:
        """search_docs' pages (for estimates) and its rank tiers (fraction, threshold)."""
        row = conn.execute(
            "SELECT greatest(c.relpages, 1), m.tiers FROM pg_class c, search_meta m "
            "WHERE c.oid = 'search_docs'::regclass"
        ).fetchone()
        if row is None:
            return 1, []
        return int(row[0]), _tiers([(t[0], t[1]) for t in row[1] or ()])

    def _count(self, conn: psycopg.Connection[Any], where: list[str], params: dict[str, Any]) -> int:
        row = conn.execute(
            f"SELECT count(*) FROM search_docs WHERE {' AND '.join(where)}",  # noqa: S608 - fixed SQL, bound parameters
            params,
        ).fetchone()
        return int(row[0]) if row else 0

    def _expand(self, conn: psycopg.Connection[Any], musts: Sequence[Must]) -> list[Expansion]:
        """For each Must, the vocabulary words (with their field bits) its typo-tolerant term
        matches with a typo, or as a prefix with a typo; and those its word being typed, longer
        than SHORT_PREFIX, begins (None: too many, or not such a word)."""
        out: list[Expansion] = [({}, None) for _ in musts]
        typed = [_typed_term(m) for m in musts]
        if any(_fuzzy_term(m) for m in musts) or any(typed):
            self._vocabulary.refresh(conn)
            for i, must in enumerate(musts):
                term = _fuzzy_term(must)
                fuzzy = self._vocabulary.expand(term) if term is not None else {}
                word = typed[i]
                out[i] = (fuzzy, self._vocabulary.prefixed(word.text) if word is not None else None)
        return out

    def count(self, kind: Kind) -> int:
        with self._conn() as conn, conn.transaction():
            conn.execute(f"SET LOCAL statement_timeout = {WRITE_TIMEOUT_MS}")
            row = conn.execute("SELECT count(*) FROM search_docs WHERE kind = %s", (kind,)).fetchone()
        return int(row[0]) if row else 0

    def applied_seq(self) -> int:
        with self._conn() as conn:
            row = conn.execute("SELECT seq, generation FROM search_meta").fetchone()
        if row is None:
            return 0
        with self._lock:
            if not self._pending:
                self._generation = int(row[1])
        return int(row[0])

    # Writing ---------------------------------------------------------------------------------
    def upsert(self, docs: Sequence[SearchDoc]) -> None:
        with self._lock:
            for d in docs:
                self._pending[(d.kind, d.id)] = d

    def delete(self, keys: Iterable[tuple[Kind, str]]) -> None:
        with self._lock:
            for key in keys:
                self._pending[key] = None

    def commit(self, seq: int) -> None:
        with self._lock:
            pending = dict(self._pending)
            generation = self._generation
        vocabulary: dict[str, int] = {}
        rows = [_doc_row(d, vocabulary) for d in pending.values() if d is not None]
        with self._conn() as conn, conn.transaction():
            conn.execute(f"SET LOCAL statement_timeout = {WRITE_TIMEOUT_MS}")
            row = conn.execute("SELECT generation FROM search_meta FOR UPDATE").fetchone()
            if row is None:
                raise SearchUnavailable("postgres: search_meta has no row")
            if generation is not None and int(row[0]) != generation:
                # A rebuild swapped the tables after these changes were read: they may be older
                # than what it wrote, so the caller must replay them (from the new applied_seq).
                with self._lock:
                    self._pending.clear()
                    self._generation = None
                raise SearchUnavailable("the index was rebuilt meanwhile; replay from applied_seq()")
            if pending:
                kinds, ids = zip(*pending, strict=True)
                conn.execute(
                    "DELETE FROM search_docs d USING unnest(%s::text[], %s::text[]) AS k(kind, id) "
                    "WHERE d.kind = k.kind AND d.id = k.id",
                    (list(kinds), list(ids)),
                )
            if rows:
                with conn.cursor().copy(f"COPY search_docs ({_DOC_COLUMNS}) FROM STDIN") as copy:
                    for r in rows:
                        copy.write_row(r)
            if vocabulary:
                words = sorted(vocabulary)
                conn.execute(
                    "INSERT INTO search_words (word, fields) SELECT * FROM unnest(%s::text[], %s::int[]) "
                    "ON CONFLICT (word) DO UPDATE SET fields = search_words.fields | excluded.fields, "
                    "n = excluded.n "
                    "WHERE search_words.fields | excluded.fields <> search_words.fields",
                    (words, [vocabulary[w] for w in words]),
                )
            conn.execute("UPDATE search_meta SET seq = %s", (seq,))
        with self._lock:
            for key, doc in pending.items():
                if self._pending.get(key, doc) is doc:
                    self._pending.pop(key, None)
            self._short_cache.clear()
            self._seen_version = (-1e18, None)  # this process's next version() reads the new one
        self._vocabulary.checked = -math.inf  # this process's next search sees the new words

    def rebuild(self) -> PostgresIndexBuilder:
        return PostgresIndexBuilder(self)

    def try_lead(self) -> bool:
        with self._lock:
            if self._lead_conn is not None and not self._lead_conn.closed:
                try:
                    self._lead_conn.execute("SELECT 1")
                    return True
                except psycopg.Error:
                    self._lead_conn.close()  # the session, and the lock with it, is gone
            self._lead_conn = None
            try:
                conn = self._connect()
                row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self._lock_key,)).fetchone()
            except psycopg.Error:
                return False  # no database, no leader
            if row and row[0]:
                self._lead_conn = conn
                return True
            conn.close()
            return False

    def close(self) -> None:
        with self._lock:
            if self._lead_conn is not None:
                # Released before closing: the server ends a closed session's backend (and its
                # locks) a moment later, and another process must be able to lead at once.
                with contextlib.suppress(psycopg.Error):
                    self._lead_conn.execute("SELECT pg_advisory_unlock(%s)", (self._lock_key,))
                self._lead_conn.close()
                self._lead_conn = None
        self._pool.dispose()


class PostgresIndexBuilder:
    """COPYs documents into fresh tables (no indexes while loading), indexes them, and swaps them
    in for the live ones in one transaction."""

    def __init__(self, index: PostgresSearchIndex) -> None:
        self._index = index
        suffix = secrets.token_hex(4)
        self._docs, self._words = f"search_docs_build_{suffix}", f"search_words_build_{suffix}"
        self._vocabulary: dict[str, int] = {}
        with index._conn():
            pass  # the live schema exists (the swap needs search_meta)
        try:
            self._conn = index._connect()
            self._conn.execute("SET statement_timeout = 0")
            self._conn.execute(_docs_table_sql(self._docs))
        except psycopg.Error as exc:
            raise SearchUnavailable(f"postgres: {type(exc).__name__}: {exc}") from exc

    def add(self, docs: Sequence[SearchDoc]) -> None:
        rows = [_doc_row(d, self._vocabulary) for d in docs]
        try:
            with self._conn.cursor().copy(
                sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(self._docs), sql.SQL(_DOC_COLUMNS))
            ) as copy:
                for r in rows:
                    copy.write_row(r)
        except psycopg.Error as exc:
            raise SearchUnavailable(f"postgres: {type(exc).__name__}: {exc}") from exc

    def finish(self, seq: int) -> None:
        conn = self._conn
        try:
            conn.execute(_words_table_sql(self._words))
            with conn.cursor().copy(
                sql.SQL("COPY {} (word, fields) FROM STDIN").format(sql.Identifier(self._words))
            ) as copy:
                for word, bits in self._vocabulary.items():
                    copy.write_row((word, bits))
            conn.execute("SET maintenance_work_mem = '256MB'")
            statements = _index_sql(self._docs, self._docs)
            try:
                conn.execute(statements[0])  # the primary key
            except psycopg.errors.UniqueViolation:
                # A document added twice (it changed while the build read it): the last one wins.
                conn.execute(
                    sql.SQL(
                        "DELETE FROM {t} a USING {t} b "
                        "WHERE a.kind = b.kind AND a.id = b.id AND a.ctid < b.ctid"
                    ).format(t=sql.Identifier(self._docs))
                )
                conn.execute(statements[0])
            # The rank tiers: thresholds from the documents' static ranks, a partial GIN index per
            # band (they partition the table: no GIN index of every document is needed then).
            row = conn.execute(
                sql.SQL(
                    "SELECT (percentile_disc(%s::float8[]) WITHIN GROUP (ORDER BY rank DESC))::float8[] "
                    "FROM {}"
                ).format(sql.Identifier(self._docs)),
                (list(TIER_FRACTIONS),),
            ).fetchone()
            tiers = _tiers(list(zip(TIER_FRACTIONS, row[0] or (), strict=False)) if row else [])
            for stmt in statements[2:] if tiers else statements[1:]:  # [1]: the GIN index on tsv
                conn.execute(stmt)
            for stmt in _tier_index_sql(self._docs, self._docs, tiers) if tiers else []:
                conn.execute(stmt)
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(self._docs)))
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(self._words)))
            with conn.transaction():
                conn.execute("SELECT generation FROM search_meta FOR UPDATE")
                for live, built in (("search_docs", self._docs), ("search_words", self._words)):
                    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(live)))
                    conn.execute(
                        sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                            sql.Identifier(built), sql.Identifier(live)
                        )
                    )
                for old, new in _index_renames(self._docs, len(tiers)):
                    conn.execute(
                        sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                            sql.Identifier(old), sql.Identifier(new)
                        )
                    )
                conn.execute(
                    "UPDATE search_meta SET seq = %s, generation = generation + 1, tiers = %s::float8[]",
                    (seq, [list(t) for t in tiers] or None),
                )
        except psycopg.Error as exc:
            self.abort()
            raise SearchUnavailable(f"postgres: {type(exc).__name__}: {exc}") from exc
        finally:
            conn.close()
        with self._index._lock:
            self._index._short_cache.clear()
            self._index._seen_version = (-1e18, None)

    def abort(self) -> None:
        if self._conn.closed:
            self._conn = self._index._connect()
        try:
            for table in (self._docs, self._words):
                self._conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))
        finally:
            self._conn.close()


def _index_renames(build: str, tiers: int) -> list[tuple[str, str]]:
    """The build's indexes and their live names; with `tiers`, the bands' instead of "tsv"."""
    suffixes = ["pkey", "genres", "popular", "rank", "words_pkey", "words_n"]
    suffixes += [f"tier{i}" for i in range(tiers + 1)] if tiers else ["tsv"]
    return [(f"{build}_{s}", f"search_docs_{s}") for s in suffixes]
