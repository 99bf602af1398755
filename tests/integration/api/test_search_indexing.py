"""The search index follows the catalog: uploads, edits, deletes, plays and bulk imports reach it
through the change log, on SQLite and PostgreSQL, with the embedded index a server really uses."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from tests.helpers import make_tone
from tonearm.bootstrap import Container
from tonearm.cli import main as cli
from tonearm.domains.search.query import parse
from tonearm.ports.search import Kind

from .conftest import sign_up_and_login
from .test_ingest import drain, upload

pytestmark = pytest.mark.usefixtures("have_ffmpeg")


def found(c: Container, q: str, kind: Kind = "track", viewer: str | None = None) -> list[str]:
    query = parse(q).for_kind(kind, viewer)
    assert query is not None
    return c.search_index.search(query, limit=20, offset=0).ids


def eventually(
    c: Container, q: str, expected: list[str], kind: Kind = "track", viewer: str | None = None
) -> None:
    """Polls until the index answers `expected` (the indexer runs in a thread, as in a server).
    The generous deadline only stops a broken indexer from hanging the suite; it is no SLA."""
    deadline = time.monotonic() + 20
    while (got := found(c, q, kind, viewer)) != expected:
        assert time.monotonic() < deadline, f"{q!r}: still {got}, expected {expected}"
        c.indexer.poke()
        time.sleep(0.05)


def test_upload_edit_delete_follow_in_search(
    client: TestClient, container: Container, tmp_path: Path
) -> None:
    ada = sign_up_and_login(client)
    bob = sign_up_and_login(client, "bob@example.com")
    src = make_tone(
        tmp_path / "song.ogg",
        tags={"title": "Zyzzyva Nocturne", "artist": "Quokka Ensemble", "genre": "Ambient"},
    )
    up = upload(client, ada["headers"], src, visibility="public").json()
    drain(container)
    track_id = client.get(f"/v1/me/uploads/{up['id']}", headers=ada["headers"]).json()["track"]["id"]

    eventually(container, "zyzzyva nocturne ", [track_id])
    eventually(container, "quokka ", [track_id])
    artist_hits = found(container, "quokka ensemble ", "artist")
    assert len(artist_hits) == 1

    r = client.patch(
        f"/v1/tracks/{track_id}",
        headers=ada["headers"],
        json={"name": "Axolotl Serenade", "genres": ["Dream Pop"], "description": "recorded under water"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Axolotl Serenade"
    eventually(container, "axolotl ", [track_id])
    eventually(container, "track:zyzzyva ", [])  # the old title is gone (the single's album keeps it)
    assert found(container, 'genre:"dream pop"') == [track_id]
    assert found(container, "under water ") == [track_id]  # the description

    # Made private: only Ada finds it, and its artist (with no other public track) too.
    assert (
        client.patch(
            f"/v1/tracks/{track_id}", headers=ada["headers"], json={"visibility": "private"}
        ).status_code
        == 200
    )
    eventually(container, "axolotl ", [])
    assert found(container, "axolotl ", viewer=ada["user_id"]) == [track_id]
    assert found(container, "quokka ", "artist") == []
    assert found(container, "quokka ", "artist", viewer=ada["user_id"]) == artist_hits

    # Bob may neither see nor change it; deleting is the uploader's.
    assert (
        client.patch(f"/v1/tracks/{track_id}", headers=bob["headers"], json={"name": "x"}).status_code == 404
    )
    assert client.delete(f"/v1/tracks/{track_id}", headers=bob["headers"]).status_code == 404
    assert client.delete(f"/v1/tracks/{track_id}", headers=ada["headers"]).status_code == 204
    eventually(container, "axolotl ", [], viewer=ada["user_id"])
    assert found(container, "quokka ", "artist", viewer=ada["user_id"]) == []
    assert client.get(f"/v1/tracks/{track_id}", headers=ada["headers"]).status_code == 404


def test_edit_validation_and_authorization(client: TestClient, container: Container, tmp_path: Path) -> None:
    ada = sign_up_and_login(client)
    bob = sign_up_and_login(client, "bob@example.com")
    src = make_tone(tmp_path / "a.ogg", tags={"title": "Public Thing", "artist": "Ada"})
    up = upload(client, ada["headers"], src, visibility="public").json()
    drain(container)
    track_id = client.get(f"/v1/me/uploads/{up['id']}", headers=ada["headers"]).json()["track"]["id"]

    for body, needle in [
        ({"name": ""}, "name"),
        ({"name": "x" * 501}, "name"),
        ({"visibility": "friends"}, "visibility"),
        ({"owner": "bob"}, "owner"),
        ({"genres": ["g"] * 11}, "genres"),
        ({"genres": ["x" * 81]}, "genres"),
    ]:
        r = client.patch(f"/v1/tracks/{track_id}", headers=ada["headers"], json=body)
        assert r.status_code == 400, (body, r.text)
        assert needle in r.json()["error"]["message"]
    r = client.patch(f"/v1/tracks/{track_id}", headers=bob["headers"], json={"name": "Mine now"})
    assert r.status_code == 403 and "uploaded it" in r.json()["error"]["message"]
    assert client.patch("/v1/tracks/not-an-id!", headers=ada["headers"], json={}).status_code in (400, 404)
    assert client.patch(f"/v1/tracks/{track_id}", json={"name": "anon"}).status_code == 401
    assert client.get(f"/v1/tracks/{track_id}").json()["name"] == "Public Thing"


def test_import_plays_and_reindex(container: Container, tmp_path: Path) -> None:
    music = tmp_path / "music"
    music.mkdir()
    for i, (title, artist) in enumerate(
        [("Lighthouse Keeper", "Harbour Lights"), ("Lighthouse", "Fog Horn")]
    ):
        make_tone(music / f"{i}.ogg", seconds=1, tags={"title": title, "artist": artist, "genre": "Folk"})
    container.importer.run(music, transcode=False, workers=1)

    # A new, empty index over a catalog that has tracks: the indexer fills it first.
    assert container.search_index.applied_seq() == 0
    container.indexer.run_once()
    ids = found(container, "lighthouse ")
    assert len(ids) == 2
    exact = found(container, "lighthouse ")[0]
    keeper = next(i for i in ids if i != exact)

    # Plays move popularity; the index follows through the log.
    with container.db.write() as conn:
        container.catalog.add_plays(conn, {keeper: 50_000_000})
    container.indexer.run_once()
    assert found(container, "lighthouse ")[0] == keeper

    # `tonearm search reindex` rebuilds beside the live index and swaps it in.
    env = {
        "TONEARM_DATA_DIR": str(container.settings.data_dir),
        "TONEARM_DATABASE_URL": container.settings.resolved_database_url,
        "TONEARM_SECRET_KEY": container.settings.secret_key,
        "TONEARM_LOG_JSON": "false",
    }
    result = CliRunner().invoke(cli, ["search", "reindex"], env=env)
    assert result.exit_code == 0, result.output
    assert "indexed" in result.output and "tracks 2" in result.output
    status = CliRunner().invoke(cli, ["search", "status"], env=env)
    assert "tracks: 2" in status.output, status.output
    eventually(container, "harbour ", [keeper])  # this process's index follows the swap
