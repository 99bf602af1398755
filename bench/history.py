"""Listening history for a heavy listener: latency of recently played (first page and a page deep
in the history) and of the top tracks and artists for each time range, with 100,000 plays.

The catalog is `_common.seed_catalog` (5,000 tracks, 500 albums, 250 artists). The listener's
plays are spread over the last two years, more of them lately (a listener's history grows), on
tracks picked with a Zipf-like law (a few favourites, a long tail). They are written straight into
`plays` in batches of 5,000, and each batch is added to `listening_scores` by the very function
that `HistoryService` runs when plays count (`_add_scores`), so the scores are what real events
would have left. Each endpoint is then called --calls times (limit 50, Spotify's maximum), first
on the service, then over HTTP from one client to a `tonearm serve` process (1 uvicorn worker),
one request at a time; p50 and p99 are printed. The catalog's track cache is warm, as on a live
server.

    .venv/bin/python bench/history.py [--plays 100000] [--tracks 5000] [--db sqlite|postgres]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from _common import Server, bench_db_url, bench_settings, drop_bench_db, machine, seed_catalog
from tonearm.bootstrap import bootstrap
from tonearm.domains.history.service import _add_scores
from tonearm.domains.history.tables import plays

SECRET = "h" * 40
DAY = dt.timedelta(days=1)


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def timed(fn: Callable[[int], Any], calls: int) -> tuple[float, float]:
    for i in range(min(20, calls)):  # warm-up
        fn(i)
    out = []
    for i in range(calls):
        start = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - start) * 1000)
    return percentiles(out)


def seed_plays(c: Any, user_id: str, track_ids: list[str], n: int) -> None:
    rng = random.Random(7)
    weights = [1 / (rank + 1) ** 0.9 for rank in range(len(track_ids))]
    order = track_ids[:]
    rng.shuffle(order)
    now = c.clock.now()
    # More listening lately: the age in days is 730 * u**1.5 for u uniform in [0, 1).
    moments = sorted(now - 730 * DAY * rng.random() ** 1.5 for _ in range(n))
    picks = rng.choices(order, weights=weights, k=n)
    for i in range(0, n, 5000):
        batch = [
            (track, at, rng.randint(30_000, 240_000))
            for track, at in zip(picks[i : i + 5000], moments[i : i + 5000], strict=True)
        ]
        with c.db.write() as conn:
            conn.execute(
                sa.insert(plays),
                [
                    {"user_id": user_id, "track_id": t, "played_at": at, "ms_played": ms}
                    for t, at, ms in batch
                ],
            )
            _add_scores(conn, user_id, batch)
    with c.db.write() as conn:
        conn.execute(sa.text("ANALYZE"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--plays", type=int, default=100_000)
    ap.add_argument("--tracks", type=int, default=5000)
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tonearm-bench-history-"))
    url = bench_db_url(args.db, tmp)
    print(f"machine: {machine()}")
    try:
        run(args, tmp, url)
    finally:
        drop_bench_db(url)
        shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace, tmp: Path, url: str) -> None:
    track_ids = seed_catalog(url, args.tracks)
    settings = bench_settings(tmp, url, SECRET)
    c = bootstrap(settings)
    user_id = c.accounts.sign_up("heavy@example.com", "bench password", "Heavy Listener", None)
    started = time.perf_counter()
    seed_plays(c, user_id, track_ids, args.plays)
    with c.db.read() as conn:
        n_plays = conn.execute(sa.select(sa.func.count()).select_from(plays)).scalar_one()
        rows = conn.execute(sa.text("SELECT kind, count(*) FROM listening_scores GROUP BY kind")).all()
        deep = conn.execute(
            sa.select(plays.c.id, plays.c.played_at).order_by(plays.c.played_at).offset(n_plays // 2).limit(1)
        ).one()
    print(
        f"seeded on {args.db}: {n_plays} plays over 2 years on {len(track_ids)} tracks, "
        f"scores per kind {dict(rows)} in {time.perf_counter() - started:.1f} s"
    )
    deep_cursor = f"{int(deep.played_at.timestamp() * 1000)}:{deep.id}"

    cases: dict[str, tuple[str, Callable[[], Any]]] = {
        "recently played, first page": (
            "/v1/me/player/recently-played?limit=50",
            lambda: c.history.recently_played(user_id, limit=50),
        ),
        "recently played, cursor page (mid-history)": (
            f"/v1/me/player/recently-played?limit=50&before={deep_cursor}",
            lambda: c.history.recently_played(user_id, limit=50, before=deep_cursor),
        ),
    }
    for kind in ("tracks", "artists"):
        for time_range in ("short_term", "medium_term", "long_term"):
            cases[f"top {kind}, {time_range}"] = (
                f"/v1/me/top/{kind}?time_range={time_range}&limit=50",
                lambda k=kind, r=time_range: c.history.top(user_id, k, time_range=r, limit=50),  # type: ignore[misc]
            )
    sample = c.history.recently_played(user_id, limit=50)
    assert len(sample["items"]) == 50 and sample["next"], sample["next"]
    totals = {
        f"top {kind}, {r}": c.history.top(user_id, kind, time_range=r, limit=50)["total"]
        for kind in ("tracks", "artists")
        for r in ("short_term", "medium_term", "long_term")
    }

    print(f"\nservice level, {args.calls} calls each (ms):")
    service = {name: timed(lambda _i, fn=fn: fn(), args.calls) for name, (_, fn) in cases.items()}  # type: ignore[misc]
    for name, (p50, p99) in service.items():
        extra = f"  (total {totals[name]})" if name in totals else ""
        print(f"  {name:<45} p50 {p50:6.2f}   p99 {p99:6.2f}{extra}")
    print("  the same, the list's total not cached (first page of a list in 30 s, or after a play):")
    for name, (_, fn) in cases.items():
        if name.startswith("top"):

            def cold(_i: int, fn: Callable[[], Any] = fn) -> None:
                c.history._totals.forget(user_id)
                fn()

            p50, p99 = timed(cold, args.calls)
            print(f"  {name:<45} p50 {p50:6.2f}   p99 {p99:6.2f}")
    summary_ms = []
    for _ in range(5):
        c.history._summaries.forget(user_id)  # uncached: a year of plays aggregated
        start = time.perf_counter()
        c.history.year_summary(user_id, str(c.clock.now().year))
        summary_ms.append((time.perf_counter() - start) * 1000)
    print(f"  {'yearly summary, uncached (5 calls)':<45} p50 {statistics.median(summary_ms):6.1f}")

    token = c.accounts.login("heavy@example.com", "bench password", client_ip="bench").access_token
    c.close()
    env = {
        "TONEARM_DATA_DIR": str(tmp / "data"),
        "TONEARM_DATABASE_URL": url,
        "TONEARM_SECRET_KEY": SECRET,
        "TONEARM_SEARCH_URL": "memory://",
        "TONEARM_SEARCH_INDEXER": "false",
    }
    print(f"\nover HTTP (tonearm serve, 1 worker, one client, keep-alive), {args.calls} calls each (ms):")
    with (
        Server(env, workers=1) as srv,
        httpx.Client(base_url=srv.base, headers={"Authorization": f"Bearer {token}"}, timeout=10) as http,
    ):
        for name, (path, _) in cases.items():

            def call(_i: int, path: str = path) -> None:
                r = http.get(path)
                assert r.status_code == 200, r.text

            p50, p99 = timed(call, args.calls)
            print(f"  {name:<45} p50 {p50:6.2f}   p99 {p99:6.2f}")


if __name__ == "__main__":
    main()
