"""End to end: real nginx, configured by deploy/nginx.conf, in front of `tonearm serve` with
stream_delivery=accel. Everything goes through nginx: sign-up, an upload, the grant, a progressive
Range request, the HLS master, media playlist and a segment. Tonearm only authorizes the byte
requests (X-Accel-Redirect); nginx sends the bytes from the blob directory.

Needs /usr/sbin/nginx (`make test-deps` installs Debian's nginx package).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.test_server_and_worker import _env, _free_port, _tonearm, _wait_ready
from tests.helpers import make_tone

pytestmark = pytest.mark.slow

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf"
ACCEL_PREFIX = "/_tonearm_blobs"


def _nginx() -> str:
    found = shutil.which("nginx", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))
    if found is None:
        pytest.fail(
            "nginx is required for this test: /usr/sbin/nginx is missing (`make test-deps` installs it)"
        )
    return found


def render_conf(*, listen_port: int, upstream_port: int, blob_dir: Path, prefix: Path) -> str:
    """deploy/nginx.conf with its `# (rewritten)` lines set for a private nginx in `prefix`."""
    values = {
        "user": "user root;" if os.geteuid() == 0 else "",  # workers must read pytest's tmp dirs
        "worker_rlimit_nofile": "worker_rlimit_nofile 1024;",
        "pid": f"pid {prefix}/nginx.pid;",
        "error_log": f"error_log {prefix}/error.log warn;",
        "worker_connections": "worker_connections 512;",
        "server": f"server 127.0.0.1:{upstream_port};",
        "listen": f"listen 127.0.0.1:{listen_port};",
        "alias": f"alias {blob_dir}/;",
    }
    out = []
    for line in TEMPLATE.read_text().splitlines():
        if "# (rewritten)" in line and not line.lstrip().startswith("#"):
            line = line[: len(line) - len(line.lstrip())] + values[line.split()[0]]
        out.append(line)
        if line.strip() == "http {":  # compiled-in temp paths are under /var/lib/nginx
            out += [
                f"    {k}_temp_path {prefix}/{k};"
                for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
            ]
    return "\n".join(out) + "\n"


@pytest.fixture
def stack(tmp_path: Path, db_url: str, have_ffmpeg: None) -> Iterator[dict[str, Any]]:
    nginx = _nginx()
    app_port, nginx_port = _free_port(), _free_port()
    base = f"http://127.0.0.1:{nginx_port}"
    data = tmp_path / "data"
    env = _env(data, db_url, app_port) | {
        "TONEARM_PUBLIC_URL": base,  # links in grants and playlists point at nginx
        "TONEARM_INPROCESS_WORKERS": "1",  # transcodes the upload
        "TONEARM_STREAM_DELIVERY": "accel",
        "TONEARM_ACCEL_PREFIX": ACCEL_PREFIX,
    }
    app_log = (tmp_path / "server.log").open("w")
    app = subprocess.Popen(_tonearm("serve"), env=env, stdout=app_log, stderr=subprocess.STDOUT)
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    (data / "blobs").mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(
        render_conf(listen_port=nginx_port, upstream_port=app_port, blob_dir=data / "blobs", prefix=prefix)
    )
    cmd = [nginx, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf)]
    proxy: subprocess.Popen[bytes] | None = None
    try:
        try:
            _wait_ready(f"http://127.0.0.1:{app_port}", app)
        except RuntimeError as exc:
            app_log.flush()
            pytest.fail(
                f"tonearm serve did not start ({exc}): {(tmp_path / 'server.log').read_text()[-2000:]}"
            )
        test = subprocess.run([*cmd, "-t", "-q"], capture_output=True, text=True)
        assert test.returncode == 0, f"deploy/nginx.conf does not load:\n{test.stderr}\n{conf.read_text()}"
        proxy = subprocess.Popen([*cmd, "-g", "daemon off;"], stderr=subprocess.STDOUT, stdout=app_log)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", nginx_port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or proxy.poll() is not None:
                    pytest.fail(f"nginx did not start: {(prefix / 'error.log').read_text()[-2000:]}")
                time.sleep(0.05)
        yield {"base": base, "data": data, "tmp": tmp_path}
    finally:
        for proc in (proxy, app):
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        app_log.close()


def _login(client: httpx.Client) -> dict[str, str]:
    r = client.post(
        "/v1/users", json={"email": "nginx@example.com", "password": "nginx password", "display_name": "N"}
    )
    assert r.status_code == 201, r.text
    tok = client.post(
        "/api/token",
        data={"grant_type": "password", "username": "nginx@example.com", "password": "nginx password"},
    )
    assert tok.status_code == 200, tok.text
    return {"Authorization": f"Bearer {tok.json()['access_token']}"}


def _upload(client: httpx.Client, auth: dict[str, str], tmp: Path) -> str:
    src = make_tone(tmp / "accel.flac", seconds=12, noise=True, tags={"title": "Through nginx"})
    with src.open("rb") as fh:
        r = client.post(
            "/v1/me/uploads", headers=auth, files={"file": ("accel.flac", fh)}, data={"visibility": "public"}
        )
    assert r.status_code == 202, r.text
    upload_id = r.json()["id"]
    deadline = time.monotonic() + 120
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = client.get(f"/v1/me/uploads/{upload_id}", headers=auth).json()
        if status["status"] in ("ready", "failed"):
            break
        time.sleep(0.3)
    assert status["status"] == "ready", status
    return str(status["track"]["id"])


def _target(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _served_by_nginx(r: httpx.Response, content_type: str) -> None:
    assert r.headers.get_list("content-type") == [content_type]  # Tonearm's, and only once
    assert "x-accel-redirect" not in r.headers  # nginx consumed it
    assert r.headers["access-control-allow-origin"] == "*"  # put back by the internal location
    assert re.fullmatch(r"private, max-age=\d+", r.headers["cache-control"])


def test_bytes_through_nginx_accel(stack: dict[str, Any]) -> None:
    base, data = stack["base"], stack["data"]
    with httpx.Client(base_url=base, timeout=30) as client:
        auth = _login(client)
        track_id = _upload(client, auth, stack["tmp"])
        grant = client.get(f"/v1/tracks/{track_id}/playback", headers=auth)
        assert grant.status_code == 200, grant.text
        g = grant.json()
        assert g["hls"]["master_url"].startswith(base + "/hls/")

        # Progressive: a Range request answered by nginx with the exact bytes of the blob.
        r160 = next(r for r in g["renditions"] if r["name"] == "aac_160")
        assert r160["ready"] and r160["url"].startswith(base + "/stream/")
        blob = (data / "blobs" / "tracks" / track_id / "aac_160.m4a").read_bytes()
        assert len(blob) == r160["size_bytes"]
        r = client.get(_target(r160["url"]), headers={"Range": "bytes=100-1099"})
        assert r.status_code == 206, r.text
        assert r.headers["content-range"] == f"bytes 100-1099/{len(blob)}"
        assert r.content == blob[100:1100]
        _served_by_nginx(r, "audio/mp4")
        # nginx answers conditionals with its own validators.
        again = client.get(_target(r160["url"]), headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304

        # HLS: master -> media playlist -> a segment's byte range; and the grant's fast start.
        master = client.get(_target(g["hls"]["master_url"]))
        assert master.status_code == 200
        assert master.headers["content-type"] == "application/vnd.apple.mpegurl"
        variant = next(line for line in master.text.splitlines() if line.startswith("aac_160.m3u8?"))
        media = client.get(f"/hls/{track_id}/{variant}")
        assert media.status_code == 200, media.text
        file = next(line for line in media.text.splitlines() if line.startswith("aac_160.mp4?"))
        ranges = [(int(off), int(n)) for n, off in re.findall(r"#EXT-X-BYTERANGE:(\d+)@(\d+)", media.text)]
        assert len(ranges) >= 3
        hls_blob = (data / "blobs" / "tracks" / track_id / "hls" / "aac_160.mp4").read_bytes()
        off, n = ranges[1]
        seg = client.get(f"/hls/{track_id}/{file}", headers={"Range": f"bytes={off}-{off + n - 1}"})
        assert seg.status_code == 206, seg.text
        assert seg.headers["content-range"] == f"bytes {off}-{off + n - 1}/{len(hls_blob)}"
        assert seg.content == hls_blob[off : off + n]
        _served_by_nginx(seg, "audio/mp4")
        start = g["hls"]["start"]
        first = client.get(_target(start["url"]), headers={"Range": start["range"]})
        assert first.status_code == 206
        assert first.content == hls_blob[: ranges[0][0] + ranges[0][1]]

        # A bad signature is Tonearm's 403 JSON, passed through by nginx.
        bad = client.get(_target(r160["url"]).replace("sig=", "sig=x"), headers={"Range": "bytes=0-9"})
        assert bad.status_code == 403
        assert bad.headers["content-type"] == "application/json"
        assert bad.json()["error"]["status"] == 403

        # The internal location cannot be fetched from outside.
        for path in (f"{ACCEL_PREFIX}/tracks/{track_id}/hls/aac_160.mp4", f"{ACCEL_PREFIX}/"):
            direct = client.get(path, headers={"Range": "bytes=0-9"})
            assert direct.status_code == 404, path
            assert direct.content[:100] != hls_blob[:100]
