"""Embedded search engines on a synthetic catalog: build time, size, as-you-type latency.

Measures the adapter Tonearm ships (tantivy) and, for the choice of engine, a SQLite FTS5
prototype given the same job (prefix indexes for as-you-type; typo tolerance through a
vocabulary table, since FTS5 has none of its own). Queries are the `_searchdata.queries()`
as-you-type workload, parsed by the real parser, one at a time, warm.

    .venv/bin/python bench/search_engines.py [--n 1000000] [--queries 20000] [--engines tantivy,fts5]
"""

from __future__ import annotations

import argparse
import gc
import pickle
import shutil
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from _common import machine
from _searchdata import Catalog, catalog, queries
from tonearm.adapters.search._scoring import osa_distance, text_score
from tonearm.adapters.search.tantivy import TantivySearchIndex
from tonearm.domains.search.query import parse
from tonearm.kernel.errors import BadRequest
from tonearm.ports.search import FIELDS, FUZZY_FIELDS, IndexQuery, blend, genre_key, tokens

CACHE = Path.home() / ".cache" / "tonearm-bench"


def load(n: int) -> Catalog:
    path = CACHE / f"searchdata-{n}.pickle"
    if path.exists():
        return pickle.loads(path.read_bytes())  # noqa: S301 - our own cache file
    t0 = time.perf_counter()
    cat = catalog(n)
    print(f"generated {len(cat.all()):,} documents in {time.perf_counter() - t0:.1f} s")
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(cat, protocol=pickle.HIGHEST_PROTOCOL))
    return cat


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def percentiles(ms: list[float]) -> str:
    ms = sorted(ms)

    def pick(q: float) -> float:
        return ms[min(len(ms) - 1, round(q * (len(ms) - 1)))]

    return (
        f"p50 {statistics.median(ms):6.2f} ms  p90 {pick(0.9):6.2f}  p99 {pick(0.99):6.2f}  max {ms[-1]:7.2f}"
    )


def workload(cat: Catalog, n: int) -> list[IndexQuery]:
    out = []
    for q in queries(cat, n):
        try:
            parsed = parse(q)
        except BadRequest:
            continue
        iq = parsed.for_kind("track", None)
        if iq is not None:
            out.append(iq)
    return out


def bench_tantivy(cat: Catalog, qs: list[IndexQuery], tmp: Path) -> None:
    idx = TantivySearchIndex(tmp / "tantivy")
    docs = cat.all()
    t0 = time.perf_counter()
    builder = idx.rebuild()
    for i in range(0, len(docs), 10_000):
        builder.add(docs[i : i + 10_000])
    builder.finish(1)
    build_s = time.perf_counter() - t0
    print(
        f"tantivy  build {build_s:6.1f} s for {len(docs):,} documents, "
        f"{dir_size(tmp / 'tantivy') / 2**20:,.0f} MiB"
    )
    for q in qs[:200]:
        idx.search(q, limit=20, offset=0)  # warm
    times, totals = [], []
    for q in qs:
        t = time.perf_counter()
        hits = idx.search(q, limit=20, offset=0)
        times.append((time.perf_counter() - t) * 1000)
        totals.append(hits.total)
    print(f"tantivy  {len(qs):,} as-you-type queries (limit 20): {percentiles(times)}")
    print(f"         median hits per query {statistics.median(totals):,.0f}")
    idx.close()


class Fts5:
    """The same job on SQLite FTS5: words must match (prefix for the word being typed), typos
    through a vocabulary scanned with a length filter, ranked by bm25() and re-ranked like the
    tantivy adapter."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path)
        self.db.execute("PRAGMA journal_mode=WAL")
        cols = ", ".join(FIELDS)
        self.db.execute(
            f"CREATE VIRTUAL TABLE docs USING fts5(id UNINDEXED, kind UNINDEXED, {cols}, "
            "genre_keys UNINDEXED,"
            " year UNINDEXED, popularity UNINDEXED, public UNINDEXED, owner UNINDEXED,"
            " tokenize='unicode61 remove_diacritics 0', prefix='1 2 3')"
        )
        self.db.execute("CREATE VIRTUAL TABLE vocab USING fts5vocab(docs, 'row')")

    def build(self, docs: list) -> None:  # type: ignore[type-arg]
        rows = (
            (
                d.id,
                d.kind,
                *(" ".join(tokens(d.text(f))) for f in FIELDS),
                "|".join(genre_key(g) for g in d.genres),
                d.year,
                d.popularity,
                int(d.public),
                d.owner_id,
            )
            for d in docs
        )
        with self.db:
            self.db.executemany("INSERT INTO docs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        with self.db:
            self.db.execute("CREATE TABLE words AS SELECT term, length(term) AS n FROM vocab")
            self.db.execute("CREATE INDEX words_n ON words(n)")
        self.words_by_len: dict[int, list[str]] = {}
        for term, n in self.db.execute("SELECT term, n FROM words"):
            self.words_by_len.setdefault(n, []).append(term)

    def _expand(self, text: str, edits: int) -> list[str]:
        out = []
        for n in range(len(text) - edits, len(text) + edits + 1):
            out += [w for w in self.words_by_len.get(n, ()) if osa_distance(text, w, edits) <= edits]
        return out[:50]

    def search(self, q: IndexQuery, limit: int) -> int:
        parts = []
        for must in q.must:
            cols = "{" + " ".join(must.fields) + "}"
            if must.phrase:
                parts.append(f'{cols} : "' + " ".join(t.text for t in must.terms) + '"')
                continue
            t = must.terms[0]
            alts = [f'"{t.text}"']
            if t.prefix:
                alts.append(f'"{t.text}" *')
            if t.edits:
                alts += [f'"{w}"' for w in self._expand(t.text, t.edits) if w != t.text]
            parts.append(f"{cols} : (" + " OR ".join(alts) + ")")
        match = " AND ".join(parts)
        rows = self.db.execute(
            "SELECT id, name, artists, album, genres, description, popularity FROM docs WHERE docs MATCH ?"
            " AND kind = ? AND public = 1 ORDER BY bm25(docs, 0, 0, 4, 2.5, 1.5, 1, 0.5) LIMIT 200",
            (match, q.kind),
        ).fetchall()
        total = self.db.execute(
            "SELECT count(*) FROM docs WHERE docs MATCH ? AND kind = ?", (match, q.kind)
        ).fetchone()[0]
        scored = []
        for r in rows:
            words = {f: (r[i + 1] or "").split() for i, f in enumerate(FIELDS)}
            s = text_score(q.must, words)
            if s:
                scored.append((blend(s, r[6]), r[0]))
        scored.sort(reverse=True)
        return int(total)


def bench_fts5(cat: Catalog, qs: list[IndexQuery], tmp: Path) -> None:
    fts = Fts5(tmp / "fts5.db")
    docs = cat.all()
    t0 = time.perf_counter()
    fts.build(docs)
    print(
        f"fts5     build {time.perf_counter() - t0:6.1f} s for {len(docs):,} documents, "
        f"{(tmp / 'fts5.db').stat().st_size / 2**20:,.0f} MiB"
    )
    plain = [q for q in qs if not q.genres and not q.years]
    times = []
    for q in plain:
        t = time.perf_counter()
        fts.search(q, 20)
        times.append((time.perf_counter() - t) * 1000)
    print(f"fts5     {len(plain):,} as-you-type queries (limit 20): {percentiles(times)}")
    _ = FUZZY_FIELDS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000, help="tracks in the synthetic catalog")
    ap.add_argument("--queries", type=int, default=20_000)
    ap.add_argument("--engines", default="tantivy,fts5")
    args = ap.parse_args()
    print(machine())
    cat = load(args.n)
    qs = workload(cat, args.queries)
    print(f"catalog: {len(cat.tracks):,} tracks, {len(cat.albums):,} albums, {len(cat.artists):,} artists")
    gc.collect()
    with tempfile.TemporaryDirectory() as tmp:
        for engine in args.engines.split(","):
            {"tantivy": bench_tantivy, "fts5": bench_fts5}[engine](cat, qs, Path(tmp))
            shutil.rmtree(Path(tmp), ignore_errors=True)
            Path(tmp).mkdir(exist_ok=True)


if __name__ == "__main__":
    main()
