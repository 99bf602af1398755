"""Uploads through HTTP and the real pipeline (ffmpeg, Pillow, mutagen) on SQLite and PostgreSQL."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from PIL import Image

from tests.helpers import ffmpeg, make_tone
from tonearm.bootstrap import Container
from tonearm.domains.catalog.tables import renditions, tracks
from tonearm.ports.jobs import JobQueue

from .conftest import sign_up_and_login


def upload(
    client: TestClient,
    headers: dict[str, str],
    path: Path,
    *,
    name: str | None = None,
    visibility: str = "private",
) -> Any:
    with path.open("rb") as fh:
        return client.post(
            "/v1/me/uploads",
            headers=headers,
            files={"file": (name or path.name, fh, "application/octet-stream")},
            data={"visibility": visibility},
        )


def drain(container: Container) -> None:
    container.worker(name="test").drain()


def test_upload_becomes_a_ready_track_with_renditions_and_cover(
    client: TestClient, container: Container, tmp_path: Path
) -> None:
    tok = sign_up_and_login(client)
    src = make_tone(
        tmp_path / "song.mp3",
        seconds=4,
        tags={
            "title": "<script>alert(1)</script> Song",
            "artist": "Ada Band",
            "album": "First Light",
            "genre": "Jazz;Ambient",
            "date": "2021",
        },
    )
    r = upload(client, tok["headers"], src)
    assert r.status_code == 202, r.text
    up = r.json()
    assert up["status"] == "pending" and up["filename"] == "song.mp3"
    drain(container)
    done = client.get(f"/v1/me/uploads/{up['id']}", headers=tok["headers"]).json()
    assert done["status"] == "ready", done
    track_id = done["track"]["id"]
    track = client.get(f"/v1/tracks/{track_id}", headers=tok["headers"]).json()
    assert track["name"] == "<script>alert(1)</script> Song"  # kept as text; escaping is the renderer's job
    assert track["artists"][0]["name"] == "Ada Band" and track["album"]["name"] == "First Light"
    assert 3900 <= track["duration_ms"] <= 4100
    images = track["album"]["images"]
    assert [i["width"] for i in images] == [640, 300, 64]
    pic = client.get(images[1]["url"].replace("http://testserver", ""))
    assert pic.headers["content-type"] == "image/jpeg" and Image.open(io.BytesIO(pic.content)).size == (
        300,
        300,
    )
    with container.db.read() as conn:
        names = set(
            conn.execute(sa.select(renditions.c.name).where(renditions.c.track_id == track_id)).scalars()
        )
        loud = conn.execute(sa.select(tracks.c.loudness_lufs).where(tracks.c.id == track_id)).scalar_one()
    assert {
        "aac_96",
        "aac_160",
        "aac_320",
    } <= names and "original" not in names  # lossy originals are not kept
    assert loud is not None and -40 < loud < 0
    # Private by default: strangers and anonymous callers cannot see it.
    other = sign_up_and_login(client, "eve@example.com")
    assert client.get(f"/v1/tracks/{track_id}", headers=other["headers"]).status_code == 404
    assert client.get(f"/v1/tracks/{track_id}").status_code == 404
    assert client.get(f"/v1/me/uploads/{up['id']}", headers=other["headers"]).status_code == 404


def test_lossless_original_is_kept_and_genre_split(
    client: TestClient, container: Container, tmp_path: Path
) -> None:
    tok = sign_up_and_login(client)
    src = make_tone(
        tmp_path / "x.flac", seconds=2, tags={"title": "Lossless", "artist": "A", "genre": "Rock/Pop"}
    )
    up = upload(client, tok["headers"], src, visibility="public").json()
    drain(container)
    done = client.get(f"/v1/me/uploads/{up['id']}", headers=tok["headers"]).json()
    assert done["status"] == "ready"
    track_id = done["track"]["id"]
    with container.db.read() as conn:
        rows = {
            r.name: r for r in conn.execute(sa.select(renditions).where(renditions.c.track_id == track_id))
        }
    assert rows["original"].codec == "flac" and rows["original"].bitrate_kbps == 0
    album = client.get(f"/v1/tracks/{track_id}").json()["album"]  # public: anonymous can read
    full = client.get(f"/v1/albums/{album['id']}").json()
    assert full["genres"] == ["Pop", "Rock"]


def test_non_audio_is_refused_at_the_edge(client: TestClient, tmp_path: Path) -> None:
    tok = sign_up_and_login(client)
    png = tmp_path / "cover.mp3"
    Image.new("RGB", (10, 10)).save(png, format="PNG")
    r = upload(client, tok["headers"], png)
    assert r.status_code == 415 and "not an audio file" in r.json()["error"]["message"]
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    r = upload(client, tok["headers"], empty)
    assert r.status_code == 415 and "empty" in r.json()["error"]["message"]
    r = client.post(
        "/v1/me/uploads",
        headers=tok["headers"],
        content=b"raw",
    )
    assert r.status_code == 400 and "multipart" in r.json()["error"]["message"]


def test_lying_file_fails_with_reason_and_leaves_nothing(
    client: TestClient, container: Container, tmp_path: Path
) -> None:
    tok = sign_up_and_login(client)
    liar = tmp_path / "liar.mp3"
    liar.write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\x00garbage" * 5000)  # an ID3 header and no audio
    up = upload(client, tok["headers"], liar).json()
    drain(container)
    done = client.get(f"/v1/me/uploads/{up['id']}", headers=tok["headers"]).json()
    assert done["status"] == "failed" and done["error"]["code"] in ("not_audio", "corrupt")
    assert done["error"]["message"]
    with container.db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tracks)).scalar_one() == 0
    assert container.jobs.counts().get("failed") == 1


def test_truncated_flac(client: TestClient, container: Container, tmp_path: Path) -> None:
    tok = sign_up_and_login(client)
    src = make_tone(tmp_path / "t.flac", seconds=3)
    data = src.read_bytes()
    cut = tmp_path / "cut.flac"
    cut.write_bytes(data[:200])
    up = upload(client, tok["headers"], cut).json()
    drain(container)
    done = client.get(f"/v1/me/uploads/{up['id']}", headers=tok["headers"]).json()
    assert done["status"] == "failed" and done["error"]["code"] in ("corrupt", "not_audio", "too_short")


def test_duplicate_upload_is_detected(client: TestClient, container: Container, tmp_path: Path) -> None:
    tok = sign_up_and_login(client)
    src = make_tone(tmp_path / "a.ogg", seconds=2, tags={"title": "Twice"})
    first = upload(client, tok["headers"], src).json()
    drain(container)
    second = upload(client, tok["headers"], src, name="copy.ogg").json()
    drain(container)
    a = client.get(f"/v1/me/uploads/{first['id']}", headers=tok["headers"]).json()
    b = client.get(f"/v1/me/uploads/{second['id']}", headers=tok["headers"]).json()
    assert a["status"] == "ready"
    assert b["status"] == "failed" and b["error"]["code"] == "duplicate"
    assert b["error"]["duplicate_of"] == f"tonearm:track:{a['track']['id']}"


def test_retagged_copy_is_a_duplicate_by_audio(
    client: TestClient, container: Container, tmp_path: Path
) -> None:
    tok = sign_up_and_login(client)
    wav = make_tone(tmp_path / "a.wav", seconds=2)
    upload(client, tok["headers"], wav)
    drain(container)
    retagged = tmp_path / "b.wav"
    ffmpeg("-i", str(wav), "-c", "copy", "-metadata", "title=Other Title", str(retagged))
    assert retagged.read_bytes() != wav.read_bytes()
    second = upload(client, tok["headers"], retagged).json()
    drain(container)
    b = client.get(f"/v1/me/uploads/{second['id']}", headers=tok["headers"]).json()
    assert b["status"] == "failed" and b["error"]["code"] == "duplicate"


@pytest.mark.parametrize("name", ["../../etc/passwd.mp3", "a\x00b.mp3", "..\\..\\win.mp3", "/abs/path.mp3"])
def test_hostile_filenames_are_only_display_text(
    client: TestClient, container: Container, tmp_path: Path, name: str
) -> None:
    tok = sign_up_and_login(client)
    src = make_tone(tmp_path / "ok.mp3", seconds=1)
    r = upload(client, tok["headers"], src, name=name)
    assert r.status_code == 202, r.text
    shown = r.json()["filename"]
    assert "/" not in shown and "\\" not in shown and "\x00" not in shown and not shown.startswith(".")


def test_upload_over_limit_is_refused(tmp_path: Path, db_url: str) -> None:
    from tests.helpers import make_settings
    from tonearm.bootstrap import bootstrap
    from tonearm.http.app import create_app

    c = bootstrap(make_settings(tmp_path, db_url, max_upload_bytes=10_000))
    with TestClient(create_app(c, start_workers=False)) as client:
        tok = sign_up_and_login(client)
        big = make_tone(tmp_path / "big.wav", seconds=2)
        r = upload(client, tok["headers"], big)
        assert r.status_code == 413 and "limit" in r.json()["error"]["message"]
        assert list((c.settings.data_dir / "tmp").glob("upload-*")) == []  # nothing half-made left behind
        jobs: JobQueue = c.jobs
        assert jobs.counts() == {}
