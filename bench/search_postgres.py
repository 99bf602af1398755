"""The PostgreSQL search index on a synthetic catalog: build time, size, as-you-type latency.

Loads the `_searchdata` catalog through the adapter's own `rebuild()` builder (COPY, then the
indexes, then the swap) into its own schema, then runs the as-you-type workload of
`search_engines.py` (`workload()`: the real parser, track results, limit 20) one query at a
time, warm, single-threaded, and prints latency percentiles and queries per second.

    .venv/bin/python bench/search_postgres.py [--n 1000000] [--queries 20000] [--schema bench_search]
        [--url postgresql://postgres@127.0.0.1:5432/test] [--reuse]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time

import psycopg

from _common import machine
from search_engines import load, percentiles, workload
from tonearm.adapters.search.postgres import PostgresSearchIndex

DEFAULT_URL = os.environ.get("TONEARM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000, help="tracks in the synthetic catalog")
    ap.add_argument("--queries", type=int, default=20_000)
    ap.add_argument("--url", default=DEFAULT_URL, help="the PostgreSQL database (a schema is made in it)")
    ap.add_argument("--schema", default="bench_search")
    ap.add_argument("--reuse", action="store_true", help="search the index a previous run left in --schema")
    args = ap.parse_args()
    print(machine())
    with psycopg.connect(args.url, autocommit=True) as conn:
        print("PostgreSQL", conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
    sep = "&" if "?" in args.url else "?"
    idx = PostgresSearchIndex(f"{args.url}{sep}options=-csearch_path%3D{args.schema},public")
    cat = load(args.n)
    qs = workload(cat, args.queries)
    docs = cat.all()
    print(f"catalog: {len(cat.tracks):,} tracks, {len(cat.albums):,} albums, {len(cat.artists):,} artists")
    if not args.reuse or idx.count("track") != len(cat.tracks):
        gc.collect()
        t0 = time.perf_counter()
        builder = idx.rebuild()
        for i in range(0, len(docs), 10_000):
            builder.add(docs[i : i + 10_000])
        t1 = time.perf_counter()
        builder.finish(1)
        t2 = time.perf_counter()
        print(
            f"postgres build {t2 - t0:6.1f} s for {len(docs):,} documents "
            f"(rows and COPY {t1 - t0:.1f} s, indexes and swap {t2 - t1:.1f} s)"
        )
    del cat, docs
    gc.collect()
    with psycopg.connect(args.url, autocommit=True) as conn:
        size = conn.execute(
            "SELECT pg_total_relation_size(%s::regclass), pg_total_relation_size(%s::regclass)",
            (f"{args.schema}.search_docs", f"{args.schema}.search_words"),
        ).fetchone()
        assert size is not None
        print(f"         size: search_docs {size[0] / 2**20:,.0f} MiB, words {size[1] / 2**20:,.0f} MiB")
    for q in qs[:200]:
        idx.search(q, limit=20, offset=0)  # warm
    times, totals = [], []
    t0 = time.perf_counter()
    for q in qs:
        t = time.perf_counter()
        hits = idx.search(q, limit=20, offset=0)
        times.append((time.perf_counter() - t) * 1000)
        totals.append(hits.total)
    wall = time.perf_counter() - t0
    print(f"postgres {len(qs):,} as-you-type queries (limit 20): {percentiles(times)}")
    print(
        f"         {len(qs) / wall:,.0f} queries/s, one thread; median total {statistics.median(totals):,.0f}"
    )
    slow = sorted(zip(times, range(len(qs)), strict=True), reverse=True)[:5]
    for ms, i in slow:
        words = " ".join(t.text + ("*" if t.prefix else "") for m in qs[i].must for t in m.terms)
        filters = f"genres={list(qs[i].genres)} " if qs[i].genres else ""
        filters += f"years={qs[i].years} " if qs[i].years else ""
        print(f"         slowest: {ms:7.1f} ms  total {totals[i]:>8,}  {filters}{words!r}")
    idx.close()


if __name__ == "__main__":
    main()
