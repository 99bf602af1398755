"""The Subsonic API (issue 9) against `tonearm serve` with a 100,000-track catalog:

- a Symfonium-style library sync: `search3` with an empty query, `songCount=500`, `songOffset`
  0, 500, 1,000, ... one request after another over HTTP until a short page (JSON, then XML);
- throughput of `ping` and `getAlbum` (random albums of 10 songs) with wrk, API-key auth.

    .venv/bin/python bench/subsonic.py [--tracks 100000] [--db sqlite|postgres] [--workers 2]
        [--hot-albums N: getAlbum over N albums only, all of them in the album cache] [--skip-sync]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
import sqlalchemy as sa

from _common import Server, bench_db_url, bench_settings, machine, parse_wrk, run_wrk, seed_catalog
from tonearm.bootstrap import bootstrap
from tonearm.domains.catalog.tables import albums

SECRET = "s" * 40
PAGE = 500

LUA_ONE = """
request = function()
  return wrk.format("GET", "%(path)s")
end
"""
LUA_ALBUMS = """
local ids = {}
for line in io.lines("%(ids)s") do ids[#ids + 1] = line end
request = function()
  return wrk.format("GET", "%(path)s" .. ids[math.random(#ids)])
end
"""


def sync(http: httpx.Client, auth: dict[str, str], fmt: str) -> tuple[float, int, int, list[float]]:
    """Seconds for the whole sync, songs seen, distinct songs, and each page's seconds."""
    seen: list[str] = []
    pages: list[float] = []
    offset = 0
    started = time.perf_counter()
    while True:
        params: dict[str, str | int] = {**auth, "f": fmt, "query": "", "artistCount": 0, "albumCount": 0}
        params["songCount"] = PAGE
        t0 = time.perf_counter()
        r = http.get("/rest/search3", params={**params, "songOffset": offset})
        r.raise_for_status()
        if fmt == "json":
            songs = r.json()["subsonic-response"]["searchResult3"].get("song", [])
            ids = [s["id"] for s in songs]
        else:
            ids = [part.split('"', 2)[1] for part in r.text.split("<song id=")[1:]]
        pages.append(time.perf_counter() - t0)
        seen += ids
        if len(ids) < PAGE:
            break
        offset += PAGE
    return time.perf_counter() - started, len(seen), len(set(seen)), pages


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tracks", type=int, default=100_000)
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--hot-albums", type=int, default=0, help="getAlbum over only this many albums (0: all)")
    ap.add_argument("--skip-sync", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tonearm-bench-"))
    url = bench_db_url(args.db, tmp)
    seed_catalog(url, args.tracks)
    c = bootstrap(bench_settings(tmp, url, SECRET))
    try:
        user_id = c.accounts.sign_up("bench@example.com", "a long password", "Bench", None)
        key = c.credentials.create_key(user_id, "bench")["key"]
        with c.db.read() as conn:
            album_ids = list(conn.execute(sa.select(albums.c.id)).scalars())
    finally:
        c.close()
    ids_file = tmp / "albums.txt"
    ids_file.write_text("\n".join(album_ids[: args.hot_albums] if args.hot_albums else album_ids))
    auth = {"apiKey": key, "c": "bench", "v": "1.16.1"}
    print(f"machine: {machine()}")
    print(f"catalog: {args.tracks} tracks, {len(album_ids)} albums on {args.db}; {args.workers} worker(s)")
    env = {"TONEARM_DATA_DIR": str(tmp / "data"), "TONEARM_DATABASE_URL": url, "TONEARM_SECRET_KEY": SECRET}
    result: dict[str, object] = {}
    with Server(env, workers=args.workers) as srv, httpx.Client(base_url=srv.base, timeout=60) as http:
        # JSON twice: the first sync meets cold caches (the database's and the process's cursors),
        # the second is what a second device syncing the same library sees.
        for run, fmt in enumerate(() if args.skip_sync else ("json", "xml", "json")):
            seconds, n, distinct, pages = sync(http, auth, fmt)
            assert n == distinct == args.tracks, (n, distinct)
            ordered = sorted(pages)
            name = f"sync_{fmt}" if run < 2 else f"sync_{fmt}_again"
            result[name] = {
                "seconds": round(seconds, 2),
                "pages": len(pages),
                "page_p50_ms": round(ordered[len(ordered) // 2] * 1000, 1),
                "page_max_ms": round(ordered[-1] * 1000, 1),
                "first_ms": round(pages[0] * 1000, 1),
                "last_full_ms": round(pages[-2] * 1000, 1) if len(pages) > 1 else None,
            }
            print(f"search3 empty-query sync ({name}): {n} songs in {seconds:.2f} s, {result[name]}")
        query = urlencode(auth)
        ping = f"/rest/ping.view?{query}"
        album_xml = f"/rest/getAlbum.view?{query}&id="
        album_json = f"/rest/getAlbum?{query}&f=json&id="
        assert 'status="ok"' in http.get(ping).text
        assert 'status="ok"' in http.get(album_xml + album_ids[0]).text
        runs = {
            "ping": LUA_ONE % {"path": ping},
            "getAlbum_xml": LUA_ALBUMS % {"path": album_xml, "ids": ids_file},
            "getAlbum_json": LUA_ALBUMS % {"path": album_json, "ids": ids_file},
        }
        for name, lua in runs.items():
            run_wrk(srv.base, lua, connections=32, seconds=3)  # warm up (and fill the album cache)
            got = parse_wrk(run_wrk(srv.base, lua, connections=64, seconds=args.seconds))
            result[name] = got
            print(f"{name}: {got['rps']} req/s (p50 {got['p50']}, p99 {got['p99']})")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
