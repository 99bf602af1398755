"""Playlists: moving one item in a 10,000-track playlist, and reading it page by page.

  - build: the 10,000 tracks added through the service in one call (the API takes 100 a call);
  - moves: --moves random single-item moves (PUT .../tracks with range_start / insert_before),
    through the service, through the app in process (FastAPI's TestClient) and through a real
    server (`tonearm serve`, one keep-alive connection): p50 / p99 and the rows each move writes;
  - reading: every page of the playlist (limit=100, so 100 pages) in turn, through the service
    (objects and their JSON encoding), through the TestClient, one page after another over one
    connection to a real server, and with wrk (saturating, anonymous reads of the public playlist).

Albums get real (tiny) cover files, so the playlist's mosaic is made once, as on a server.

    .venv/bin/python bench/playlists.py [--db sqlite|postgres] [--moves 200] [--workers 1]
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import sqlalchemy as sa
from fastapi.testclient import TestClient
from PIL import Image

from _common import Server, bench_db_url, bench_settings, machine, parse_wrk, run_wrk, seed_catalog
from tonearm.bootstrap import Container, bootstrap
from tonearm.domains.catalog.tables import image_variants
from tonearm.domains.library.tables import playlist_entries
from tonearm.http.app import create_app

N = 10_000
PAGE = 100
SECRET = "p" * 40
EMAIL, PASSWORD = "bench@example.com", "bench password"

# Each wrk thread reads the playlist from its own starting page, front to back, as listeners
# scrolling through it would.
LUA = """
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
local page = -1
request = function()
  if page < 0 then page = (tid * 37) %% %(pages)d end
  page = (page + 1) %% %(pages)d
  return wrk.format("GET", "/v1/playlists/%(pid)s/tracks?limit=%(limit)d&offset=" .. page * %(limit)d)
end
"""


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def summary(ms: list[float]) -> str:
    return (
        f"p50 {statistics.median(ms):.2f} ms, p99 {percentile(ms, 99):.2f} ms, max {max(ms):.2f} ms "
        f"({len(ms)} moves)"
    )


def random_moves(rng: random.Random, n: int) -> list[tuple[int, int]]:
    out = []
    while len(out) < n:
        start, before = rng.randrange(N), rng.randrange(N + 1)
        if before not in (start, start + 1):  # those leave the item where it is
            out.append((start, before))
    return out


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def give_albums_covers(c: Container) -> None:
    """The seeded catalog's image rows point at blob keys with nothing behind them: write a small
    real JPEG under each, so that mosaics can be made."""
    with c.db.read() as conn:
        keys = conn.execute(sa.select(image_variants.c.blob_key)).scalars().all()
    rng = random.Random(2)
    for key in keys:
        out = io.BytesIO()
        Image.new("RGB", (64, 64), tuple(rng.randrange(256) for _ in range(3))).save(out, format="JPEG")
        c.blobs.put_bytes(key, out.getvalue())


class RowsWritten:
    """Counts playlist_entries rows written by INSERT/UPDATE/DELETE (executemany: per row)."""

    def __init__(self, c: Container) -> None:
        self.rows = 0
        sa.event.listen(c.db.engine, "after_cursor_execute", self._after)

    def _after(self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        head = statement.lstrip().split("(")[0].upper()
        if "PLAYLIST_ENTRIES" in head and head.startswith(("INSERT", "UPDATE", "DELETE")):
            self.rows += len(params) if many else max(cursor.rowcount, 0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--moves", type=int, default=200)
    ap.add_argument("--passes", type=int, default=5, help="times the service and TestClient read it all")
    ap.add_argument("--workers", type=int, default=1, help="uvicorn workers of the real server")
    ap.add_argument("--seconds", type=int, default=10, help="wrk run length")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tonearm-bench-"))
    url = bench_db_url(args.db, tmp)
    print(f"machine: {machine()}")
    track_ids = seed_catalog(url, N)
    settings = bench_settings(tmp, url, SECRET, public_url="http://testserver", log_level="WARNING")
    c = bootstrap(settings)
    give_albums_covers(c)
    user = c.accounts.sign_up(EMAIL, PASSWORD, "Bench", None)
    pid = c.playlists.create(user, name="Ten thousand")["id"]
    rng = random.Random(1)
    order = rng.sample(track_ids, N)
    build_ms = timed(lambda: c.playlists.add(user, pid, order))
    with c.db.read() as conn:
        longest = conn.execute(
            sa.select(sa.func.max(sa.func.length(playlist_entries.c.position_key))).where(
                playlist_entries.c.playlist_id == pid
            )
        ).scalar_one()
    print(f"playlist: {N} tracks on {args.db}, added in one service call in {build_ms:.0f} ms "
          f"(longest position key: {longest} characters)")  # fmt: skip
    images = c.playlists.images(pid, user)
    print(f"cover: {'a mosaic of 4 album covers' if images else 'none'} ({len(images)} sizes)")

    def read_all_service() -> None:
        for offset in range(0, N, PAGE):
            orjson.dumps(c.playlists.items(pid, None, limit=PAGE, offset=offset))

    read_all_service()  # warm the catalog's track cache, as a server that serves the playlist has

    # Moves through the service.
    counter = RowsWritten(c)
    service_ms = []
    for start, before in random_moves(rng, args.moves):
        service_ms.append(
            timed(lambda s=start, b=before: c.playlists.reorder(user, pid, range_start=s, insert_before=b))
        )
    rows_per_move = counter.rows / args.moves
    print(
        f"move (service): {summary(service_ms)}; playlist_entries rows written per move: {rows_per_move:.2f}"
    )

    # Reading through the service.
    t0 = time.perf_counter()
    for _ in range(args.passes):
        read_all_service()
    service_pages = args.passes * N / PAGE / (time.perf_counter() - t0)
    print(f"read (service, objects + JSON, page after page): {service_pages:,.0f} pages/s (limit {PAGE})")
    offsets = [rng.randrange(N - PAGE) for _ in range(args.passes * N // PAGE)]  # no page follows another
    t0 = time.perf_counter()
    for offset in offsets:
        orjson.dumps(c.playlists.items(pid, None, limit=PAGE, offset=offset))
    random_pages = len(offsets) / (time.perf_counter() - t0)
    print(f"read (service, objects + JSON, random offsets): {random_pages:,.0f} pages/s")

    # Through the app in process.
    with TestClient(create_app(c, start_workers=False)) as client:
        tok = client.post(
            "/api/token", data={"grant_type": "password", "username": EMAIL, "password": PASSWORD}
        )
        h = {"Authorization": f"Bearer {tok.json()['access_token']}"}
        client_ms = []
        for start, before in random_moves(rng, args.moves):
            body = {"range_start": start, "insert_before": before}

            def put(body: dict[str, int] = body) -> None:
                r = client.put(f"/v1/playlists/{pid}/tracks", json=body, headers=h)
                assert r.status_code == 200, r.text

            client_ms.append(timed(put))
        print(f"move (HTTP, in-process TestClient): {summary(client_ms)}")
        t0 = time.perf_counter()
        for _ in range(args.passes):
            for offset in range(0, N, PAGE):
                r = client.get(f"/v1/playlists/{pid}/tracks?limit={PAGE}&offset={offset}")
                assert r.status_code == 200  # not parsed: 170 KB of JSON costs the client ~1 ms
        client_pages = args.passes * N / PAGE / (time.perf_counter() - t0)
        print(f"read (HTTP, in-process TestClient): {client_pages:,.0f} pages/s")
    c.close()

    # A real server.
    env = {"TONEARM_DATA_DIR": str(tmp / "data"), "TONEARM_DATABASE_URL": url, "TONEARM_SECRET_KEY": SECRET}
    with Server(env, workers=args.workers) as srv, httpx.Client(base_url=srv.base, timeout=30) as http:
        tok = http.post(
            "/api/token", data={"grant_type": "password", "username": EMAIL, "password": PASSWORD}
        )
        h = {"Authorization": f"Bearer {tok.json()['access_token']}"}
        for offset in range(0, N, PAGE):  # warm this process's cache
            assert http.get(f"/v1/playlists/{pid}/tracks?limit={PAGE}&offset={offset}").status_code == 200
        server_ms = []
        for start, before in random_moves(rng, args.moves):
            body = {"range_start": start, "insert_before": before}

            def put_real(body: dict[str, int] = body) -> None:
                r = http.put(f"/v1/playlists/{pid}/tracks", json=body, headers=h)
                assert r.status_code == 200, r.text

            server_ms.append(timed(put_real))
        print(f"move (HTTP, real server, one connection): {summary(server_ms)}")
        t0 = time.perf_counter()
        for offset in range(0, N, PAGE):
            assert http.get(f"/v1/playlists/{pid}/tracks?limit={PAGE}&offset={offset}").status_code == 200
        sequential = N / PAGE / (time.perf_counter() - t0)
        print(f"read (HTTP, real server, one connection, page after page): {sequential:,.0f} pages/s")
        lua = LUA % {"pid": pid, "pages": N // PAGE, "limit": PAGE}
        sat = parse_wrk(run_wrk(srv.base, lua, connections=8, seconds=args.seconds))
        rps = float(sat["rps"])
        print(
            f"read (HTTP, real server, wrk 8 connections, {args.workers} worker(s)): {rps:,.0f} pages/s, "
            f"p50 {sat['p50']}, p99 {sat['p99']}, non-2xx {sat['non2xx']}"
        )

    targets = [
        ("move p99 (service) < 10 ms", percentile(service_ms, 99) < 10),
        ("move p99 (HTTP, real server) < 10 ms", percentile(server_ms, 99) < 10),
        ("read >= 2,000 pages/s (service, page after page)", service_pages >= 2000),
        ("read >= 2,000 pages/s (service, random offsets)", random_pages >= 2000),
        (f"read >= 2,000 pages/s (HTTP, wrk, {args.workers} worker(s))", rps >= 2000),
    ]
    print("targets: " + "; ".join(f"{name}: {'met' if ok else 'NOT met'}" for name, ok in targets))


if __name__ == "__main__":
    main()
