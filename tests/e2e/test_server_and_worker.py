"""End to end: real `tonearm serve` and `tonearm worker` processes on PostgreSQL (SQLite when
PostgreSQL is absent outside CI), an upload over HTTP, and spotipy reading the track back.

Also: a worker killed mid-job leaves the job to be retried by another worker once its lease ends.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import spotipy
import sqlalchemy as sa

from tests.helpers import make_tone
from tonearm.kernel.db import make_engine
from tonearm.workers.tables import jobs

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(base: str, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not become ready")


def _env(data_dir: Path, db_url: str, port: int, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        TONEARM_DATA_DIR=str(data_dir),
        TONEARM_DATABASE_URL=db_url,
        TONEARM_PUBLIC_URL=f"http://127.0.0.1:{port}",
        TONEARM_PORT=str(port),
        TONEARM_INPROCESS_WORKERS="0",
        TONEARM_SECRET_KEY="e2e-secret-" + "k" * 32,
        **extra,
    )
    return env


def _tonearm(*args: str) -> list[str]:
    return [sys.executable, "-m", "tonearm", *args]


@pytest.fixture
def server(tmp_path: Path, db_url: str) -> Iterator[dict[str, Any]]:
    port = _free_port()
    env = _env(tmp_path / "data", db_url, port)
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(_tonearm("serve"), env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, proc)
    except Exception:
        log.close()
        pytest.fail("server did not become ready: " + (tmp_path / "server.log").read_text()[-2000:])
    try:
        yield {"base": base, "env": env, "tmp": tmp_path}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _login(base: str) -> dict[str, str]:
    httpx.post(
        f"{base}/v1/users",
        json={"email": "e2e@example.com", "password": "e2e password", "display_name": "E2E"},
    )
    tok = httpx.post(
        f"{base}/api/token",
        data={"grant_type": "password", "username": "e2e@example.com", "password": "e2e password"},
    ).json()
    return {"Authorization": f"Bearer {tok['access_token']}", "token": tok["access_token"]}


def test_upload_process_and_read_back_with_spotipy(server: dict[str, Any]) -> None:
    base, env, tmp = server["base"], server["env"], server["tmp"]
    worker = subprocess.Popen(
        _tonearm("worker"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        auth = _login(base)
        src = make_tone(
            tmp / "e2e.flac",
            seconds=3,
            tags={"title": "End To End", "artist": "The Testers", "album": "Pipelines"},
        )
        with src.open("rb") as fh:
            r = httpx.post(
                f"{base}/v1/me/uploads",
                headers={"Authorization": auth["Authorization"]},
                files={"file": ("e2e.flac", fh)},
                data={"visibility": "public"},
                timeout=30,
            )
        assert r.status_code == 202, r.text
        upload_id = r.json()["id"]
        deadline = time.monotonic() + 90
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = httpx.get(
                f"{base}/v1/me/uploads/{upload_id}", headers={"Authorization": auth["Authorization"]}
            ).json()
            if status["status"] in ("ready", "failed"):
                break
            time.sleep(0.3)
        assert status["status"] == "ready", status
        track_id = status["track"]["id"]
        sp = spotipy.Spotify(auth=auth["token"], requests_timeout=10)
        sp.prefix = f"{base}/v1/"
        track = sp.track(track_id)
        assert track["name"] == "End To End" and track["artists"][0]["name"] == "The Testers"
        album = sp.album(track["album"]["id"])
        assert album["name"] == "Pipelines" and album["tracks"]["total"] == 1 and len(album["images"]) == 3
        assert sp.album_tracks(album["id"])["items"][0]["id"] == track_id
        artist = sp.artist(track["artists"][0]["id"])
        assert artist["name"] == "The Testers"
        assert sp.artist_top_tracks(artist["id"])["tracks"][0]["id"] == track_id
        assert sp.artist_albums(artist["id"])["items"][0]["id"] == album["id"]
        assert sp.tracks([track_id])["tracks"][0]["id"] == track_id
        assert sp.me()["product"] == "free"
        # The library, as spotipy's own calls send it (ids in the query, paths with a slash).
        sp.current_user_saved_tracks_add([track_id])
        assert sp.current_user_saved_tracks_contains([track_id]) == [True]
        saved = sp.current_user_saved_tracks()
        assert saved["total"] == 1 and saved["items"][0]["track"]["id"] == track_id
        sp.current_user_saved_tracks_delete([track_id])
        assert sp.current_user_saved_tracks_contains([track_id]) == [False]
        sp.current_user_saved_albums_add([album["id"]])
        assert sp.current_user_saved_albums()["items"][0]["album"]["id"] == album["id"]
        assert sp.current_user_saved_albums_contains([album["id"]]) == [True]
        grant = httpx.get(
            f"{base}/v1/tracks/{track_id}/playback", headers={"Authorization": auth["Authorization"]}
        ).json()
        assert max(r["bitrate_kbps"] for r in grant["renditions"]) == 160  # free tier cap
        first = httpx.get(grant["renditions"][0]["url"], headers={"Range": "bytes=0-99"})
        assert first.status_code == 206 and len(first.content) == 100
    finally:
        worker.terminate()
        worker.wait(20)


def test_killed_worker_job_is_retried(server: dict[str, Any]) -> None:
    base, env, tmp = server["base"], server["env"], server["tmp"]
    auth = _login(base)
    # A long file makes the transcode stage slow enough to kill the worker in the middle of it.
    src = make_tone(tmp / "long.wav", seconds=120)
    with src.open("rb") as fh:
        upload_id = httpx.post(
            f"{base}/v1/me/uploads",
            headers={"Authorization": auth["Authorization"]},
            files={"file": ("long.wav", fh)},
            timeout=60,
        ).json()["id"]
    short_lease = env | {"TONEARM_JOB_LEASE_S": "3"}
    victim = subprocess.Popen(
        _tonearm("worker"), env=short_lease, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        st = httpx.get(
            f"{base}/v1/me/uploads/{upload_id}", headers={"Authorization": auth["Authorization"]}
        ).json()
        running = 'tonearm_job_queue{status="running"} 1.0' in httpx.get(f"{base}/metrics").text
        if st["stage"] == "transcoding" and running:
            break  # the victim holds the renditions job's lease
        time.sleep(0.1)
    time.sleep(0.5)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    st = httpx.get(
        f"{base}/v1/me/uploads/{upload_id}", headers={"Authorization": auth["Authorization"]}
    ).json()
    assert st["status"] == "processing", st  # it died mid-job
    rescuer = subprocess.Popen(
        _tonearm("worker"), env=short_lease, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            st = httpx.get(
                f"{base}/v1/me/uploads/{upload_id}", headers={"Authorization": auth["Authorization"]}
            ).json()
            if st["status"] in ("ready", "failed"):
                break
            time.sleep(0.5)
        assert st["status"] == "ready", st
    finally:
        rescuer.terminate()
        rescuer.wait(20)
    engine = make_engine(env["TONEARM_DATABASE_URL"])
    with engine.connect() as conn:
        attempts = conn.execute(
            sa.select(jobs.c.attempts, jobs.c.status).where(jobs.c.kind == "ingest.renditions")
        ).one()
    engine.dispose()
    assert tuple(attempts) == (2, "done")  # claimed by the victim, then again after its lease ran out
