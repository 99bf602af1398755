"""GET /v1/tracks/{id}: throughput (wrk, saturating) and latency at a fixed 1,000 requests/s, with a
100,000-track catalog; plus the server's memory (RSS).

    .venv/bin/python bench/api_tracks.py [--tracks 100000] [--db sqlite|postgres] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import httpx

from _common import Server, bench_db_url, machine, parse_wrk, run_wrk, seed_catalog

LUA = """
local ids = {}
for line in io.lines("%(ids)s") do ids[#ids + 1] = line end
request = function()
  return wrk.format("GET", "/v1/tracks/" .. ids[math.random(#ids)])
end
%(delay)s
"""


def wrk(base: str, ids_file: Path, *, connections: int, seconds: int, delay_ms: float | None) -> str:
    delay = f"delay = function() return {delay_ms} end" if delay_ms else ""
    return run_wrk(base, LUA % {"ids": ids_file, "delay": delay}, connections=connections, seconds=seconds)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tracks", type=int, default=100_000)
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seconds", type=int, default=15)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tonearm-bench-"))
    url = bench_db_url(args.db, tmp)
    ids = seed_catalog(url, args.tracks)
    ids_file = tmp / "ids.txt"
    ids_file.write_text("\n".join(ids))
    print(f"machine: {machine()}")
    print(f"catalog: {len(ids)} tracks on {args.db}; server: {args.workers} uvicorn worker(s)")
    env = {"TONEARM_DATA_DIR": str(tmp / "data"), "TONEARM_DATABASE_URL": url, "TONEARM_SECRET_KEY": "b" * 40}
    with Server(env, workers=args.workers) as srv:
        sample = httpx.get(f"{srv.base}/v1/tracks/{ids[0]}").json()
        assert sample["id"] == ids[0], sample
        wrk(srv.base, ids_file, connections=32, seconds=3, delay_ms=None)  # warm caches and JIT-free paths
        sat = parse_wrk(wrk(srv.base, ids_file, connections=64, seconds=args.seconds, delay_ms=None))
        # ~1,000 req/s: 50 connections each waiting 50 ms between requests.
        fixed = parse_wrk(wrk(srv.base, ids_file, connections=50, seconds=args.seconds, delay_ms=50))
        rss = srv.rss_mb()
    result = {"saturating": sat, "fixed_rate": fixed, "rss_mb": {str(k): v for k, v in rss.items()}}
    print(json.dumps(result, indent=2))
    print(
        f"throughput: {sat['rps']} req/s (p99 {sat['p99']}); at ~{fixed['rps']} req/s: p50 {fixed['p50']}, "
        f"p99 {fixed['p99']}; RSS/anonymous per process (MB): "
        f"{', '.join(f'{a:.0f}/{b:.0f}' for a, b in rss.values())}"
    )


if __name__ == "__main__":
    main()
