"""Search through the HTTP API: queries/s and latency of `GET /v1/search` (and of the as-you-type
`GET /v1/search/suggest`) with wrk, on a catalog of --tracks tracks with realistic word statistics,
for 1 and 2 uvicorn workers, with the embedded index (tantivy) and SQLite.

The catalog is `_searchdata.catalog()` (Zipf-distributed title words, shared artists and albums,
~300 genres, descriptions, power-law plays) written straight into the catalog's tables, then
indexed by `tonearm search reindex`. The load is `_searchdata.queries()`: what search boxes send
keystroke by keystroke (`q=t`, `q=ti`, ... `q=time baby a`), biased towards popular tracks, with
typos and filters, so most requests are one-letter-to-few-letters prefix queries, the expensive
kind. Each /v1/search request asks for `type=track,artist,album&limit=10`: three index queries
and a page of each kind's objects.

    .venv/bin/python bench/search_api.py [--tracks 100000] [--seconds 15] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlencode, urlparse

import httpx
import sqlalchemy as sa

import _searchdata
from _common import Server, cpu_seconds, machine, parse_wrk, run_wrk
from tonearm import migrate
from tonearm.domains.catalog.service import name_key, slugify
from tonearm.domains.catalog.tables import (
    albums,
    artists,
    genres,
    image_variants,
    images,
    track_artists,
    track_genres,
    tracks,
)
from tonearm.kernel.db import make_engine
from tonearm.kernel.ids import new_id
from tonearm.ports.search import SearchDoc

# Each wrk thread walks the requests in its own order (by `tid`), as independent listeners would:
# threads that walked the same order would ask each query twice in a row, flattering the cache.
LUA = """
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
local paths = {}
for line in io.lines("%(paths)s") do paths[#paths + 1] = line end
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", paths[(n * 7919 + %(offset)d + tid * 104729) %% #paths + 1])
end
%(delay)s
"""


def seed(url: str, docs: Sequence[SearchDoc]) -> None:
    """Writes track documents into the catalog's tables as ingest would leave them (metadata and
    cover rows only). A private track gets no owner (the synthetic owners are not users)."""
    migrate.upgrade(url)
    engine = make_engine(url)
    now = dt.datetime.now(dt.UTC)
    artist_ids: dict[str, str] = {}
    album_ids: dict[tuple[str, str], str] = {}
    genre_ids: dict[str, int] = {}
    rows: dict[str, list[dict[str, object]]] = {
        k: [] for k in ("artists", "images", "variants", "albums", "genres", "tracks", "ta", "tg")
    }

    def artist(name: str) -> str:
        key = name_key(name)
        if key not in artist_ids:
            artist_ids[key] = new_id()
            rows["artists"].append({"id": artist_ids[key], "name": name, "name_key": key, "created_at": now})
        return artist_ids[key]

    def flush(conn: sa.Connection) -> None:
        tables = (
            ("artists", artists),
            ("images", images),
            ("variants", image_variants),
            ("albums", albums),
            ("genres", genres),
            ("tracks", tracks),
            ("ta", track_artists),
            ("tg", track_genres),
        )
        for key, table in tables:
            if rows[key]:
                conn.execute(sa.insert(table), rows[key])
                rows[key].clear()

    with engine.begin() as conn:
        for n, doc in enumerate(docs):
            credited = list(dict.fromkeys(artist(a) for a in doc.artists))
            album_key = (credited[0], name_key(doc.album))
            if album_key not in album_ids:
                album_ids[album_key] = album_id = new_id()
                image_id = new_id()
                rows["images"].append({"id": image_id, "source": "generated", "created_at": now})
                rows["variants"] += [
                    {"image_id": image_id, "size": s, "width": s, "height": s,
                     "blob_key": f"images/{image_id}/{s}.jpg", "content_type": "image/jpeg", "bytes": 1}
                    for s in (640, 300, 64)
                ]  # fmt: skip
                rows["albums"].append(
                    {
                        "id": album_id,
                        "name": doc.album,
                        "artist_id": credited[0],
                        "match_key": f"|{credited[0]}|{album_key[1]}"[:1100],
                        "album_type": "album",
                        "release_date": str(doc.year) if doc.year else None,
                        "release_date_precision": "year" if doc.year else None,
                        "image_id": image_id,
                        "created_at": now,
                    }
                )
            tid = new_id()
            rows["tracks"].append(
                {
                    "id": tid,
                    "title": doc.name,
                    "album_id": album_ids[album_key],
                    "duration_ms": 200_000,
                    "description": doc.description or None,
                    "status": "ready",
                    "visibility": "public" if doc.public else "private",
                    "content_hash": f"{n:064x}",
                    "play_count": doc.popularity,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            rows["ta"] += [{"track_id": tid, "artist_id": a, "position": i} for i, a in enumerate(credited)]
            for slug, g in {slugify(g): g for g in reversed(doc.genres)}.items():  # "Hip Hop" = "hip-hop"
                if slug not in genre_ids:
                    genre_ids[slug] = len(genre_ids) + 1
                    rows["genres"].append({"id": genre_ids[slug], "name": g[:80], "slug": slug})
                rows["tg"].append({"track_id": tid, "genre_id": genre_ids[slug]})
            if len(rows["tracks"]) >= 5000:
                flush(conn)
        flush(conn)
    with engine.connect() as conn:
        conn.execute(sa.text("ANALYZE"))
        conn.commit()
    engine.dispose()


def wrk(base: str, paths: Path, *, connections: int, seconds: int, offset: int, delay_ms: float = 0) -> str:
    delay = f"delay = function() return {delay_ms} end" if delay_ms else ""
    lua = LUA % {"paths": paths, "delay": delay, "offset": offset}
    return run_wrk(base, lua, connections=connections, seconds=seconds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracks", type=int, default=100_000)
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--workers", default="1,2", help="comma-separated uvicorn worker counts to measure")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--search-url", default="", help="the index (default: embedded tantivy in the data dir)")
    ap.add_argument("--cache-ttl", default="0.5", help="search_cache_ttl_s values to measure (0: no reuse)")
    ap.add_argument("--dir", type=Path, help="keep the catalog here, and reuse it when it is already there")
    args = ap.parse_args()
    tmp = args.dir or Path(tempfile.mkdtemp(prefix="tonearm-bench-search-"))
    tmp.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{tmp / 'bench.db'}"
    print(f"machine: {machine()}")
    env = {
        "TONEARM_DATA_DIR": str(tmp / "data"),
        "TONEARM_DATABASE_URL": url,
        "TONEARM_SECRET_KEY": "b" * 40,
        "TONEARM_LOG_LEVEL": "WARNING",
        "TONEARM_SEARCH_URL": args.search_url,
    }
    started = time.perf_counter()
    cat = _searchdata.catalog(args.tracks, 1)
    if (tmp / "bench.db").exists():
        print(f"catalog: {len(cat.tracks)} tracks, reused from {tmp}")
    else:
        seed(url, cat.tracks)
        print(
            f"catalog: {len(cat.tracks)} tracks generated, written in {time.perf_counter() - started:.1f} s"
        )
    if urlparse(args.search_url).scheme != "memory":  # a memory index is built by each server
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "tonearm", "search", "reindex"],
            env={**os.environ, **env},
            check=True,
            stderr=subprocess.DEVNULL,
        )
        print(f"index: rebuilt by `tonearm search reindex` in {time.perf_counter() - started:.1f} s")
    typed = _searchdata.queries(cat, 20_000, 2)
    loads: list[tuple[str, Path]] = []
    for label, params in (
        ("search 3 types", {"type": "track,artist,album", "limit": 10}),
        ("search tracks", {"type": "track", "limit": 10}),
        ("suggest", {}),
        # The same requests without an index query (no playlists yet): what the API layer costs.
        ("no index (type=playlist)", {"type": "playlist", "limit": 10}),
    ):
        path = tmp / f"{label.split()[0]}_{len(params)}_{params.get('type', '')}.txt"
        endpoint = "/v1/search" if params else "/v1/search/suggest"
        path.write_text("\n".join(f"{endpoint}?{urlencode({'q': q, **params})}" for q in typed))
        loads.append((label, path))
    print(f"load: {len(typed)} as-you-type requests, e.g. {typed[:6]}")
    for ttl in args.cache_ttl.split(","):
        for workers in (int(w) for w in args.workers.split(",")):
            for label, paths in loads:
                # A fresh server per load: one load's answers must not warm the next one's cache.
                with Server({**env, "TONEARM_SEARCH_CACHE_TTL_S": ttl}, workers=workers) as srv:
                    sample = httpx.get(f"{srv.base}/v1/search", params={"q": "a", "type": "track"}).json()
                    assert "tracks" in sample, sample
                    wrk(srv.base, paths, connections=16, seconds=3, offset=0)  # warm up
                    before = answered_by(srv.base)
                    cpu_before = sum(cpu_seconds(p) for p in srv.pids())
                    sat = parse_wrk(
                        wrk(srv.base, paths, connections=args.connections, seconds=args.seconds, offset=1)
                    )
                    # The server's own CPU per request: what 2 cores could serve if wrk and
                    # everything else on this machine left them to it.
                    cpu_ms = 1000 * (sum(cpu_seconds(p) for p in srv.pids()) - cpu_before)
                    cpu_ms /= max(int(sat["requests"]), 1)
                    after = answered_by(srv.base)
                    asked = {k: after.get(k, 0) - before.get(k, 0) for k in after}
                    reused = asked.get("cache", 0) / max(sum(asked.values()), 1)
                    # Latency at a sustainable load, half the saturated rate: each of 16 connections
                    # waits 16 / rate seconds between requests.
                    rate = max(float(sat["rps"]) / 2, 1.0)
                    fixed = parse_wrk(
                        wrk(
                            srv.base,
                            paths,
                            connections=16,
                            seconds=args.seconds,
                            delay_ms=1000 * 16 / rate,
                            offset=2,
                        )
                    )
                    print(
                        f"cache {ttl:>3s} s, {workers} worker(s), {label:24s}: {float(sat['rps']):6.0f} q/s "
                        f"(p50 {sat['p50']}, p99 {sat['p99']}, non-2xx {sat['non2xx']}, "
                        f"{reused:.0%} of index queries answered from the cache"
                        f"{' in the process /metrics reached' if workers > 1 else ''}; "
                        f"server CPU {cpu_ms:.2f} ms a request: "
                        f"{2000 / max(cpu_ms, 1e-3):,.0f} q/s on 2 cores); "
                        f"at ~{float(fixed['rps']):.0f} q/s: p50 {fixed['p50']}, p99 {fixed['p99']}",
                        flush=True,
                    )


def answered_by(base: str) -> dict[str, float]:
    """tonearm_search_queries_total by backend (index, database, cache), of the process that answers."""
    out: dict[str, float] = {}
    for line in httpx.get(f"{base}/metrics", timeout=60).text.splitlines():
        m = re.match(r'tonearm_search_queries_total\{backend="(\w+)"\} ([\d.e+]+)', line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


if __name__ == "__main__":
    main()
