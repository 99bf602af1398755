"""Shared bits for the benchmark scripts: machine description, a server launcher, seeding."""

from __future__ import annotations

import datetime as dt
import os
import platform
import random
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

from tonearm import migrate
from tonearm.config import Settings
from tonearm.domains.catalog.tables import albums, artists, image_variants, images, track_artists, tracks
from tonearm.kernel.db import make_engine
from tonearm.kernel.ids import new_id


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    py = platform.python_version()
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, Python {py}, {platform.system()}"


BENCH_PG = "postgresql://postgres@127.0.0.1:5432/test"


def bench_db_url(db: str, tmp: Path) -> str:
    """A fresh database for one run: an SQLite file in `tmp`, or a new schema of the local
    PostgreSQL (left behind for inspection; `DROP SCHEMA bench_... CASCADE` removes it)."""
    if db == "sqlite":
        return f"sqlite:///{tmp / 'bench.db'}"
    schema = "bench_" + secrets.token_hex(4)
    eng = sa.create_engine(BENCH_PG.replace("postgresql://", "postgresql+psycopg://"))
    with eng.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    eng.dispose()
    return f"{BENCH_PG}?options=-csearch_path%3D{schema}"


def bench_settings(tmp: Path, url: str, secret_key: str, **overrides: object) -> Settings:
    """Settings for an in-process benchmark: its own data dir and database, no job workers, and no
    search indexer (its first rebuild would compete with what is measured)."""
    values: dict[str, object] = {
        "data_dir": tmp / "data",
        "database_url": url,
        "secret_key": secret_key,
        "search_url": "memory://",
        "search_indexer": False,
        "inprocess_workers": 0,
        "log_json": False,
    }
    return Settings(**(values | overrides))  # type: ignore[arg-type]


def drop_bench_db(url: str) -> None:
    """Removes what `bench_db_url` made in PostgreSQL (an SQLite file goes with its directory)."""
    if "search_path%3D" not in url:
        return
    schema = url.rsplit("search_path%3D", 1)[1]
    eng = sa.create_engine(BENCH_PG.replace("postgresql://", "postgresql+psycopg://"))
    with eng.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    eng.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed_catalog(url: str, n_tracks: int, *, per_album: int = 10, per_artist: int = 2) -> list[str]:
    """Writes a synthetic catalog straight into the database (metadata only) and returns track ids."""
    migrate.upgrade(url)
    engine = make_engine(url)
    rng = random.Random(1)
    now = dt.datetime.now(dt.UTC)
    track_ids: list[str] = []
    n_albums = max(1, n_tracks // per_album)
    with engine.begin() as conn:
        artist_rows, album_rows, image_rows, variant_rows = [], [], [], []
        for a in range(max(1, n_albums // per_artist)):
            artist_rows.append(
                {"id": new_id(), "name": f"Artist {a}", "name_key": f"artist {a}", "created_at": now}
            )
        for b in range(n_albums):
            image_id = new_id()
            image_rows.append(
                {"id": image_id, "source": "generated", "content_hash": None, "created_at": now}
            )
            for size in (640, 300, 64):
                variant_rows.append(
                    {
                        "image_id": image_id,
                        "size": size,
                        "width": size,
                        "height": size,
                        "blob_key": f"images/{image_id}/{size}.jpg",
                        "content_type": "image/jpeg",
                        "bytes": 1,
                    }
                )
            artist = artist_rows[b % len(artist_rows)]
            album_rows.append(
                {
                    "id": new_id(),
                    "name": f"Album {b}",
                    "artist_id": artist["id"],
                    "match_key": f"|{artist['id']}|album {b}",
                    "album_type": "album",
                    "release_date": f"{1970 + b % 55}-01-01",
                    "release_date_precision": "day",
                    "image_id": image_id,
                    "created_at": now,
                }
            )
        conn.execute(sa.insert(artists), artist_rows)
        conn.execute(sa.insert(images), image_rows)
        conn.execute(sa.insert(image_variants), variant_rows)
        conn.execute(sa.insert(albums), album_rows)
        batch_t, batch_ta = [], []
        for t in range(n_tracks):
            album = album_rows[t % n_albums]
            tid = new_id()
            track_ids.append(tid)
            batch_t.append(
                {
                    "id": tid,
                    "title": f"Track {t}",
                    "album_id": album["id"],
                    "duration_ms": rng.randint(90_000, 400_000),
                    "track_number": t // n_albums + 1,
                    "disc_number": 1,
                    "isrc": f"ZZBEN{t:07d}",
                    "explicit": False,
                    "status": "ready",
                    "visibility": "public",
                    "content_hash": f"{t:064x}",
                    "play_count": rng.randint(0, 5000),
                    "created_at": now,
                    "updated_at": now,
                }
            )
            batch_ta.append({"track_id": tid, "artist_id": album["artist_id"], "position": 0})
            if len(batch_t) == 5000:
                conn.execute(sa.insert(tracks), batch_t)
                conn.execute(sa.insert(track_artists), batch_ta)
                batch_t, batch_ta = [], []
        if batch_t:
            conn.execute(sa.insert(tracks), batch_t)
            conn.execute(sa.insert(track_artists), batch_ta)
    # Planner statistics, as autovacuum would gather within a minute of a bulk load: without them
    # PostgreSQL plans seq scans and the benchmark measures a state no real server stays in.
    with engine.connect() as conn:
        conn.execute(sa.text("ANALYZE"))
        conn.commit()
    engine.dispose()
    return track_ids


class Server:
    """`tonearm serve` in a subprocess, waited on until /readyz answers."""

    def __init__(self, env: dict[str, str], *, workers: int = 1, public_url: str | None = None) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            **env,
            "TONEARM_PORT": str(self.port),
            "TONEARM_PUBLIC_URL": public_url or f"http://127.0.0.1:{self.port}",
            "TONEARM_INPROCESS_WORKERS": "0",
            "TONEARM_LOG_LEVEL": "WARNING",
        }
        self.workers = workers
        self.proc: subprocess.Popen[bytes] | None = None
        self.base = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tonearm", "serve", "--workers", str(self.workers)], env=self.env
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("server did not start")

    def pids(self) -> list[int]:
        assert self.proc is not None
        out = subprocess.run(
            ["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True
        ).stdout.split()
        return [self.proc.pid, *map(int, out)]

    def rss_mb(self) -> dict[int, tuple[float, float]]:
        """Per process: (VmRSS, RssAnon) in MB. RssAnon leaves out file pages (SQLite's mmap)."""
        rss = {}
        for pid in self.pids():
            try:
                fields = dict(
                    line.split(":", 1)
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                    if ":" in line
                )
                rss[pid] = (int(fields["VmRSS"].split()[0]) / 1024, int(fields["RssAnon"].split()[0]) / 1024)
            except (OSError, KeyError):
                pass
        return rss

    def __exit__(self, *exc: object) -> None:
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> tuple[float, float]:
    """(busy CPU seconds over all cores, wall seconds x cores) since boot, from /proc/stat: the
    difference of two readings says how busy the whole machine was, other people's work included."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    tck = os.sysconf("SC_CLK_TCK")
    return (sum(values[:8]) - idle) / tck, sum(values[:8]) / tck


NGINX = "/usr/sbin/nginx"
NGINX_TEMPLATE = Path(__file__).resolve().parent.parent / "deploy" / "nginx.conf"


def render_nginx_conf(
    template: str, *, listen_port: int, upstream_port: int, blob_dir: Path, prefix: Path, nofile: int
) -> str:
    """deploy/nginx.conf with its `# (rewritten)` lines set for a private nginx in `prefix`
    (ports on 127.0.0.1, the blob directory, pid/logs/temp files, descriptor limits)."""
    values = {
        # A root master hands requests to workers running as `user`: they must read the blobs.
        "user": "user root;" if os.geteuid() == 0 else "",
        "worker_rlimit_nofile": f"worker_rlimit_nofile {nofile};",
        "pid": f"pid {prefix}/nginx.pid;",
        "error_log": f"error_log {prefix}/error.log warn;",
        "worker_connections": f"worker_connections {max(1024, nofile - 100)};",
        "server": f"server 127.0.0.1:{upstream_port};",
        # reuseport: each worker its own accept queue, so long-lived connections spread evenly.
        "listen": f"listen 127.0.0.1:{listen_port} backlog=4096 reuseport;",
        "alias": f"alias {blob_dir.resolve()}/;",
    }
    out = []
    for line in template.splitlines():
        if "# (rewritten)" in line and not line.lstrip().startswith("#"):
            directive = line.split()[0]
            line = line[: len(line) - len(line.lstrip())] + values[directive]
        out.append(line)
        if line.strip() == "http {":  # the compiled-in temp paths (/var/lib/nginx) need root
            temps = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
            out += [f"    {k}_temp_path {prefix}/{k};" for k in temps]
    return "\n".join(out) + "\n"


class Nginx:
    """nginx from deploy/nginx.conf in front of a Server, in a temporary prefix, until exit."""

    def __init__(self, upstream_port: int, blob_dir: Path, *, nofile: int, port: int | None = None) -> None:
        import resource
        import tempfile

        self.port = port or free_port()
        self.prefix = Path(tempfile.mkdtemp(prefix="tonearm-nginx-"))
        self.conf = self.prefix / "nginx.conf"
        nofile = min(nofile, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
        self.conf.write_text(
            render_nginx_conf(
                NGINX_TEMPLATE.read_text(),
                listen_port=self.port,
                upstream_port=upstream_port,
                blob_dir=blob_dir,
                prefix=self.prefix,
                nofile=nofile,
            )
        )
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Nginx:
        if not Path(NGINX).exists():
            raise RuntimeError(f"{NGINX} is missing: `make system-deps` installs nginx")
        cmd = [NGINX, "-p", str(self.prefix), "-e", str(self.prefix / "error.log"), "-c", str(self.conf)]
        subprocess.run([*cmd, "-t", "-q"], check=True)
        self.proc = subprocess.Popen([*cmd, "-g", "daemon off;"])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start: " + (self.prefix / "error.log").read_text()[-2000:])

    def pids(self) -> list[int]:
        assert self.proc is not None
        out = subprocess.run(
            ["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True
        ).stdout.split()
        return [self.proc.pid, *map(int, out)]

    def __exit__(self, *exc: object) -> None:
        if self.proc:
            self.proc.terminate()  # SIGTERM: fast shutdown
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        log = self.prefix / "error.log"
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        if lines:  # summarised, then removed with the rest of the prefix
            print(f"    nginx error.log: {len(lines)} lines, the last: {lines[-1][:200]}")
        shutil.rmtree(self.prefix, ignore_errors=True)


def run_wrk(base: str, lua: str, *, connections: int, seconds: int) -> str:
    """wrk's report of `seconds` of load from `connections` connections (2 threads) driven by
    the Lua script `lua`."""
    fd, name = tempfile.mkstemp(suffix=".lua")
    os.close(fd)
    script = Path(name)
    try:
        script.write_text(lua)
        return subprocess.run(
            ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), base],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        script.unlink(missing_ok=True)


def parse_wrk(out: str) -> dict[str, str]:
    """Requests/s, requests, latency percentiles, non-2xx responses and socket errors."""
    res = {"rps": re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)}  # type: ignore[union-attr]
    res["requests"] = re.search(r"(\d+) requests in", out).group(1)  # type: ignore[union-attr]
    for pct in ("50", "90", "99"):
        m = re.search(rf"\s{pct}(?:\.000)?%\s+([\d.]+\w+)", out)
        res[f"p{pct}"] = m.group(1) if m else "?"
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non2xx"] = errs.group(1) if errs else "0"
    sock = re.search(r"Socket errors: (.*)", out)
    res["socket_errors"] = sock.group(1) if sock else "none"
    return res
