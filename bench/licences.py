"""Offline downloads: the time to issue 10,000 licences to one device through the API.

The catalog is `_common.seed_catalog` (10,000 ready tracks) plus one aac_320 rendition row per
track, written with bulk SQL; the listener is put on Premium Individual with a subscription row
(as billing leaves it). A `tonearm serve` process (1 uvicorn worker) then answers, over HTTP
from one client:

* issue, new: `POST /v1/me/devices/{id}/downloads` with 10,000 track ids the device does not
  hold (checks, 10,000 rows inserted, 10,000 licences and signed URLs; a ~7 MB JSON answer);
* issue, again: the same request (every row renewed by the upsert, no new slot taken);
* renew: `POST /v1/me/devices/{id}/licences/renew` (every download re-checked and renewed);
* refused: one more track, refused by the 10,000-per-device limit.

Each is run --rounds times (a new device each round for "new"); the median and the worst are
printed with the server's CPU time for the request. The service-level figure (in process, no
HTTP, no JSON) separates the work from the transport.

    .venv/bin/python bench/licences.py [--db sqlite|postgres|both] [--tracks 10000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from _common import Server, bench_db_url, bench_settings, cpu_seconds, drop_bench_db, machine, seed_catalog
from tonearm.bootstrap import bootstrap
from tonearm.domains.catalog.tables import renditions
from tonearm.kernel.ids import new_id

SECRET = "l" * 40
PASSWORD = "bench password"  # noqa: S105 (a throwaway account)


def seed_renditions(c: Any, track_ids: list[str]) -> None:
    now = c.clock.now()
    with c.db.write() as conn:
        for i in range(0, len(track_ids), 5000):
            conn.execute(
                sa.insert(renditions),
                [
                    {
                        "id": new_id(),
                        "track_id": t,
                        "name": "aac_320",
                        "codec": "aac",
                        "bitrate_kbps": 320,
                        "container": "m4a",
                        "content_type": "audio/mp4",
                        "blob_key": f"tracks/{t}/aac_320.m4a",
                        "size_bytes": 8_000_000,
                        "duration_ms": 200_000,
                        "created_at": now,
                    }
                    for t in track_ids[i : i + 5000]
                ],
            )


def make_premium(c: Any, user_id: str) -> None:
    """The operator's gift (`tonearm user premium`): an active paid plan, with no charge."""
    c.billing.comp(user_id, "premium_individual", 30)


def timed(fn: Callable[[int], Any], rounds: int) -> list[float]:
    out = []
    for i in range(rounds):
        start = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - start)
    return out


def line(name: str, seconds: list[float], cpu: list[float] | None = None) -> str:
    s = f"  {name:<44} median {statistics.median(seconds):6.2f} s   worst {max(seconds):6.2f} s"
    if cpu:
        s += f"   server CPU {statistics.median(cpu):5.2f} s"
    return s


def run(db: str, n: int, rounds: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="tonearm-bench-licences-"))
    url = bench_db_url(db, tmp)
    try:
        started = time.perf_counter()
        track_ids = seed_catalog(url, n + 1)
        settings = bench_settings(tmp, url, SECRET, log_level="WARNING")
        c = bootstrap(settings)
        seed_renditions(c, track_ids)
        user_id = c.accounts.sign_up("offline@example.com", PASSWORD, "Offline Listener", None)
        make_premium(c, user_id)
        with c.db.write() as conn:
            conn.execute(sa.text("ANALYZE"))
        ids, extra = track_ids[:n], track_ids[n]
        print(
            f"\n{db}: seeded {n + 1:,} tracks with an aac_320 rendition "
            f"in {time.perf_counter() - started:.1f} s"
        )

        # In process: the service alone (no HTTP, no JSON), each round on a new device.
        service_s = []
        for i in range(rounds):
            device = c.devices.register(user_id, f"Service {i}", "phone")
            start = time.perf_counter()
            out = c.devices.issue(user_id, device["id"], ids)
            service_s.append(time.perf_counter() - start)
            assert len(out["items"]) == n
            c.devices.remove(user_id, device["id"])
        token = c.accounts.login("offline@example.com", PASSWORD, client_ip="bench").access_token
        c.close()

        env = {
            "TONEARM_DATA_DIR": str(tmp / "data"),
            "TONEARM_DATABASE_URL": url,
            "TONEARM_SECRET_KEY": SECRET,
            "TONEARM_SEARCH_URL": "memory://",
            "TONEARM_SEARCH_INDEXER": "false",
        }
        with (
            Server(env, workers=1) as srv,
            httpx.Client(
                base_url=srv.base, headers={"Authorization": f"Bearer {token}"}, timeout=120
            ) as http,
        ):
            pid = srv.pids()[-1]
            devices: list[str] = []
            cpu: dict[str, list[float]] = {"new": [], "again": [], "renew": []}
            sizes: list[int] = []

            def register() -> str:
                r = http.post("/v1/me/devices", json={"name": "Bench", "kind": "phone"})
                assert r.status_code == 201, r.text
                return str(r.json()["id"])

            def measured(kind: str, fn: Callable[[], httpx.Response]) -> httpx.Response:
                before = cpu_seconds(pid)
                r = fn()
                cpu[kind].append(cpu_seconds(pid) - before)
                assert r.status_code == 200, r.text[:300]
                return r

            def new(_i: int) -> None:
                for d in devices:  # stay under the 5-device limit
                    http.delete(f"/v1/me/devices/{d}")
                devices[:] = [register()]
                r = measured(
                    "new", lambda: http.post(f"/v1/me/devices/{devices[0]}/downloads", json={"ids": ids})
                )
                sizes.append(len(r.content))
                assert len(r.json()["items"]) == n

            def again(_i: int) -> None:
                r = measured(
                    "again", lambda: http.post(f"/v1/me/devices/{devices[0]}/downloads", json={"ids": ids})
                )
                assert r.json()["renewed"] == n

            def renew(_i: int) -> None:
                r = measured("renew", lambda: http.post(f"/v1/me/devices/{devices[0]}/licences/renew"))
                assert len(r.json()["items"]) == n

            warm = register()  # one small request first: imports, connections, caches
            http.post(f"/v1/me/devices/{warm}/downloads", json={"ids": ids[:10]})
            http.delete(f"/v1/me/devices/{warm}")
            new_s = timed(new, rounds)
            again_s = timed(again, rounds)
            renew_s = timed(renew, rounds)
            refused = http.post(f"/v1/me/devices/{devices[0]}/downloads", json={"ids": [extra]})
            assert refused.status_code == 403, refused.text

        print(
            f"{n:,} licences to one device, {rounds} rounds (answer {statistics.median(sizes) / 1e6:.1f} MB):"
        )
        print(line("service only (in process, no HTTP)", service_s))
        print(line("HTTP: issue, new downloads", new_s, cpu["new"]))
        print(line("HTTP: issue again (every row renewed)", again_s, cpu["again"]))
        print(line("HTTP: /licences/renew", renew_s, cpu["renew"]))
        print(f"  one download more: {refused.status_code} {refused.json()['error']['message'][:80]}...")
    finally:
        drop_bench_db(url)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    ap.add_argument("--tracks", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    print(f"machine: {machine()}")
    for db in ("sqlite", "postgres") if args.db == "both" else (args.db,):
        run(db, args.tracks, args.rounds)


if __name__ == "__main__":
    main()
