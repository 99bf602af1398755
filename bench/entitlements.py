"""What enforcing entitlements costs the playback grant: the same grant with the plan's checks
(quality from the plan's features, the ad counter and ad insertion for listeners without
`ad_free`) and with them bypassed (`StreamingService.grant` with a fixed quality, as before the
premium issue).

Cases, each --calls grants spread over --listeners listeners and 500 tracks (mostly grant-cache
misses: every grant is signed afresh), the grant cache emptied before each case:

  - bypassed, 160 and 320 kb/s: `streaming.grant(track, user, fixed quality)`;
  - premium: `entitlements.for_user` (a cached lookup) + `entitlements.grant` (no write);
  - free, no ad running: the same + the listener's ad counter, counted in this process's ledger
    and queued for the write-behind (a daemon thread writes the queue every 0.5 s, meanwhile);
  - free, one ad running: the same, and every third grant carries the ad (an impression row and a
    decision-log row queued, and a grant for the ad's audio).

A clock the script moves 5 s per grant stands in for listening (each listener asks for a grant
every few minutes, so no ad is still playing when their next grant comes). Then the same over
HTTP in process (httpx's ASGI transport, one request at a time): the real endpoint for a premium
and a free listener, and a bench-only route that does what the endpoint did before (authenticate,
`streaming.grant` with the product's quality, inline on SQLite).

    .venv/bin/python bench/entitlements.py [--db sqlite|postgres] [--calls 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import structlog
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from _common import bench_db_url, bench_settings, drop_bench_db, machine, seed_catalog
from tonearm import logs
from tonearm.bootstrap import Container, bootstrap
from tonearm.domains.catalog.tables import tracks
from tonearm.domains.streaming.service import Entitlements as Quality
from tonearm.http.app import create_app
from tonearm.http.auth import current_user
from tonearm.kernel.clock import FrozenClock

SECRET = "e" * 40
PASSWORD = "bench password"  # noqa: S105 (bench accounts on a throwaway database)
DEVNULL = open(os.devnull, "w")  # noqa: SIM115 (open for the whole run)


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def timed(fn: Callable[[int], Any], calls: int, clock: FrozenClock) -> tuple[float, float]:
    for i in range(min(50, calls)):  # warm-up
        fn(i)
        clock.advance(5)
    out = []
    for i in range(calls):
        start = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - start) * 1000)
        clock.advance(5)
    return percentiles(out)


def make_premium(c: Container, user_id: str) -> None:
    """The operator's gift (`tonearm user premium`): an active paid plan, with no charge."""
    c.billing.comp(user_id, "premium_individual", 30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--calls", type=int, default=5000)
    ap.add_argument("--listeners", type=int, default=20)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tonearm-bench-entitlements-"))
    url = bench_db_url(args.db, tmp)
    print(f"machine: {machine()}")
    try:
        run(args, tmp, url)
    finally:
        drop_bench_db(url)
        shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace, tmp: Path, url: str) -> None:
    track_ids = seed_catalog(url, 501)
    ad_track, track_ids = track_ids[0], track_ids[1:]
    settings = bench_settings(tmp, url, SECRET, log_json=True)  # JSON lines, as a server logs
    clock = FrozenClock(dt.datetime.now(dt.UTC))
    # Decisions are logged at INFO as a server does (JSON lines), written to /dev/null: their
    # cost is measured, the terminal is spared.
    logs.configure(json=True, level="INFO")
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(DEVNULL))
    logging.getLogger("httpx").setLevel(logging.WARNING)
    c = bootstrap(settings, clock=clock)
    n = args.listeners
    free = [c.accounts.sign_up(f"free{i}@example.com", PASSWORD, f"Free {i}", None) for i in range(n)]
    premium = [c.accounts.sign_up(f"prem{i}@example.com", PASSWORD, f"Premium {i}", None) for i in range(n)]
    for user_id in premium:
        make_premium(c, user_id)
    # Access tokens before the clock moves (a token issued "in the future" is refused).
    tokens = {
        user_id: c.accounts.login(f"{kind}{i}@example.com", PASSWORD, client_ip="bench").access_token
        for kind, group in (("free", free), ("prem", premium))
        for i, user_id in enumerate(group)
    }
    boss = c.accounts.sign_up("admin@example.com", PASSWORD, "Admin", None, role="admin")
    with c.db.write() as conn:  # the ad's audio: a private 30 s upload of the admin's
        conn.execute(
            sa.update(tracks)
            .where(tracks.c.id == ad_track)
            .values(owner_user_id=boss, visibility="private", duration_ms=30_000)
        )

    def pair(i: int, users_: list[str]) -> tuple[str, str]:
        # Listeners in turn, each on a new track: unique pairs for n x 500 grants.
        return track_ids[(i // n) % len(track_ids)], users_[i % n]

    ent = c.entitlements
    for track_id in track_ids:  # the track cache warm, as on a live server: grants are measured
        c.streaming.info(track_id)
    cases: list[tuple[str, Callable[[int], Any]]] = [
        (
            "bypassed: streaming.grant, 160 kb/s",
            lambda i: c.streaming.grant(*pair(i, free), Quality(160, False)),
        ),
        (
            "bypassed: streaming.grant, 320 kb/s",
            lambda i: c.streaming.grant(*pair(i, premium), Quality(320, True)),
        ),
        ("premium: for_user + entitlements.grant", lambda i: _checked(c, *pair(i, premium))),
        ("free, no ad running: + ad counter (write-behind)", lambda i: _checked(c, *pair(i, free))),
    ]
    print(
        f"\nservice level on {args.db}, {args.calls} grants per case over {n} listeners and "
        f"{len(track_ids)} tracks (ms):"
    )
    results: dict[str, tuple[float, float]] = {}
    for name, fn in cases:
        c.streaming._grants.clear()
        results[name] = timed(fn, args.calls, clock)
        print(f"  {name:<52} p50 {results[name][0]:6.3f}   p99 {results[name][1]:6.3f}")
    ad_id = ent.ads.create(ad_track, "Bench Sale", "Acme", "https://acme.example")["id"]
    served_before = ent.ads.get(ad_id)["impressions"]
    c.streaming._grants.clear()
    name = "free, one ad running: every 3rd grant carries it"
    results[name] = timed(lambda i: _checked(c, *pair(i, free)), args.calls, clock)
    served = ent.ads.get(ad_id)["impressions"] - served_before
    print(f"  {name:<52} p50 {results[name][0]:6.3f}   p99 {results[name][1]:6.3f}   ({served} ads served)")
    base_free = results["bypassed: streaming.grant, 160 kb/s"]
    base_prem = results["bypassed: streaming.grant, 320 kb/s"]
    print("  added by the entitlement checks (p50 / p99, ms):")
    for label, case, base in (
        ("premium", "premium: for_user + entitlements.grant", base_prem),
        ("free, no ad running", "free, no ad running: + ad counter (write-behind)", base_free),
        ("free, one ad running", name, base_free),
    ):
        p50, p99 = results[case]
        print(f"    {label:<24} {p50 - base[0]:+7.3f} / {p99 - base[1]:+7.3f}")

    def round_trip(_i: int) -> None:
        with c.db.read() as conn:
            conn.execute(sa.text("SELECT 1")).one()

    p50, p99 = timed(round_trip, args.calls, clock)
    print(f"  for scale, one bare database round trip (db.read, SELECT 1): p50 {p50:.3f}   p99 {p99:.3f}")

    asyncio.run(_http(c, clock, args, track_ids, free, premium, tokens))
    c.close()


def _checked(c: Container, track_id: str, user_id: str) -> bytes:
    return c.entitlements.grant(track_id, c.entitlements.for_user(user_id))


async def _http(
    c: Container,
    clock: FrozenClock,
    args: argparse.Namespace,
    track_ids: list[str],
    free: list[str],
    premium: list[str],
    tokens: dict[str, str],
) -> None:
    async def before(request: Request) -> Response:
        """The grant endpoint as it was before entitlements: the product's quality, inline on
        SQLite, in the thread pool on PostgreSQL."""

        def grant() -> bytes:
            user = current_user(request)
            quality = Quality(320, True) if user.product == "premium" else Quality(160, False)
            return c.streaming.grant(request.path_params["track_id"], user.user_id, quality)

        body = grant() if c.db.sqlite else await run_in_threadpool(grant)
        return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})

    app = create_app(c, start_workers=False)
    app.router.routes.insert(0, Route("/bench/playback/{track_id}", before, methods=["GET"]))
    calls = args.calls // 2
    n = len(free)
    print(
        f"\nover HTTP in process (httpx ASGI transport, one request at a time), {calls} requests each (ms):"
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as http:
        for label, path, users_ in (
            ("premium, before entitlements (bench route)", "/bench/playback", premium),
            ("premium, GET /v1/tracks/{id}/playback", "/v1/tracks", premium),
            ("free, before entitlements (bench route)", "/bench/playback", free),
            ("free, GET /v1/tracks/{id}/playback (ad running)", "/v1/tracks", free),
        ):
            c.streaming._grants.clear()
            samples = []
            for i in range(calls + 50):
                track_id, user_id = track_ids[(i // n) % len(track_ids)], users_[i % n]
                target = f"{path}/{track_id}" if path == "/bench/playback" else f"{path}/{track_id}/playback"
                start = time.perf_counter()
                r = await http.get(target, headers={"Authorization": f"Bearer {tokens[user_id]}"})
                elapsed = (time.perf_counter() - start) * 1000
                assert r.status_code == 200, r.text
                if i >= 50:
                    samples.append(elapsed)
                clock.advance(5)
            p50, p99 = percentiles(samples)
            print(f"  {label:<52} p50 {p50:6.3f}   p99 {p99:6.3f}")


if __name__ == "__main__":
    main()
