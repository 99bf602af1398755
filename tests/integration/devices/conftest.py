"""Devices and offline downloads: a container with a clock the tests move, an API client, and
tracks written straight into the catalog (10,000 of them in a second)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.helpers import make_settings
from tests.integration.api.conftest import sign_up_and_login
from tests.premium import make_premium
from tonearm.bootstrap import Container, bootstrap
from tonearm.domains.catalog.tables import albums, artists, renditions, tracks
from tonearm.http.app import create_app
from tonearm.kernel.clock import FrozenClock
from tonearm.kernel.ids import new_id


@dataclass
class Env:
    c: Container
    client: TestClient
    clock: FrozenClock

    def listener(self, email: str = "ada@example.com", *, premium: bool = True) -> dict[str, Any]:
        """A signed-up listener (`user_id`, `headers`), on Premium Individual unless told."""
        tok = sign_up_and_login(self.client, email)
        if premium:
            make_premium(self.c, tok["user_id"])
        return tok

    def device(self, tok: dict[str, Any], name: str = "Phone", kind: str = "phone") -> dict[str, Any]:
        r = self.client.post("/v1/me/devices", json={"name": name, "kind": kind}, headers=tok["headers"])
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body


@pytest.fixture
def make_env(tmp_path: Path, db_url: str) -> Iterator[Callable[..., Env]]:
    """`make_env(**settings)`: one container (FrozenClock at the real time) and its client."""
    opened: list[TestClient] = []

    def make(**overrides: Any) -> Env:
        clock = FrozenClock(dt.datetime.now(dt.UTC).replace(microsecond=0))
        c = bootstrap(make_settings(tmp_path, db_url, **overrides), clock=clock)
        client = TestClient(create_app(c, start_workers=False))
        client.__enter__()
        opened.append(client)
        return Env(c, client, clock)

    yield make
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def env(make_env: Callable[..., Env]) -> Env:
    return make_env()


def insert_tracks(
    c: Container,
    n: int,
    *,
    owner: str | None = None,
    visibility: str = "public",
    status: str = "ready",
    rendition: str | None = "aac_320",
    audio: bytes | None = None,
) -> list[str]:
    """`n` tracks written with bulk SQL, each with one rendition row (`audio`, when given, is
    stored as that rendition's bytes so its encrypted file can be made)."""
    now = c.clock.now()
    artist_id, album_id = new_id(), new_id()
    ids = [new_id() for _ in range(n)]
    with c.db.write() as conn:
        conn.execute(
            sa.insert(artists).values(id=artist_id, name="Bulk", name_key=f"bulk {artist_id}", created_at=now)
        )
        conn.execute(
            sa.insert(albums).values(
                id=album_id, name="Bulk", artist_id=artist_id, match_key=f"|{album_id}", created_at=now
            )
        )
        conn.execute(
            sa.insert(tracks),
            [
                {
                    "id": t,
                    "title": f"Track {i}",
                    "album_id": album_id,
                    "duration_ms": 180_000,
                    "status": status,
                    "visibility": visibility,
                    "owner_user_id": owner,
                    "content_hash": f"{t:0>64}",
                    "created_at": now,
                    "updated_at": now,
                }
                for i, t in enumerate(ids)
            ],
        )
        if rendition is not None:
            conn.execute(
                sa.insert(renditions),
                [
                    {
                        "id": new_id(),
                        "track_id": t,
                        "name": rendition,
                        "codec": "aac",
                        "bitrate_kbps": int(rendition.rsplit("_", 1)[1]),
                        "container": "m4a",
                        "content_type": "audio/mp4",
                        "blob_key": f"tracks/{t}/{rendition}.m4a",
                        "size_bytes": len(audio) if audio is not None else 7_000_000,
                        "duration_ms": 180_000,
                        "created_at": now,
                    }
                    for t in ids
                ],
            )
    if audio is not None and rendition is not None:
        for t in ids:
            c.blobs.put_bytes(f"tracks/{t}/{rendition}.m4a", audio)
    return ids
