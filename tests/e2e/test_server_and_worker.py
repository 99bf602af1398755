"""End to end: real `tonearm serve` and `tonearm worker` processes on PostgreSQL (SQLite when
PostgreSQL is absent outside CI), an upload over HTTP, and spotipy reading the track back.

Also: a worker killed mid-job leaves the job to be retried by another worker once its lease ends.
"""

from __future__ import annotations

import base64
import datetime
import io
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
from PIL import Image

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


def _playlist_steps(sp: spotipy.Spotify, track_id: str) -> None:
    """Playlists as spotipy's own calls send them (its newer `/items` paths, a bare list of URIs
    to add, `{"items": [...]}` to remove, a base64 body for the cover)."""
    me = sp.me()
    pl = sp.user_playlist_create(me["id"], "E2E Mix", public=False, description="made by spotipy")
    assert pl["name"] == "E2E Mix" and pl["public"] is False and pl["tracks"]["total"] == 0
    sp.playlist_add_items(pl["id"], [track_id, track_id])
    first = sp.playlist_add_items(pl["id"], [f"spotify:track:{track_id}"], position=0)["snapshot_id"]
    moved = sp.playlist_reorder_items(pl["id"], range_start=0, insert_before=3, snapshot_id=first)
    assert moved["snapshot_id"] != first
    with pytest.raises(spotipy.SpotifyException) as stale:  # another edit came first
        sp.playlist_reorder_items(pl["id"], range_start=0, insert_before=2, snapshot_id=first)
    assert stale.value.http_status == 409
    items = sp.playlist_items(pl["id"])
    assert items["total"] == 3 and [i["track"]["id"] for i in items["items"]] == [track_id] * 3
    assert len(sp.playlist_cover_image(pl["id"])) == 3  # the album's cover, the only one there is
    sp.playlist_remove_all_occurrences_of_items(pl["id"], [track_id])
    assert sp.playlist_items(pl["id"])["total"] == 0
    other = sp.current_user_playlist_create("Second", description="public")
    sp.playlist_change_details(other["id"], name="Second, renamed")
    cover = io.BytesIO()
    Image.new("RGB", (300, 300), (200, 40, 90)).save(cover, format="JPEG")
    sp.playlist_upload_cover_image(other["id"], base64.b64encode(cover.getvalue()).decode())
    assert [i["width"] for i in sp.playlist_cover_image(other["id"])] == [640, 300, 64]
    mine = sp.current_user_playlists()
    assert [(p["id"], p["name"]) for p in mine["items"]] == [
        (other["id"], "Second, renamed"),
        (pl["id"], "E2E Mix"),
    ]
    sp.current_user_unfollow_playlist(other["id"])  # its owner deletes it
    assert [p["id"] for p in sp.current_user_playlists()["items"]] == [pl["id"]]


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
        # Following, as spotipy sends it (artist URIs to /v1/me/library), and the release feed.
        sp.user_follow_artists([artist["id"]])
        assert sp.current_user_following_artists([artist["id"]]) == [True]
        followed = sp.current_user_followed_artists()["artists"]
        assert [a["id"] for a in followed["items"]] == [artist["id"]] and followed["cursors"]["after"] is None
        assert followed["items"][0]["followers"]["total"] == 1
        feed = httpx.get(f"{base}/v1/me/feed/releases", headers={"Authorization": auth["Authorization"]})
        assert [a["id"] for a in feed.json()["items"]] == [album["id"]]
        sp.user_unfollow_artists([artist["id"]])
        assert sp.current_user_following_artists([artist["id"]]) == [False]
        _play_and_read_recently_played(base, auth, sp, track_id)
        _playlist_steps(sp, track_id)
        grant = httpx.get(
            f"{base}/v1/tracks/{track_id}/playback", headers={"Authorization": auth["Authorization"]}
        ).json()
        assert max(r["bitrate_kbps"] for r in grant["renditions"]) == 160  # free tier cap
        first = httpx.get(grant["renditions"][0]["url"], headers={"Range": "bytes=0-99"})
        assert first.status_code == 206 and len(first.content) == 100
    finally:
        worker.terminate()
        worker.wait(20)


def _play_and_read_recently_played(
    base: str, auth: dict[str, str], sp: spotipy.Spotify, track_id: str
) -> None:
    """A player reports a listening (the 3 s track counts once 2 s are heard); spotipy reads it
    back from the listening history, and its cursor pages on to nothing older."""
    now = datetime.datetime.now(datetime.UTC)
    events = [
        {"id": "e2e-1", "type": "start", "track_id": track_id, "playback_id": "e2e-pb",
         "timestamp": now.isoformat(), "position_ms": 0, "context_uri": f"tonearm:track:{track_id}"},
        {"id": "e2e-2", "type": "end", "track_id": track_id, "playback_id": "e2e-pb",
         "timestamp": (now + datetime.timedelta(seconds=3)).isoformat(), "ms_played": 3000},
    ]  # fmt: skip
    r = httpx.post(
        f"{base}/v1/me/player/events",
        headers={"Authorization": auth["Authorization"]},
        json={"events": events},
    )
    assert r.status_code == 200 and r.json()["plays_counted"] == 1, r.text
    recent = sp.current_user_recently_played(limit=10)
    assert [i["track"]["id"] for i in recent["items"]] == [track_id]
    assert recent["items"][0]["played_at"].endswith("Z") and recent["cursors"]["before"]
    older = sp.current_user_recently_played(limit=10, before=recent["cursors"]["before"])
    assert older["items"] == [] and older["next"] is None
    assert [t["id"] for t in sp.current_user_top_tracks(time_range="short_term")["items"]] == [track_id]


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
