"""A container on a clock the tests move (skip windows, ad lengths), an API client, listeners,
admins, music written straight into the catalog, and real ad audio uploaded by an admin."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.helpers import make_settings, make_tone
from tests.integration.api.conftest import sign_up_and_login
from tests.integration.api.test_ingest import drain, upload
from tonearm.bootstrap import Container, bootstrap
from tonearm.domains.catalog.tables import track_artists, tracks
from tonearm.http.app import create_app
from tonearm.kernel.clock import FrozenClock
from tonearm.kernel.ids import new_id

PASSWORD = "correct horse"
_FREQS = itertools.count(300, 20)  # a different sound per upload: ingest refuses duplicates


@pytest.fixture
def clock() -> FrozenClock:
    # Real time: access tokens and signed URLs expire by the wall clock.
    return FrozenClock(dt.datetime.now(dt.UTC).replace(second=0, microsecond=0))


@pytest.fixture
def container(tmp_path: Path, db_url: str, clock: FrozenClock) -> Iterator[Container]:
    c = bootstrap(make_settings(tmp_path, db_url, search_url="memory://", search_indexer=False), clock=clock)
    yield c
    c.close()


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container, start_workers=False)) as tc:
        yield tc


def listener(client: TestClient, email: str = "ada@example.com") -> dict[str, Any]:
    return sign_up_and_login(client, email)


def admin(client: TestClient, c: Container, email: str = "root@example.com") -> dict[str, Any]:
    user_id = c.accounts.sign_up(email, PASSWORD, "Root", None, role="admin")
    t = client.post("/api/token", data={"grant_type": "password", "username": email, "password": PASSWORD})
    assert t.status_code == 200, t.text
    return {"user_id": user_id, "headers": {"Authorization": f"Bearer {t.json()['access_token']}"}}


def music(c: Container, n: int, *, seconds: int = 180) -> list[str]:
    """`n` public, ready tracks on one album, written straight into the catalog (no audio: the
    grant lists the renditions a fetch would make)."""
    now = c.clock.now()
    ids = [new_id() for _ in range(n)]
    with c.db.write() as conn:
        artist_id = c.catalog.ensure_artist(conn, "The Testers", now)
        album_id, _ = c.catalog.ensure_album(conn, f"Album {ids[0][:6]}", artist_id, "2024", now)
        for i, track_id in enumerate(ids):
            conn.execute(
                sa.insert(tracks).values(
                    id=track_id,
                    title=f"Song {i + 1}",
                    album_id=album_id,
                    duration_ms=seconds * 1000,
                    track_number=i + 1,
                    status="ready",
                    visibility="public",
                    content_hash=new_id(),
                    play_count=0,
                    created_at=now,
                    updated_at=now,
                )
            )
            conn.execute(sa.insert(track_artists).values(track_id=track_id, artist_id=artist_id, position=0))
    return ids


def album_of(c: Container, track_id: str) -> str:
    with c.db.read() as conn:
        return str(conn.execute(sa.select(tracks.c.album_id).where(tracks.c.id == track_id)).scalar_one())


def uploaded(
    client: TestClient, c: Container, tmp_path: Path, headers: dict[str, str], *, seconds: float = 3.0
) -> str:
    """A real track uploaded by whoever `headers` is (private), transcoded and ready."""
    src = make_tone(
        tmp_path / f"up-{new_id()[:6]}.flac", seconds=seconds, freq=next(_FREQS), tags={"title": "Buy Now"}
    )
    up = upload(client, headers, src).json()
    drain(c)
    done = client.get(f"/v1/me/uploads/{up['id']}", headers=headers).json()
    assert done["status"] == "ready", done
    return str(done["track"]["id"])


def grant(client: TestClient, track_id: str, headers: dict[str, str], expect: int = 200) -> dict[str, Any]:
    r = client.get(f"/v1/tracks/{track_id}/playback", headers=headers)
    assert r.status_code == expect, r.text
    body: dict[str, Any] = r.json()
    return body


def play(client: TestClient, headers: dict[str, str], track_ids: list[str]) -> None:
    r = client.put(
        "/v1/me/player/play", headers=headers, json={"uris": [f"tonearm:track:{t}" for t in track_ids]}
    )
    assert r.status_code == 204, r.text


def skip_event(event_id: str, track_id: str, at: dt.datetime) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "skip",
        "track_id": track_id,
        "playback_id": f"pb-{event_id}",
        "timestamp": at.isoformat(),
        "position_ms": 5000,
    }
