"""Playback under load: time to first audio, and how many 160 kb/s HLS listeners a server keeps up with.

    .venv/bin/python bench/playback.py                     # everything (~35 min on 2 cores)
    .venv/bin/python bench/playback.py --quick             # smoke run (~3 min once the catalog is cached)
    .venv/bin/python bench/playback.py --only python --listeners 500,1000,3000 --duration 60
    .venv/bin/python bench/playback.py --only nginx --clients 2

What is measured
----------------
* **ttfb**: 200 listeners who are each *listening*: a listener starts a track, fetches its
  segments paced at real time for 5-15 s, then starts another track (open loop: a start happens
  when a listener gets to it, not as fast as the server answers). Per start: the grant alone; the
  grant + the grant's `hls.start` range (init + first segment: the web player's fast start,
  i.e. time to the first audio byte); and, on every other start instead, the whole HLS chain
  grant -> master -> media playlist -> init -> first segment, as a plain HLS player does it.
* **python / nginx**: N listeners each play HLS aac_160 in real time over one keep-alive
  connection (Range requests into the one fMP4 file), keeping `--buffer` seconds of audio ahead
  (hls.js keeps 30 s; less is stricter). Playback starts once the init + first segment arrive; a
  listener *falls behind* when a segment arrives after the moment its buffer would have run dry
  (it then rebuffers: the playhead waits for the segment). At the end of a track it starts the
  next one (grant, playlists, first segment again). N grows in levels without stopping the
  earlier listeners: each level adds listeners at `--ramp-rate` per second, lets them settle
  5 s, then is measured for a window (30 s below 2,000 listeners, `--duration` from 2,000 on).
  The run stops after the first level in which more than 1% of the listeners fell behind or any
  request failed. `python` is `tonearm serve` alone (stream_delivery=direct) with 1 and 2
  uvicorn workers; `nginx` is nginx (deploy/nginx.conf, worker_processes auto) in front of
  `tonearm serve --workers 2` with stream_delivery=accel.

The load generator is asyncio (uvloop when installed) with raw HTTP/1.1 keep-alive connections,
in `--clients` processes; their CPU is printed per level next to the server's and the whole
machine's ("other" is CPU used by processes that are not part of the run: other people's work).

The catalog: `tonearm demo --tracks 32 --seconds 150 --wait` (synthesized music through the real
import and transcode pipeline; ~2 min on 2 cores), cached in ~/.cache/tonearm-bench/ with its
users and their access tokens; segment bytes come from the page cache.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing as mp
import os
import random
import re
import resource
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from _common import Nginx, Server, cpu_seconds, free_port, machine, machine_busy_seconds

try:
    import uvloop
except ImportError:  # pragma: no cover - the bench runs without it, slower
    uvloop = None  # type: ignore[assignment]

SECRET = "playback-bench-secret-" + "s" * 32
PASSWORD = "bench password"  # noqa: S105 (bench accounts on a throwaway catalog)
LISTENERS_PER_USER = 50
REQUEST_TIMEOUT_S = 30.0
SETTLE_S = 5.0
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tonearm-bench"
now = time.monotonic  # CLOCK_MONOTONIC: one clock for every process on the machine


# HTTP/1.1 client ---------------------------------------------------------------------------------
class Failed(Exception):
    """A request that did not get the expected answer (counted as a failed request)."""


class Conn:
    """One keep-alive HTTP/1.1 connection: GET with Content-Length or chunked bodies. A request
    on a reused connection the server has closed meanwhile is retried once on a new one (what
    every HTTP client does for idempotent requests), and counted as a reconnect, not a failure."""

    __slots__ = ("addr", "busy_since", "host", "local", "reader", "reconnects", "timed_out", "writer")

    def __init__(self, host: str, port: int, local: str | None = None) -> None:
        self.addr = (host, port)
        self.local = (local, 0) if local else None
        self.host = f"{host}:{port}".encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.busy_since = 0.0
        self.reconnects = 0
        self.timed_out = False  # set by the watchdog, which then closes the connection

    def close(self) -> None:
        if self.writer is not None:
            self.writer.transport.abort()
        self.reader = self.writer = None

    async def get(self, target: str, extra: bytes = b"") -> tuple[int, dict[bytes, bytes], bytes]:
        req = b"GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (target.encode(), self.host, extra)
        self.busy_since = now()
        try:
            for _ in range(2):
                reused = self.writer is not None
                if self.reader is not None and self.reader.at_eof():
                    self.close()
                    reused = False
                if self.writer is None:
                    try:
                        self.reader, self.writer = await asyncio.open_connection(
                            *self.addr, limit=1 << 20, local_addr=self.local
                        )
                    except OSError as exc:
                        raise Failed(f"connect: {exc}") from None
                assert self.reader is not None and self.writer is not None
                try:
                    self.writer.write(req)
                    head = await self.reader.readuntil(b"\r\n\r\n")
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                    self.close()
                    self._raise_if_timed_out()
                    partial = getattr(exc, "partial", b"")
                    if reused and not partial:
                        self.reconnects += 1
                        continue
                    raise Failed(f"{type(exc).__name__} before the response head") from None
                try:
                    return await self._rest(head)
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
                    self.close()
                    self._raise_if_timed_out()
                    raise Failed(f"{type(exc).__name__} in the response") from None
            raise Failed("the connection closed twice")
        finally:
            self.busy_since = 0.0

    def _raise_if_timed_out(self) -> None:
        if self.timed_out:
            self.timed_out = False
            raise Failed(f"no complete response within {REQUEST_TIMEOUT_S:g} s")

    async def _rest(self, head: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            if line:
                k, _, v = line.partition(b":")
                headers[k.strip().lower()] = v.strip()
        reader = self.reader
        assert reader is not None
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            parts = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                        pass
                    break
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
            body = b"".join(parts)
        elif b"content-length" in headers:
            n = int(headers[b"content-length"])
            body = await reader.readexactly(n) if n else b""
        else:
            body = await reader.read()
            self.close()
        if headers.get(b"connection", b"").lower() == b"close":
            self.close()
        return status, headers, body


def target_of(url: str) -> str:
    """Path and query of an absolute URL (the grant's links name TONEARM_PUBLIC_URL)."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


_MAP = re.compile(r'#EXT-X-MAP:URI="([^"]+)",BYTERANGE="(\d+)@(\d+)"')


def parse_media_playlist(
    text: str, playlist_target: str
) -> tuple[str, tuple[int, int], list[tuple[float, int, int]]]:
    """(file target, (init offset, length), [(duration, offset, length)]) of a byte-range playlist."""
    base = playlist_target.split("?", 1)[0].rsplit("/", 1)[0] + "/"
    uri, init, segments = "", (0, 0), []
    duration, byterange = 0.0, (0, 0)
    for line in text.splitlines():
        if line.startswith("#EXT-X-MAP:"):
            m = _MAP.match(line)
            if m is None:
                raise Failed(f"unexpected EXT-X-MAP line {line[:80]!r}")
            uri, init = m.group(1), (int(m.group(3)), int(m.group(2)))
        elif line.startswith("#EXTINF:"):
            duration = float(line[8:].split(",", 1)[0])
        elif line.startswith("#EXT-X-BYTERANGE:"):
            n, _, off = line[17:].partition("@")
            byterange = (int(off), int(n))
        elif line and not line.startswith("#"):
            if line != uri:
                raise Failed("segments in more than one file")
            segments.append((duration, *byterange))
    if not segments or not init[1]:
        raise Failed("a media playlist without segments or init section")
    return base + uri, init, segments


# Load generator (one per client process) ---------------------------------------------------------
class Window:
    """What happened between two instants (events are placed by the time they completed)."""

    def __init__(self, start: float, end: float) -> None:
        self.start, self.end = start, end
        self.requests = 0
        self.bytes = 0
        self.failures = 0
        self.rebuffers = 0
        self.behind: set[int] = set()
        self.latency: dict[str, list[float]] = {}

    def dump(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "bytes": self.bytes,
            "failures": self.failures,
            "rebuffers": self.rebuffers,
            "behind": sorted(self.behind),
            "latency": self.latency,
        }


class LoadClient:
    def __init__(self, cfg: dict[str, Any], t0: float) -> None:
        self.cfg = cfg
        self.host, self.port = cfg["host"], cfg["port"]
        self.tracks: list[str] = cfg["tracks"]
        self.buffer_s: float = cfg["buffer_s"]
        self.mode: str = cfg["mode"]
        self.t0 = t0
        self.windows = [Window(t0 + a, t0 + b) for a, b in cfg["windows"]]
        self.stop_at = t0 + cfg["stop_at"]
        self.stopping = False
        self.conns: set[Conn] = set()
        self.requests = 0
        self.failures = 0
        self.fail_samples: list[str] = []
        self.behind_anywhere: set[int] = set()
        self.behind_outside = 0
        self.reconnects = 0

    def window(self, t: float) -> Window | None:
        for w in self.windows:
            if w.start <= t < w.end:
                return w
        return None

    def note(self, kind: str, t_done: float, latency: float, nbytes: int) -> None:
        self.requests += 1
        w = self.window(t_done)
        if w is not None:
            w.requests += 1
            w.bytes += nbytes
            lst = w.latency.get(kind)
            if lst is None:
                lst = w.latency[kind] = []
            lst.append(latency)

    def mark(self, kind: str, t: float, value: float) -> None:
        """A derived figure (startup times), not a request."""
        w = self.window(t)
        if w is not None:
            w.latency.setdefault(kind, []).append(value)

    def fail(self, why: str) -> None:
        self.failures += 1
        if len(self.fail_samples) < 10:
            self.fail_samples.append(why)
        w = self.window(now())
        if w is not None:
            w.failures += 1

    def fell_behind(self, idx: int, t: float) -> None:
        self.behind_anywhere.add(idx)
        w = self.window(t)
        if w is not None:
            w.rebuffers += 1
            w.behind.add(idx)
        else:
            self.behind_outside += 1

    async def get(
        self, conn: Conn, kind: str, target: str, extra: bytes = b"", *, expect: int = 200
    ) -> bytes:
        t = now()
        try:
            status, _, body = await conn.get(target, extra)
        except Failed as exc:
            raise Failed(f"{kind}: {exc}") from None
        done = now()
        if status != expect:
            raise Failed(f"{kind}: HTTP {status} (expected {expect}): {body[:120]!r}")
        self.note(kind, done, done - t, len(body))
        return body

    async def get_range(self, conn: Conn, kind: str, target: str, first: int, length: int) -> float:
        t = now()
        try:
            status, headers, body = await conn.get(
                target, b"Range: bytes=%d-%d\r\n" % (first, first + length - 1)
            )
        except Failed as exc:
            raise Failed(f"{kind}: {exc}") from None
        done = now()
        if status != 206 or len(body) != length:
            raise Failed(f"{kind}: HTTP {status} with {len(body)} bytes (expected 206 with {length})")
        if not headers.get(b"content-range", b"").startswith(b"bytes %d-%d/" % (first, first + length - 1)):
            raise Failed(f"{kind}: Content-Range {headers.get(b'content-range')!r}")
        self.note(kind, done, done - t, length)
        return done

    # One listener -----------------------------------------------------------------------------
    async def listener(self, idx: int, token: str, start_at: float) -> None:
        await asyncio.sleep(max(0.0, start_at - now()))
        rng = random.Random(idx * 7919 + 17)
        auth = b"Authorization: Bearer %s\r\n" % token.encode()
        # Source addresses 127.0.0.2-17: more than one ephemeral port range's worth of connections.
        conn = Conn(self.host, self.port, f"127.0.0.{2 + idx % 16}" if self.host == "127.0.0.1" else None)
        self.conns.add(conn)
        try:
            while not self.stopping and now() < self.stop_at:
                try:
                    track = rng.choice(self.tracks)
                    await self.play(conn, idx, auth, track, rng, full_chain=rng.random() < 0.5)
                except Failed as exc:
                    self.fail(str(exc))
                    conn.close()
                    await asyncio.sleep(1.0)
        finally:
            conn.close()
            self.conns.discard(conn)
            self.reconnects += conn.reconnects

    async def play(
        self, conn: Conn, idx: int, auth: bytes, track: str, rng: random.Random, *, full_chain: bool
    ) -> None:
        t_start = now()
        grant = orjson.loads(await self.get(conn, "grant", f"/v1/tracks/{track}/playback", auth))
        hls = grant["hls"]
        master_target = target_of(hls["master_url"])
        if self.mode == "ttfb" and full_chain:
            file, init, segs = await self.playlists(conn, master_target)
            await self.get_range(conn, "init", file, *init)
            t_first = await self.get_range(conn, "segment0", file, segs[0][1], segs[0][2])
            self.mark("chain", t_first, t_first - t_start)
        else:
            start = hls["start"]
            if start is None or start["rendition"] != "aac_160":
                raise Failed(f"grant without an aac_160 fast start: {start!r}")
            first, _, last = start["range"].removeprefix("bytes=").partition("-")
            t_first = await self.get_range(
                conn, "start", target_of(start["url"]), int(first), int(last) - int(first) + 1
            )
            self.mark("ttfb", t_first, t_first - t_start)
            file, init, segs = await self.playlists(conn, master_target)
            if (init[0], segs[0][1] + segs[0][2] - 1) != (int(first), int(last)):
                raise Failed("hls.start is not the init section and first segment of aac_160")
        self.mark("startup", t_first, t_first - t_start)
        until = t_first + rng.uniform(5.0, 15.0) if self.mode == "ttfb" else self.stop_at
        await self.listen(conn, idx, file, segs, t_first, until)

    async def playlists(
        self, conn: Conn, master_target: str
    ) -> tuple[str, tuple[int, int], list[tuple[float, int, int]]]:
        master = (await self.get(conn, "master", master_target)).decode()
        variant = next((line for line in master.splitlines() if line.startswith("aac_160.m3u8?")), None)
        if variant is None:
            raise Failed("no aac_160 variant in the master playlist")
        media_target = master_target.split("?", 1)[0].rsplit("/", 1)[0] + "/" + variant
        media = (await self.get(conn, "media", media_target)).decode()
        return parse_media_playlist(media, media_target)

    async def listen(
        self,
        conn: Conn,
        idx: int,
        file: str,
        segs: list[tuple[float, int, int]],
        t_first: float,
        until: float,
    ) -> None:
        """Plays from the first segment (received at t_first): the next segment is fetched when
        less than buffer_s seconds are left ahead of the playhead; one that arrives after the
        buffer ran dry is a rebuffer (the playhead waits for it)."""
        stalled = 0.0
        buffered = segs[0][0]
        for duration, offset, length in segs[1:]:
            wake = t_first + stalled + buffered - self.buffer_s
            t = now()
            if wake > t:
                await asyncio.sleep(wake - t)
            if self.stopping or now() >= until:
                return
            done = await self.get_range(conn, "segment", file, offset, length)
            dry = t_first + stalled + buffered
            if done > dry:
                stalled += done - dry
                self.fell_behind(idx, done)
            buffered += duration
        end = min(until, t_first + stalled + buffered)  # the rest of the track plays out
        await asyncio.sleep(max(0.0, end - now()))

    async def watchdog(self) -> None:
        while not self.stopping:
            await asyncio.sleep(1.0)
            t = now()
            for conn in list(self.conns):
                if conn.busy_since and t - conn.busy_since > REQUEST_TIMEOUT_S:
                    conn.timed_out = True
                    conn.close()  # the pending read fails: counted as a failed request


async def client_main_async(cfg: dict[str, Any], t0: float, out: Any, stop: Any) -> None:
    lc = LoadClient(cfg, t0)
    tokens: list[str] = cfg["tokens"]
    tasks = [
        asyncio.ensure_future(lc.listener(idx, tokens[idx // LISTENERS_PER_USER], t0 + at))
        for idx, at in cfg["listeners"]
    ]
    dog = asyncio.ensure_future(lc.watchdog())
    for i, w in enumerate(lc.windows):
        while now() < w.end + 1.0:  # a second of grace for requests in flight at the end
            if stop.is_set():
                break
            await asyncio.sleep(min(0.5, max(0.0, w.end + 1.0 - now())))
        if stop.is_set():
            break
        out.put(("window", cfg["client"], i, w.dump()))
    lc.stopping = True
    for task in tasks:
        task.cancel()
    dog.cancel()
    await asyncio.gather(*tasks, dog, return_exceptions=True)
    out.put(
        (
            "done",
            cfg["client"],
            None,
            {
                "requests": lc.requests,
                "failures": lc.failures,
                "fail_samples": lc.fail_samples,
                "behind_anywhere": sorted(lc.behind_anywhere),
                "behind_outside_windows": lc.behind_outside,
                "reconnects": lc.reconnects,
            },
        )
    )


def client_main(cfg: dict[str, Any], out: Any, start: Any, stop: Any) -> None:
    raise_nofile()
    out.put(("ready", cfg["client"], None, None))
    t0 = start.recv()
    coro = client_main_async(cfg, t0, out, stop)
    if uvloop is not None:
        uvloop.run(coro)
    else:
        asyncio.run(coro)


# Coordinator ---------------------------------------------------------------------------------------
def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def pct(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


def ms(v: float) -> str:
    return "-" if math.isnan(v) else f"{v * 1000:.1f}"


class CpuMeter:
    """CPU used by groups of processes (and the whole machine) between two readings, in cores."""

    def __init__(self, groups: dict[str, Callable[[], list[int]]]) -> None:
        self.groups = groups
        self.start: tuple[float, dict[str, dict[int, float]], tuple[float, float]] | None = None

    def _read(self) -> tuple[float, dict[str, dict[int, float]], tuple[float, float]]:
        return (
            now(),
            {name: {pid: cpu_seconds(pid) for pid in pids()} for name, pids in self.groups.items()},
            machine_busy_seconds(),
        )

    def begin(self) -> None:
        self.start = self._read()

    def end(self) -> dict[str, Any]:
        assert self.start is not None
        t0, before, (busy0, total0) = self.start
        t1, after, (busy1, total1) = self._read()
        wall = t1 - t0
        res: dict[str, Any] = {}
        ours = 0.0
        for name, pids in after.items():
            per = [(cpu - before[name].get(pid, 0.0)) / wall for pid, cpu in pids.items()]
            res[name] = round(sum(per), 2)
            res[name + "_per_process"] = [round(p, 2) for p in per]
            ours += sum(per)
        cores = os.cpu_count() or 1
        res["machine"] = (
            round((busy1 - busy0) / (total1 - total0) * cores, 2) if total1 > total0 else math.nan
        )
        res["other"] = round(max(0.0, res["machine"] - ours), 2)
        return res


def run_load(
    *,
    label: str,
    host: str,
    port: int,
    mode: str,
    levels: list[int],
    durations: list[float],
    ramp_rate: float,
    tracks: list[str],
    tokens: list[str],
    buffer_s: float,
    clients: int,
    cpu_groups: dict[str, Callable[[], list[int]]],
) -> dict[str, Any]:
    """Runs the listeners of `levels` (cumulative) against host:port and returns per-level figures."""
    rng = random.Random(42)
    windows, starts = [], []
    t, prev = 0.0, 0
    for n, dur in zip(levels, durations, strict=True):
        ramp = (n - prev) / ramp_rate
        for idx in range(prev, n):
            starts.append((idx, t + rng.uniform(0.0, ramp)))
        t += ramp + SETTLE_S
        windows.append((t, t + dur))
        t += dur
        prev = n
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    stop = ctx.Event()
    procs, pipes = [], []
    for k in range(clients):
        cfg = {
            "client": k,
            "host": host,
            "port": port,
            "mode": mode,
            "tracks": tracks,
            "tokens": tokens,
            "buffer_s": buffer_s,
            "windows": windows,
            "stop_at": t + 1.0,
            "listeners": [(idx, at) for idx, at in starts if idx % clients == k],
        }
        recv, send = ctx.Pipe(duplex=False)
        p = ctx.Process(target=client_main, args=(cfg, out, recv, stop), daemon=True)
        p.start()
        procs.append(p)
        pipes.append(send)
    for _ in range(clients):
        kind, _, _, _ = out.get(timeout=60)
        assert kind == "ready"
    t0 = now() + 0.5
    for send in pipes:
        send.send(t0)
    groups = {**cpu_groups, "client": lambda: [p.pid for p in procs if p.pid is not None]}
    meter = CpuMeter(groups)
    results: list[dict[str, Any]] = []
    pending: dict[int, list[dict[str, Any]]] = {}
    done: list[dict[str, Any]] = []
    try:
        for i, (n, (ws, we)) in enumerate(zip(levels, windows, strict=True)):
            time.sleep(max(0.0, t0 + ws - now()))
            meter.begin()
            time.sleep(max(0.0, t0 + we - now()))
            cpu = meter.end()
            while len(pending.get(i, [])) < clients:
                kind, _, index, payload = out.get(timeout=120)
                if kind == "window":
                    pending.setdefault(index, []).append(payload)
                else:
                    done.append(payload)
            row = _aggregate(n, we - ws, pending[i], cpu, mode)
            results.append(row)
            _print_row(label, row, mode)
            if mode == "listen" and (row["failures"] or row["behind"] > 0.01 * n):
                break
    finally:
        stop.set()
        deadline = now() + 60
        while len(done) < clients and now() < deadline:
            try:
                kind, _, _, payload = out.get(timeout=max(0.1, deadline - now()))
            except Exception:
                break
            if kind == "done":
                done.append(payload)
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.terminate()
    totals = {
        "requests": sum(d["requests"] for d in done),
        "failures": sum(d["failures"] for d in done),
        "fail_samples": [s for d in done for s in d["fail_samples"]][:10],
        "listeners_behind_anywhere": sum(len(d["behind_anywhere"]) for d in done),
        "rebuffers_outside_windows": sum(d["behind_outside_windows"] for d in done),
        "reconnects": sum(d["reconnects"] for d in done),
    }
    return {"levels": results, "totals": totals}


def _aggregate(
    n: int, seconds: float, parts: list[dict[str, Any]], cpu: dict[str, Any], mode: str
) -> dict[str, Any]:
    lat: dict[str, list[float]] = {}
    for p in parts:
        for kind, values in p["latency"].items():
            lat.setdefault(kind, []).extend(values)
    requests = sum(p["requests"] for p in parts)
    row: dict[str, Any] = {
        "listeners": n,
        "seconds": round(seconds, 1),
        "requests": requests,
        "req_per_s": round(requests / seconds, 1),
        "mb_per_s": round(sum(p["bytes"] for p in parts) / seconds / 1e6, 2),
        "failures": sum(p["failures"] for p in parts),
        "behind": sum(len(p["behind"]) for p in parts),
        "rebuffers": sum(p["rebuffers"] for p in parts),
        "cpu": cpu,
    }
    for kind, values in sorted(lat.items()):
        row[kind] = {
            "n": len(values),
            "p50_ms": round(pct(values, 0.5) * 1000, 2),
            "p99_ms": round(pct(values, 0.99) * 1000, 2),
            "max_ms": round(max(values) * 1000, 2),
        }
    return row


def _cpu_text(cpu: dict[str, Any]) -> str:
    parts = []
    for name in ("server", "nginx", "client"):
        if name in cpu:
            per = cpu[name + "_per_process"]
            parts.append(
                f"{name} {cpu[name]:.2f}"
                + (f" ({'+'.join(f'{p:.2f}' for p in per)})" if len(per) > 1 else "")
            )
    parts.append(f"machine {cpu['machine']:.2f}/{os.cpu_count()} (other {cpu['other']:.2f})")
    return ", ".join(parts)


def _print_row(label: str, row: dict[str, Any], mode: str) -> None:
    if mode == "ttfb":
        return
    seg = row.get("segment", {})
    print(
        f"  {label:<22} {row['listeners']:>6} {row['seconds']:>5.0f}s {row['req_per_s']:>8.0f} "
        f"{row['mb_per_s']:>7.1f} {seg.get('p50_ms', math.nan):>8.1f} {seg.get('p99_ms', math.nan):>8.1f} "
        f"{seg.get('max_ms', math.nan):>8.0f} {row['behind']:>6} {row['failures']:>6}   "
        f"{_cpu_text(row['cpu'])}",
        flush=True,
    )
    if row["cpu"].get("client_per_process") and max(row["cpu"]["client_per_process"]) > 0.9:
        print(
            "    ! a load-generator process used > 90% of a core: the client may be the limit here",
            flush=True,
        )


LISTEN_HEADER = (
    f"  {'configuration':<22} {'N':>6} {'window':>6} {'req/s':>8} {'MB/s':>7} {'p50 ms':>8} {'p99 ms':>8} "
    f"{'max ms':>8} {'behind':>6} {'failed':>6}   CPU (cores)"
)


# Catalog, users, servers -------------------------------------------------------------------------
def prepare_catalog(cache: Path, n_tracks: int, seconds: float) -> tuple[Path, list[str]]:
    """The demo catalog with HLS renditions, made once per (tracks, seconds) and kept in `cache`."""
    home = cache / f"playback-{n_tracks}x{seconds:g}"
    data = home / "data"
    ready = home / "ready"
    if ready.exists():
        print(f"catalog: reusing {home} ({ready.read_text().strip()})")
    else:
        data.mkdir(parents=True, exist_ok=True)
        print(
            f"catalog: tonearm demo --tracks {n_tracks} --seconds {seconds:g} --wait into {home} ...",
            flush=True,
        )
        started = time.monotonic()
        env = {
            **os.environ,
            "TONEARM_DATA_DIR": str(data),
            "TONEARM_SECRET_KEY": SECRET,
            "TONEARM_LOG_LEVEL": "WARNING",
        }
        cmd = [
            sys.executable,
            "-m",
            "tonearm",
            "demo",
            "--tracks",
            str(n_tracks),
            "--seconds",
            str(seconds),
            "--wait",
        ]
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
        took = time.monotonic() - started
        ready.write_text(f"made by `tonearm demo` in {took:.0f} s\n")
        print(f"catalog: made in {took:.0f} s")
    with sqlite3.connect(data / "tonearm.db") as db:
        rows = db.execute(
            "SELECT t.id FROM tracks t JOIN renditions r ON r.track_id = t.id "
            "WHERE t.status = 'ready' AND t.visibility = 'public' AND r.name = 'aac_160' "
            "AND r.hls_index IS NOT NULL AND t.duration_ms >= 60000 ORDER BY t.id"
        ).fetchall()
    if not rows:
        raise SystemExit(f"no playable track of 60 s or more in {data}; delete {home} to remake it")
    return data, [r[0] for r in rows]


def ensure_tokens(base: str, home: Path, n_users: int) -> list[str]:
    """Access tokens of n_users bench accounts (created and logged in once, kept in home)."""
    path = home / "tokens.json"
    saved: dict[str, dict[str, Any]] = json.loads(path.read_text()) if path.exists() else {}
    emails = [f"listener-{i}@bench.local" for i in range(n_users)]
    missing = [e for e in emails if saved.get(e, {}).get("exp", 0) < time.time() + 6 * 3600]
    if missing:
        started = time.monotonic()

        def login(email: str) -> tuple[str, str]:
            with httpx.Client(base_url=base, timeout=60) as c:
                r = c.post(
                    "/v1/users", json={"email": email, "password": PASSWORD, "display_name": email[:20]}
                )
                if r.status_code not in (201, 409):
                    raise RuntimeError(f"sign-up of {email}: {r.status_code} {r.text[:200]}")
                t = c.post(
                    "/api/token", data={"grant_type": "password", "username": email, "password": PASSWORD}
                )
                t.raise_for_status()
                return email, t.json()["access_token"]

        with ThreadPoolExecutor(4) as pool:
            for email, token in pool.map(login, missing):
                saved[email] = {"token": token, "exp": time.time() + 7 * 86400}
        path.write_text(json.dumps(saved))
        print(f"users: {len(missing)} signed up / logged in in {time.monotonic() - started:.0f} s")
    return [saved[e]["token"] for e in emails]


def server_env(data: Path, delivery: str) -> dict[str, str]:
    return {
        "TONEARM_DATA_DIR": str(data),
        "TONEARM_SECRET_KEY": SECRET,
        "TONEARM_STREAM_DELIVERY": delivery,
        "TONEARM_ACCEL_PREFIX": "/_tonearm_blobs",
        "TONEARM_ACCESS_TOKEN_TTL_S": str(8 * 86400),
        "TONEARM_LOG_JSON": "false",
    }


def levels_and_durations(levels: list[int], duration: float, quick: bool) -> list[float]:
    if quick:
        return [duration] * len(levels)
    return [duration if n >= 2000 else min(30.0, duration) for n in levels]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small N and short windows: a smoke run")
    ap.add_argument("--only", choices=["ttfb", "python", "nginx"], help="run one part")
    ap.add_argument("--listeners", help="comma-separated levels of N (default per configuration)")
    ap.add_argument("--duration", type=float, help="measured seconds per level from 2,000 listeners on (60)")
    ap.add_argument("--workers", default="1,2", help="uvicorn workers of the python part, comma-separated")
    ap.add_argument("--clients", type=int, help="load-generator processes (default 1; 2 for nginx)")
    ap.add_argument("--buffer", type=float, default=10.0, help="seconds of audio a listener keeps ahead")
    ap.add_argument("--ramp-rate", type=float, default=100.0, help="listeners added per second")
    ap.add_argument("--ttfb-listeners", type=int, default=200)
    ap.add_argument("--ttfb-duration", type=float, help="measured seconds of the ttfb part (45)")
    ap.add_argument("--tracks", type=int, default=32, help="demo tracks in the catalog")
    ap.add_argument("--seconds", type=float, default=150.0, help="length of each demo track")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where the catalog is kept")
    ap.add_argument("--json", type=Path, help="also write every figure to this file")
    args = ap.parse_args()

    nofile = raise_nofile()
    duration = args.duration or (10.0 if args.quick else 60.0)
    ttfb_duration = args.ttfb_duration or (10.0 if args.quick else 45.0)
    py_default = "100,300" if args.quick else "1000,2000,3000,4000,6000,8000,10000,12000,14000,16000"
    ng_default = "200,500" if args.quick else "2000,4000,8000,12000,16000,20000,24000,28000,32000"
    py_levels = [int(x) for x in (args.listeners or py_default).split(",")]
    ng_levels = [int(x) for x in (args.listeners or ng_default).split(",")]
    parts = [args.only] if args.only else ["ttfb", "python", "nginx"]

    print(f"machine: {machine()}")
    load = os.getloadavg()
    print(
        f"load average before the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
        f"RLIMIT_NOFILE {nofile}; uvloop: {uvloop is not None}"
    )
    data, tracks = prepare_catalog(args.cache, args.tracks, args.seconds)
    max_n = max(
        [args.ttfb_listeners]
        + (py_levels if "python" in parts else [])
        + (ng_levels if "nginx" in parts else [])
    )
    n_users = math.ceil(max_n / LISTENERS_PER_USER)
    print(
        f"catalog: {len(tracks)} tracks of {args.seconds:g} s; {n_users} users "
        f"({LISTENERS_PER_USER} listeners each); buffer {args.buffer:g} s; segments ~4 s (the first ~1 s)"
    )
    for f in (data / "blobs" / "tracks").glob("*/hls/aac_160.mp4"):
        f.read_bytes()  # into the page cache, as on a server that has been playing them
    with Server(server_env(data, "direct")) as srv:
        tokens = ensure_tokens(srv.base, data.parent, n_users)
    report: dict[str, Any] = {"machine": machine(), "loadavg": load, "args": vars(args)}

    def load_run(
        label: str,
        nginx: bool,
        workers: int,
        mode: str,
        levels: list[int],
        durations: list[float],
        clients: int,
    ) -> dict[str, Any]:
        ramp = args.ttfb_listeners / 5.0 if mode == "ttfb" else args.ramp_rate

        def run(host: str, port: int, groups: dict[str, Callable[[], list[int]]]) -> dict[str, Any]:
            return run_load(
                label=label,
                host=host,
                port=port,
                mode=mode,
                levels=levels,
                durations=durations,
                ramp_rate=ramp,
                tracks=tracks,
                tokens=tokens,
                buffer_s=args.buffer,
                clients=clients,
                cpu_groups=groups,
            )

        return _with_front(data, nginx, workers, nofile, run)

    if "ttfb" in parts:
        print(
            f"\n== time to first audio: {args.ttfb_listeners} listeners, each listening 5-15 s per track; "
            f"{ttfb_duration:g} s measured =="
        )
        report["ttfb"] = {}
        for label, nginx, w in (("python, 1 worker", False, 1), ("nginx + python, 2 workers", True, 2)):
            res = load_run(label, nginx, w, "ttfb", [args.ttfb_listeners], [ttfb_duration], 1)
            report["ttfb"][label] = res
            _print_ttfb(label, res)

    if "python" in parts:
        print(f"\n== concurrent 160 kb/s listeners: tonearm serve alone (direct) ==\n{LISTEN_HEADER}")
        report["python"] = {}
        durations = levels_and_durations(py_levels, duration, args.quick)
        for w in (int(x) for x in args.workers.split(",")):
            label = f"python, {w} worker{'s' if w > 1 else ''}"
            res = load_run(label, False, w, "listen", py_levels, durations, args.clients or 1)
            report["python"][label] = res
            _print_summary(label, res)

    if "nginx" in parts:
        print(
            "\n== concurrent 160 kb/s listeners: nginx (accel) + tonearm serve --workers 2 ==\n"
            + LISTEN_HEADER
        )
        label = "nginx + python, 2 workers"
        durations = levels_and_durations(ng_levels, duration, args.quick)
        res = load_run(label, True, 2, "listen", ng_levels, durations, args.clients or 2)
        report["nginx"] = {label: res}
        _print_summary(label, res)

    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))
        print(f"\nfigures written to {args.json}")


def _with_front(
    data: Path, use_nginx: bool, workers: int, nofile: int, run: Callable[..., dict[str, Any]]
) -> dict[str, Any]:
    """Starts tonearm serve (with nginx in front in accel mode) and calls run(host, port, cpu groups)."""
    if not use_nginx:
        with Server(server_env(data, "direct"), workers=workers) as srv:
            return run("127.0.0.1", srv.port, {"server": srv.pids})
    port = free_port()
    env = server_env(data, "accel")
    with (
        Server(env, workers=workers, public_url=f"http://127.0.0.1:{port}") as srv,
        Nginx(srv.port, data / "blobs", nofile=nofile, port=port) as ng,
    ):
        return run("127.0.0.1", ng.port, {"server": srv.pids, "nginx": ng.pids})


def _print_ttfb(label: str, res: dict[str, Any]) -> None:
    row = res["levels"][0]
    print(f"  {label}: {row.get('startup', {}).get('n', 0)} starts")
    for kind, what in (
        ("grant", "grant"),
        ("ttfb", "first audio: grant + init+seg0"),
        ("chain", "HLS chain to the first segment"),
    ):
        f = row.get(kind, {})
        print(f"    {what:<31} p50 {f.get('p50_ms')} ms, p99 {f.get('p99_ms')} ms (n={f.get('n')})")
    print(
        f"    {row['req_per_s']:.0f} req/s, failed {res['totals']['failures']}; CPU: {_cpu_text(row['cpu'])}",
        flush=True,
    )
    _print_failures(res)


def _print_summary(label: str, res: dict[str, Any]) -> None:
    ok = [r["listeners"] for r in res["levels"] if not r["behind"] and not r["failures"]]
    broke = [r["listeners"] for r in res["levels"] if r["behind"] or r["failures"]]
    t = res["totals"]
    print(
        f"  -> {label}: kept up with {max(ok) if ok else 0} listeners"
        + (f"; {broke[0]} was too many" if broke else " (the largest level tried)")
        + f"; {t['requests']} requests, {t['failures']} failed, {t['reconnects']} reconnects "
        f"(keep-alive timeouts); listeners ever behind, ramps included: {t['listeners_behind_anywhere']}",
        flush=True,
    )
    _print_failures(res)


def _print_failures(res: dict[str, Any]) -> None:
    for sample in res["totals"]["fail_samples"]:
        print(f"    failed: {sample}")


if __name__ == "__main__":
    main()
