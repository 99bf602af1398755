"""Public playlists in GET /v1/search and /v1/search/suggest, on SQLite and PostgreSQL, through the
change log and the indexer as a server runs them: found by name (with typos), owner and
description; gone once private or deleted (from the items and the totals); a private playlist is
never found, not even through the database fallback while the index is down."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.helpers import make_settings
from tests.integration.test_search_failover import break_index
from tonearm import migrate
from tonearm.bootstrap import Container, bootstrap
from tonearm.domains.library.tables import playlists
from tonearm.http.app import create_app
from tonearm.kernel.ids import new_id

from .test_playlists import PLAYLIST_FIELDS, turi
from .test_search_api import SEARCH_URL, names, seed

PASSWORD = "correct horse"


@pytest.fixture
def container(tmp_path: Path, db_url: str) -> Iterator[Container]:
    c = bootstrap(make_settings(tmp_path, db_url, search_url=SEARCH_URL))
    yield c
    c.close()


def listener(client: TestClient, email: str, display_name: str) -> dict[str, str]:
    """Signs up and logs in; the bearer header, and the user's id under "id"."""
    r = client.post(
        "/v1/users",
        json={"email": email, "password": PASSWORD, "display_name": display_name, "birth_date": "1990-05-01"},
    )
    assert r.status_code == 201, r.text
    t = client.post("/api/token", data={"grant_type": "password", "username": email, "password": PASSWORD})
    assert t.status_code == 200, t.text
    return {"Authorization": f"Bearer {t.json()['access_token']}", "id": r.json()["id"]}


def auth(user: dict[str, str]) -> dict[str, str]:
    return {"Authorization": user["Authorization"]}


def create(client: TestClient, user: dict[str, str], name: str, **body: Any) -> str:
    r = client.post("/v1/me/playlists", json={"name": name, **body}, headers=auth(user))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def found(
    client: TestClient, q: str, user: dict[str, str] | None = None, **params: Any
) -> tuple[list[str], int, bool]:
    """The playlists' names, their total, and whether the answer came from the database."""
    r = client.get(
        "/v1/search", params={"q": q, "type": "playlist", **params}, headers=auth(user) if user else {}
    )
    assert r.status_code == 200, r.text
    page = r.json()["playlists"]
    return names(page), page["total"], r.headers.get("x-tonearm-search") == "degraded"


def make_playlists(client: TestClient) -> tuple[dict[str, str], dict[str, str], str]:
    """Ada's public "Midnight Motorway Anthems" (returned) and private "Motorway Demos"; Bob's
    private "Motorway Secrets", whose words are all over Ada's public one."""
    ada = listener(client, "ada@example.com", "Ada Lovelace")
    bob = listener(client, "bob@example.com", "Bob Marley")
    public = create(client, ada, "Midnight Motorway Anthems", description="synthwave for long night drives")
    create(client, ada, "Motorway Demos", description="night drives, unfinished", public=False)
    create(
        client, bob, "Motorway Secrets", description="synthwave night drives by Ada Lovelace", public=False
    )
    return ada, bob, public


def test_public_playlists_are_found_and_leave_when_private_or_deleted(
    client: TestClient, container: Container
) -> None:
    tracks = list(seed(container).tracks.values())
    ada, bob, pl = make_playlists(client)
    r = client.post(
        f"/v1/playlists/{pl}/tracks", json={"uris": [turi(t) for t in tracks[:2]]}, headers=auth(ada)
    )
    assert r.status_code == 201, r.text
    assert container.indexer.wait_caught_up()

    # Spotify's simplified playlist object.
    body = client.get("/v1/search", params={"q": "midnight motorway", "type": "playlist,track"}).json()
    assert body["tracks"]["total"] == 0
    page = body["playlists"]
    assert page["total"] == 1 and len(page["items"]) == 1
    item = page["items"][0]
    assert set(item) == PLAYLIST_FIELDS
    assert item["id"] == pl and item["type"] == "playlist" and item["uri"] == f"tonearm:playlist:{pl}"
    assert (
        item["name"] == "Midnight Motorway Anthems"
        and item["description"] == "synthwave for long night drives"
    )
    assert item["public"] is True and item["collaborative"] is False
    assert item["owner"]["id"] == ada["id"] and item["owner"]["display_name"] == "Ada Lovelace"
    assert item["tracks"] == {"href": f"http://testserver/v1/playlists/{pl}/tracks", "total": 2}
    assert item == {**client.get(f"/v1/playlists/{pl}").json(), "tracks": item["tracks"]}

    anthems = ["Midnight Motorway Anthems"]
    for q in (
        "midnight motorway",
        "midnigth motrway anthmes",  # typos in the name, as for track titles
        "midnight mot",  # the word being typed
        "motorway",  # Ada's private "Motorway Demos" and Bob's "Motorway Secrets" are never found
        "synthwave",  # by the description (every word spelled out, the last one a prefix)
        "long night driv",
        "lovelace",  # by the owner's name
        "ada lovleace motorway",
    ):
        for who in (None, ada, bob):  # not even by their owners: search finds public playlists
            assert found(client, q, who)[:2] == (anthems, 1), (q, who)
    assert found(client, "secrets")[:2] == ([], 0)
    assert found(client, "unfinished", ada)[:2] == ([], 0)
    assert found(client, "demos", ada)[:2] == ([], 0)

    # Made private: gone at once from the items and the total (the answer is checked against the
    # tables), and from the index as soon as the indexer has followed.
    r = client.put(f"/v1/playlists/{pl}", json={"public": False}, headers=auth(ada))
    assert r.status_code == 200, r.text
    assert found(client, "midnight motorway")[:2] == ([], 0)
    assert container.indexer.wait_caught_up()
    for q in ("midnight motorway", "motorway", "lovelace", "synthwave"):
        for who in (None, ada, bob):
            assert found(client, q, who)[:2] == ([], 0), (q, who)
            assert found(client, q, who, limit=0)[1] == 0

    # Public again, renamed: found by its new name only.
    r = client.put(
        f"/v1/playlists/{pl}", json={"public": True, "name": "Autobahn Anthems"}, headers=auth(ada)
    )
    assert r.status_code == 200, r.text
    assert container.indexer.wait_caught_up()
    assert found(client, "autobahn")[:2] == (["Autobahn Anthems"], 1)
    assert found(client, "midnight")[:2] == ([], 0)

    # Deleted (Spotify's unfollow by the owner): gone.
    assert client.delete(f"/v1/playlists/{pl}/followers", headers=auth(ada)).status_code == 200
    assert found(client, "autobahn")[:2] == ([], 0)
    assert container.indexer.wait_caught_up()
    assert found(client, "autobahn", limit=0)[1] == 0
    assert container.search_index.count("playlist") == 0


def test_reindex_and_suggestions_include_public_playlists(client: TestClient, container: Container) -> None:
    _, _, pl = make_playlists(client)
    assert container.indexer.wait_caught_up()
    # `tonearm search reindex` rebuilds them too: the public one only.
    assert container.indexer.reindex().documents == 1
    assert container.search_index.count("playlist") == 1
    r = client.get("/v1/search/suggest", params={"q": "motorw"})
    assert r.status_code == 200, r.text
    assert r.json()["suggestions"] == [
        {
            "type": "playlist",
            "id": pl,
            "name": "Midnight Motorway Anthems",
            "uri": f"tonearm:playlist:{pl}",
            "image": None,
            "subtitle": "Ada Lovelace",
        }
    ]


def test_account_deletion_takes_the_playlists_out_of_search(client: TestClient, container: Container) -> None:
    ada, _, _ = make_playlists(client)
    assert container.indexer.wait_caught_up()
    assert found(client, "motorway")[:2] == (["Midnight Motorway Anthems"], 1)
    r = client.request("DELETE", "/v1/me", json={"password": PASSWORD}, headers=auth(ada))
    assert r.status_code == 204, r.text
    assert container.indexer.wait_caught_up()
    assert found(client, "motorway")[:2] == ([], 0)
    assert container.search_index.count("playlist") == 0


def test_the_fallback_finds_public_playlists_only(tmp_path: Path, db_url: str) -> None:
    c = bootstrap(
        make_settings(
            tmp_path, db_url, search_url=SEARCH_URL, search_breaker_failures=1, search_cache_ttl_s=0
        )
    )
    try:
        with TestClient(create_app(c, start_workers=False)) as client:
            ada, bob, pl = make_playlists(client)
            assert c.indexer.wait_caught_up()
            break_index(c)
            anthems = ["Midnight Motorway Anthems"]
            # Spelled-out words and prefixes, in the name, the description or the owner's name.
            for q in ("motorway", "midnight motor", "synthwave", "night drives", "lovelace", "ada motorway"):
                for who in (None, ada, bob):
                    assert found(client, q, who) == (anthems, 1, True), (q, who)
            for q in ("secrets", "demos", "unfinished", "marley"):
                for who in (None, ada, bob):
                    assert found(client, q, who) == ([], 0, True), (q, who)
            # Made private while the index is down: the database no longer finds it either.
            r = client.put(f"/v1/playlists/{pl}", json={"public": False}, headers=auth(ada))
            assert r.status_code == 200, r.text
            for who in (None, ada, bob):
                assert found(client, "motorway", who) == ([], 0, True)
            # Suggestions from the database: no private playlist there either.
            r = client.get("/v1/search/suggest", params={"q": "motorway"}, headers=auth(bob))
            assert r.headers["x-tonearm-search"] == "degraded"
            assert r.json()["suggestions"] == []
    finally:
        c.close()


def test_playlists_made_before_the_upgrade_are_indexed(tmp_path: Path, db_url: str) -> None:
    """Migration 0006 writes a change notice for each public playlist that existed before search
    followed playlists, so that an index already built picks them up without a rebuild."""
    c = bootstrap(make_settings(tmp_path, db_url, search_url=SEARCH_URL))
    try:
        c.indexer.run_once()  # an index that is built (and was never told of playlists)
        migrate.downgrade(db_url, "0005")
        user_id = c.accounts.sign_up("old@example.com", PASSWORD, "Old Timer", None)
        now = dt.datetime.now(dt.UTC)
        with c.db.write() as conn:
            conn.execute(
                sa.insert(playlists),
                [
                    {
                        "id": new_id(),
                        "owner_id": user_id,
                        "name": name,
                        "public": public,
                        "version": 1,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for name, public in (("Old Favourites", True), ("Old Secrets", False))
                ],
            )
        migrate.upgrade(db_url)
        while c.indexer.run_once():
            pass
        assert c.search_index.count("playlist") == 1
        body = c.search.search("old", ["playlist"], limit=10, offset=0, viewer_id=user_id)
        assert names(body["playlists"]) == ["Old Favourites"]
    finally:
        c.close()
