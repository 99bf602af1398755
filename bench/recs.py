"""The recommender at scale: training time, serving latency and quality on planted tastes.

1. Fills a fresh database with bench/recs_data.py (default: 50,000 listeners, 100,000 tracks,
   1,000,000 plays with planted tastes, likes and early skips).
2. Trains the way the background job does (`RecsService.train`: signals -> content -> ALS, every
   stage written to the blob store) and reports the seconds per stage. Target: < 60 s.
3. Serves, in process, one call per listener with an empty signals cache (each call reads that
   listener's signals from the database, solves their vector and fetches the track objects):
   - seeded: `recommendations(seed_tracks=<one of theirs>, limit=20)` (a premium listener, so
     their taste is blended in);
   - personal: their own top 20 (the home feed's "Recommended for you").
   Reports p50 / p95 / p99. Target: p99 < 20 ms.
4. Evaluates (`tonearm recs evaluate`'s code: a time split at 80 % of plays) on a sample of
   listeners: recall@10, NDCG@10, coverage and diversity against the popularity baseline.
   Target: recall@10 at least 2x the baseline's. Optionally writes the plot.

    .venv/bin/python bench/recs.py [--db sqlite|postgres] [--users 50000 --tracks 100000 --plays 1000000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from _common import bench_db_url, bench_settings, drop_bench_db, machine
from recs_data import make_dataset
from tonearm.bootstrap import bootstrap
from tonearm.domains.billing.tables import subscription_members, subscriptions
from tonearm.domains.history.tables import plays
from tonearm.domains.recs.evaluate import evaluate, plot
from tonearm.domains.recs.service import Seeds
from tonearm.kernel.ids import new_id


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def make_premium(conn: sa.Connection, user_ids: list[str], now: dt.datetime) -> None:
    rows, members = [], []
    for u in user_ids:
        sid = new_id()
        rows.append(
            {
                "id": sid,
                "user_id": u,
                "plan_id": "premium_individual",
                "status": "active",
                "current_period_start": now,
                "current_period_end": now + dt.timedelta(days=30),
                "created_at": now,
                "updated_at": now,
            }
        )
        members.append({"subscription_id": sid, "user_id": u, "role": "manager", "joined_at": now})
    conn.execute(sa.insert(subscriptions), rows)
    conn.execute(sa.insert(subscription_members), members)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--users", type=int, default=50_000)
    ap.add_argument("--tracks", type=int, default=100_000)
    ap.add_argument("--plays", type=int, default=1_000_000)
    ap.add_argument("--requests", type=int, default=1000, help="listeners served (one call each, per kind)")
    ap.add_argument("--eval-listeners", type=int, default=3000)
    ap.add_argument("--plot", type=Path, default=None, help="write the evaluation chart here (PNG)")
    ap.add_argument("--profile", action="store_true", help="print where the seeded calls spend their time")
    args = ap.parse_args()
    logging.disable(logging.INFO)
    print(machine())
    tmp = Path(tempfile.mkdtemp(prefix="tonearm-recsbench-"))
    url = bench_db_url(args.db, tmp)
    try:
        t = time.perf_counter()
        make_dataset(url, users=args.users, tracks=args.tracks, plays=args.plays, progress=False)
        print(
            f"data ({args.db}): {args.users} listeners, {args.tracks} tracks, {args.plays} plays "
            f"made in {time.perf_counter() - t:.1f} s"
        )
        c = bootstrap(bench_settings(tmp, url, "bench-secret-" + "x" * 32, log_json=True))
        try:
            t = time.perf_counter()
            run = c.recs.train()
            took = time.perf_counter() - t
            st = run["stats"]
            stages = ", ".join(f"{k} {v:.1f} s" for k, v in st["seconds"].items())
            print(
                f"training: {took:.1f} s in all ({stages}); {st['users']} listeners x {st['items']} tracks, "
                f"{st['nnz']} non-zero signals  [target < 60 s]"
            )

            with c.db.read() as conn:
                listeners = list(
                    conn.execute(
                        sa.select(plays.c.user_id).group_by(plays.c.user_id).limit(args.requests * 4)
                    )
                    .scalars()
                    .all()
                )
            rng = random.Random(5)
            sample = rng.sample(listeners, min(args.requests, len(listeners)))
            with c.db.write() as conn:
                make_premium(conn, sample, c.clock.now())
            c.entitlements.invalidate()
            with c.db.read() as conn:
                seed_of = {
                    r.user_id: r.track_id
                    for r in conn.execute(
                        sa.select(plays.c.user_id, sa.func.min(plays.c.track_id).label("track_id"))
                        .where(plays.c.user_id.in_(sample))
                        .group_by(plays.c.user_id)
                    )
                }
            c.recs.model()  # load the model before timing
            for u in sample[:20]:  # warm-up: code paths, connections
                c.recs.recommendations(u, Seeds([seed_of[u]], [], []), limit=20)
            c.recs._signals.clear()
            c.catalog._tracks.clear()
            results: dict[str, list[float]] = {"seeded": [], "personal": []}
            for u in sample:
                c.recs.forget(u)
                t = time.perf_counter()
                out = c.recs.recommendations(u, Seeds([seed_of[u]], [], []), limit=20)
                results["seeded"].append((time.perf_counter() - t) * 1000)
                assert len(out["tracks"]) == 20
                c.recs.forget(u)
                t = time.perf_counter()
                ids = c.recs.personal_ids(u, limit=20)
                items = c.recs._tracks(ids, u, 20)
                results["personal"].append((time.perf_counter() - t) * 1000)
                assert len(items) == 20
            if args.profile:
                import cProfile
                import pstats

                prof = cProfile.Profile()
                for u in sample[:300]:
                    c.recs.forget(u)
                    c.catalog._tracks.clear()
                    prof.enable()
                    c.recs.recommendations(u, Seeds([seed_of[u]], [], []), limit=20)
                    prof.disable()
                pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
            for name, xs in results.items():
                print(
                    f"serving {name:8}: p50 {statistics.median(xs):.1f} ms, p95 {pct(xs, 95):.1f} ms, "
                    f"p99 {pct(xs, 99):.1f} ms over {len(xs)} listeners (cold signals)  [target p99 < 20 ms]"
                )

            t = time.perf_counter()
            report = evaluate(c.db, max_listeners=args.eval_listeners)
            print(
                f"evaluation ({time.perf_counter() - t:.1f} s; {report.test_listeners} listeners, "
                f"{report.test_items} later discoveries):"
            )
            for name, sc in (("tonearm", report.ours), ("popularity", report.popularity)):
                print(
                    f"  {name:10} recall@10 {sc.recall:.4f}  NDCG@10 {sc.ndcg:.4f}  "
                    f"coverage {sc.coverage:.4f}  diversity {sc.diversity:.4f}"
                )
            print(f"  recall lift over popularity: {report.lift:.2f}x  [target >= 2x]")
            if args.plot:
                print(f"  plot: {plot(report, args.plot)}")
        finally:
            c.close()
    finally:
        drop_bench_db(url)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
