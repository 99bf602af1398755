"""Playlists through the API, on SQLite and PostgreSQL: Spotify's shapes, adding at a position,
reordering, removing by URI and by position, snapshots that detect conflicting edits, the 10,000
track limit, who may see and edit what, bad input, and covers (uploaded, or a mosaic of albums)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from PIL import Image

from tonearm import media
from tonearm.bootstrap import Container
from tonearm.domains.catalog.tables import albums, tracks
from tonearm.domains.library.playlists import MAX_TRACKS
from tonearm.domains.library.tables import playlist_entries

from .conftest import sign_up_and_login
from .test_catalog import PAGING, TRACK_FIELDS
from .test_search_api import Seeded, seed

PLAYLIST_FIELDS = {
    "collaborative", "description", "external_urls", "href", "id", "images", "name", "owner",
    "public", "snapshot_id", "tracks", "type", "uri",
}  # fmt: skip
ITEM_FIELDS = {"added_at", "added_by", "is_local", "track"}


def turi(track_id: str) -> str:
    return f"tonearm:track:{track_id}"


def create(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    r = client.post("/v1/me/playlists", json={"name": "Mix", **body}, headers=headers)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def order(client: TestClient, playlist_id: str, headers: dict[str, str] | None = None) -> list[str | None]:
    """Every item's track id (None where the viewer cannot see it), page by page."""
    out: list[str | None] = []
    url: str | None = f"/v1/playlists/{playlist_id}/tracks?limit=100"
    while url:
        r = client.get(url, headers=headers or {})
        assert r.status_code == 200, r.text
        body = r.json()
        out += [i["track"]["id"] if i["track"] else None for i in body["items"]]
        url = body["next"].removeprefix("http://testserver") if body["next"] else None
    return out


def snapshot(client: TestClient, playlist_id: str, headers: dict[str, str]) -> str:
    return str(client.get(f"/v1/playlists/{playlist_id}", headers=headers).json()["snapshot_id"])


def test_create_read_list_and_change_details(client: TestClient, container: Container) -> None:
    ada = sign_up_and_login(client)
    h = ada["headers"]
    r = client.post(f"/v1/users/{ada['user_id']}/playlists", json={"name": "Road Trip"}, headers=h)
    assert r.status_code == 201, r.text
    pl = r.json()
    assert set(pl) == PLAYLIST_FIELDS
    assert pl["name"] == "Road Trip" and pl["public"] is True and pl["collaborative"] is False
    assert pl["type"] == "playlist" and pl["uri"] == f"tonearm:playlist:{pl['id']}" and pl["images"] == []
    assert pl["owner"] == {
        "display_name": "Ada",
        "external_urls": {"tonearm": f"http://testserver/user/{ada['user_id']}"},
        "href": f"http://testserver/v1/users/{ada['user_id']}",
        "id": ada["user_id"],
        "type": "user",
        "uri": f"tonearm:user:{ada['user_id']}",
    }
    assert set(pl["tracks"]) == PAGING and pl["tracks"]["total"] == 0 and pl["tracks"]["limit"] == 100
    assert pl["snapshot_id"] and not pl["snapshot_id"].isdigit()  # opaque, not a bare version

    second = create(client, h, name="Private", public=False, description="just me")
    assert second["public"] is False and second["description"] == "just me"
    mine = client.get("/v1/me/playlists", headers=h).json()
    assert set(mine) == PAGING and mine["total"] == 2
    assert [p["name"] for p in mine["items"]] == ["Private", "Road Trip"]  # newest first
    assert mine["items"][0]["tracks"] == {
        "href": f"http://testserver/v1/playlists/{second['id']}/tracks",
        "total": 0,
    }
    assert client.get(f"/v1/users/{ada['user_id']}/playlists", headers=h).json()["total"] == 2

    r = client.put(
        f"/v1/playlists/{pl['id']}",
        json={"name": "Road Trip 2", "description": "summer", "public": False},
        headers=h,
    )
    assert r.status_code == 200, r.text
    got = client.get(f"/v1/playlists/{pl['id']}", headers=h).json()
    assert (got["name"], got["description"], got["public"]) == ("Road Trip 2", "summer", False)
    assert got["snapshot_id"] != pl["snapshot_id"]  # every edit makes a new snapshot
    client.put(f"/v1/playlists/{pl['id']}", json={"collaborative": True}, headers=h)
    assert client.get(f"/v1/playlists/{pl['id']}", headers=h).json()["collaborative"] is True
    r = client.put(f"/v1/playlists/{pl['id']}", json={"public": True}, headers=h)
    assert r.status_code == 400 and "collaborative playlist cannot be public" in r.json()["error"]["message"]

    # Someone else: only public playlists, and no creating in another user's name.
    bob = sign_up_and_login(client, "bob@example.com")
    theirs = client.get(f"/v1/users/{ada['user_id']}/playlists", headers=bob["headers"]).json()
    assert theirs["total"] == 0  # both of Ada's are private now
    r = client.post(f"/v1/users/{ada['user_id']}/playlists", json={"name": "x"}, headers=bob["headers"])
    assert (
        r.status_code == 403 and r.json()["error"]["message"] == "you can only create playlists for yourself"
    )


def test_add_at_a_position_reorder_and_remove(client: TestClient, container: Container) -> None:
    ada = sign_up_and_login(client)
    h = ada["headers"]
    t = list(seed(container).tracks.values())[:8]
    pl = create(client, h)
    pid = pl["id"]
    r = client.post(f"/v1/playlists/{pid}/tracks", json={"uris": [turi(x) for x in t[:4]]}, headers=h)
    assert r.status_code == 201 and set(r.json()) == {"snapshot_id"}
    first = r.json()["snapshot_id"]
    assert first != pl["snapshot_id"]
    # At a position (query parameter, body and spotipy's bare list), duplicates allowed.
    assert (
        client.post(f"/v1/playlists/{pid}/tracks?uris={turi(t[4])}&position=0", headers=h).status_code == 201
    )
    body = {"uris": [turi(t[5]), f"spotify:track:{t[0]}"], "position": 2}
    assert client.post(f"/v1/playlists/{pid}/items", json=body, headers=h).status_code == 201
    assert (
        client.post(f"/v1/playlists/{pid}/items?position=7", json=[turi(t[6])], headers=h).status_code == 201
    )
    model = [t[4], t[0], t[5], t[0], t[1], t[2], t[3], t[6]]
    assert order(client, pid, h) == model

    page = client.get(f"/v1/playlists/{pid}/items?limit=3&offset=2", headers=h).json()
    assert set(page) == PAGING and page["total"] == 8 and page["limit"] == 3
    assert page["href"] == f"http://testserver/v1/playlists/{pid}/items?offset=2&limit=3"
    item = page["items"][0]
    assert set(item) == ITEM_FIELDS and item["is_local"] is False and item["added_at"].endswith("Z")
    assert set(item["track"]) == TRACK_FIELDS
    assert item["added_by"]["id"] == ada["user_id"] and item["added_by"]["type"] == "user"

    def move(start: int, before: int, length: int = 1) -> None:
        body = {"range_start": start, "insert_before": before, "range_length": length}
        r = client.put(f"/v1/playlists/{pid}/tracks", json=body, headers=h)
        assert r.status_code == 200, r.text
        moved = model[start : start + length]
        rest = model[:start] + model[start + length :]
        at = before if before <= start else before - length
        model[:] = rest[:at] + moved + rest[at:]

    move(0, 8)  # the first to the end
    move(5, 1, 3)  # a range towards the start
    move(1, 6, 2)  # and back towards the end
    move(3, 3)  # before itself: stays put
    move(2, 3)  # just after itself: stays put
    assert order(client, pid, h) == model

    # Remove: every occurrence by URI, or exactly the positions given.
    r = client.request(
        "DELETE", f"/v1/playlists/{pid}/tracks", json={"tracks": [{"uri": turi(t[0])}]}, headers=h
    )
    assert r.status_code == 200, r.text
    model = [x for x in model if x != t[0]]
    assert order(client, pid, h) == model
    body = {
        "items": [
            {"uri": f"spotify:track:{model[1]}", "positions": [1]},
            {"uri": turi(model[4]), "positions": [4]},
        ]
    }
    assert client.request("DELETE", f"/v1/playlists/{pid}/items", json=body, headers=h).status_code == 200
    del model[4], model[1]
    assert order(client, pid, h) == model
    wrong = {"tracks": [{"uri": turi(model[0]), "positions": [1]}]}
    r = client.request("DELETE", f"/v1/playlists/{pid}/tracks", json=wrong, headers=h)
    assert (
        r.status_code == 400 and f"position 1 does not hold {turi(model[0])}" in r.json()["error"]["message"]
    )
    assert order(client, pid, h) == model  # nothing removed

    # Replace everything, then empty it.
    r = client.put(f"/v1/playlists/{pid}/tracks", json={"uris": [turi(t[7]), turi(t[7])]}, headers=h)
    assert r.status_code == 200
    assert order(client, pid, h) == [t[7], t[7]]
    assert client.put(f"/v1/playlists/{pid}/items", json={"uris": []}, headers=h).status_code == 200
    assert order(client, pid, h) == []


def test_a_stale_snapshot_is_a_conflict(client: TestClient, container: Container) -> None:
    ada = sign_up_and_login(client)
    h = ada["headers"]
    t = list(seed(container).tracks.values())[:3]
    pid = create(client, h)["id"]
    old = client.post(f"/v1/playlists/{pid}/tracks", json={"uris": [turi(x) for x in t]}, headers=h).json()
    # Another device edits first.
    new = client.put(f"/v1/playlists/{pid}/tracks", json={"range_start": 0, "insert_before": 3}, headers=h)
    stale = old["snapshot_id"]
    for method, path, body in (
        ("PUT", "tracks", {"range_start": 0, "insert_before": 2, "snapshot_id": stale}),
        ("DELETE", "tracks", {"tracks": [{"uri": turi(t[1]), "positions": [0]}], "snapshot_id": stale}),
        ("PUT", "items", {"uris": [turi(t[0])], "snapshot_id": stale}),
    ):
        r = client.request(method, f"/v1/playlists/{pid}/{path}", json=body, headers=h)
        assert r.status_code == 409, r.text
        assert r.json()["error"] == {
            "status": 409,
            "message": "snapshot_id: the playlist has changed since that snapshot (another edit came first); "
            "reload it and apply your change to its current snapshot_id",
        }
    assert order(client, pid, h) == [t[1], t[2], t[0]]  # none of them applied
    current = new.json()["snapshot_id"]
    assert snapshot(client, pid, h) == current
    body = {"range_start": 0, "insert_before": 2, "snapshot_id": current}
    assert client.put(f"/v1/playlists/{pid}/tracks", json=body, headers=h).status_code == 200
    assert order(client, pid, h) == [t[2], t[1], t[0]]
    other = create(client, h, name="Other")
    for bad, message in (
        ("not-a-snapshot!", "is not a snapshot id of this server"),
        (other["snapshot_id"], "a snapshot of another playlist"),
    ):
        body = {"range_start": 0, "insert_before": 2, "snapshot_id": bad}
        r = client.put(f"/v1/playlists/{pid}/tracks", json=body, headers=h)
        assert r.status_code == 400 and message in r.json()["error"]["message"]


@contextmanager
def rows_written(container: Container) -> Iterator[list[int]]:
    """Counts the playlist_entries rows each INSERT/UPDATE/DELETE writes (executemany: one per
    parameter set), for as long as the block runs."""
    counts: list[int] = []

    def after(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        head = statement.lstrip().split("(")[0].upper()
        if "PLAYLIST_ENTRIES" in head and head.startswith(("INSERT", "UPDATE", "DELETE")):
            counts.append(len(params) if executemany else cursor.rowcount)

    sa.event.listen(container.db.engine, "after_cursor_execute", after)
    try:
        yield counts
    finally:
        sa.event.remove(container.db.engine, "after_cursor_execute", after)


def test_ten_thousand_tracks_and_no_more(client: TestClient, container: Container) -> None:
    ada = sign_up_and_login(client)
    h = ada["headers"]
    t = list(seed(container).tracks.values())
    pid = create(client, h)["id"]
    # The service takes large batches (the API 100 per call): a playlist of repeated tracks.
    container.playlists.add(ada["user_id"], pid, [t[n % 20] for n in range(MAX_TRACKS - 50)])
    r = client.post(f"/v1/playlists/{pid}/tracks", json={"uris": [turi(t[0])] * 51}, headers=h)
    assert r.status_code == 400
    assert r.json()["error"]["message"] == (
        "uris: a playlist holds at most 10000 tracks; this one has 9950, so 50 more fit, not 51"
    )
    assert client.get(f"/v1/playlists/{pid}", headers=h).json()["tracks"]["total"] == 9950  # all or nothing
    assert (
        client.post(f"/v1/playlists/{pid}/tracks", json={"uris": [turi(t[21])] * 50}, headers=h).status_code
        == 201
    )
    r = client.post(f"/v1/playlists/{pid}/tracks?uris={turi(t[0])}", headers=h)
    assert r.status_code == 400 and "this one has 10000, so 0 more fit, not 1" in r.json()["error"]["message"]

    last = client.get(f"/v1/playlists/{pid}/tracks?offset=9990&limit=100", headers=h).json()
    assert last["total"] == MAX_TRACKS and len(last["items"]) == 10 and last["next"] is None
    assert {i["track"]["id"] for i in last["items"]} == {t[21]}

    # A move in a full playlist writes the moved rows and no others; an insert one row.
    with rows_written(container) as counts:
        body = {"range_start": 9990, "insert_before": 17, "range_length": 3}
        assert client.put(f"/v1/playlists/{pid}/tracks", json=body, headers=h).status_code == 200
    assert sum(counts) == 3
    page = client.get(f"/v1/playlists/{pid}/tracks?offset=16&limit=5", headers=h).json()["items"]
    assert [i["track"]["id"] for i in page] == [t[16], t[21], t[21], t[21], t[17]]
    client.request(
        "DELETE",
        f"/v1/playlists/{pid}/tracks",
        json={"tracks": [{"uri": turi(t[3]), "positions": [3]}]},
        headers=h,
    )
    with rows_written(container) as counts:
        assert (
            client.post(f"/v1/playlists/{pid}/tracks?uris={turi(t[5])}&position=5000", headers=h).status_code
            == 201
        )
    assert sum(counts) == 1
    assert (
        client.get(f"/v1/playlists/{pid}/tracks?offset=5000&limit=1", headers=h).json()["items"][0]["track"][
            "id"
        ]
        == t[5]
    )


def test_keys_renumber_when_they_grow_long(client: TestClient, container: Container) -> None:
    """Inserting again and again at the same spot lengthens keys; past 48 characters the playlist
    is renumbered in one batch and its order is unchanged."""
    ada = sign_up_and_login(client)
    t = list(seed(container).tracks.values())
    pid = create(client, ada["headers"])["id"]
    svc = container.playlists
    svc.add(ada["user_id"], pid, [t[0], t[1]])
    model = [t[0], t[1]]
    longest = 0
    for n in range(400):
        svc.add(ada["user_id"], pid, [t[2 + n % 30]], position=1)
        model.insert(1, t[2 + n % 30])
        with container.db.read() as conn:
            keys = (
                conn.execute(
                    sa.select(playlist_entries.c.position_key).where(playlist_entries.c.playlist_id == pid)
                )
                .scalars()
                .all()
            )
        longest = max(longest, *map(len, keys))
        assert max(map(len, keys)) <= 48
    assert longest > 40  # it did grow, and was renumbered (400 inserts would reach ~80 otherwise)
    assert order(client, pid, ada["headers"]) == model


def test_a_private_playlist_does_not_exist_for_others(client: TestClient, container: Container) -> None:
    ada = sign_up_and_login(client)
    bob = sign_up_and_login(client, "bob@example.com")
    t = list(seed(container).tracks.values())
    secret = create(client, ada["headers"], name="Secret", public=False)["id"]
    open_ = create(client, ada["headers"], name="Open")["id"]
    client.post(f"/v1/playlists/{secret}/tracks?uris={turi(t[0])}", headers=ada["headers"])
    missing = {"status": 404, "message": f"playlist {secret} not found"}
    for method, path, body in (
        ("GET", "", None),
        ("GET", "/tracks", None),
        ("GET", "/items", None),
        ("GET", "/images", None),
        ("PUT", "", {"name": "mine now"}),
        ("POST", "/tracks", {"uris": [turi(t[1])]}),
        ("PUT", "/tracks", {"range_start": 0, "insert_before": 1}),
        ("DELETE", "/tracks", {"tracks": [{"uri": turi(t[0])}]}),
        ("POST", "/collaborators", {"user_id": bob["user_id"]}),
    ):
        for headers in (bob["headers"], {}):
            r = client.request(method, f"/v1/playlists/{secret}{path}", json=body, headers=headers)
            if method == "GET" or headers:
                assert (r.status_code, r.json()["error"]) == (404, missing), (method, path, r.text)
            else:
                assert r.status_code == 401  # edits need a listener first
    r = client.put(f"/v1/playlists/{secret}/images", content=b"aGVsbG8=", headers=bob["headers"])
    assert r.status_code == 404
    assert client.get(f"/v1/playlists/{open_}").status_code == 200  # public: anyone, even anonymous
    listed = client.get(f"/v1/users/{ada['user_id']}/playlists", headers=bob["headers"]).json()
    assert [p["id"] for p in listed["items"]] == [open_]
    assert [p["id"] for p in client.get(f"/v1/users/{ada['user_id']}/playlists").json()["items"]] == [open_]


def test_only_the_owner_and_collaborators_edit(client: TestClient, container: Container) -> None:
    ada = sign_up_and_login(client)
    bob = sign_up_and_login(client, "bob@example.com")
    cy = sign_up_and_login(client, "cy@example.com")
    t = list(seed(container).tracks.values())
    pid = create(client, ada["headers"])["id"]
    client.post(f"/v1/playlists/{pid}/tracks?uris={turi(t[0])},{turi(t[1])}", headers=ada["headers"])

    # Bob sees the public playlist but may not change it.
    tracks_only = "only the playlist's owner and its collaborators can change its tracks"
    owner_only = "only the playlist's owner can change its details, cover and collaborators"
    for method, path, body, message in (
        ("POST", "/tracks", {"uris": [turi(t[2])]}, tracks_only),
        ("PUT", "/tracks", {"range_start": 0, "insert_before": 2}, tracks_only),
        ("DELETE", "/tracks", {"tracks": [{"uri": turi(t[0])}]}, tracks_only),
        ("PUT", "", {"name": "Bob's"}, owner_only),
        ("POST", "/collaborators", {"user_id": bob["user_id"]}, owner_only),
    ):
        r = client.request(method, f"/v1/playlists/{pid}{path}", json=body, headers=bob["headers"])
        assert (r.status_code, r.json()["error"]["message"]) == (403, message), (method, path)

    # Collaborators belong to collaborative (so private) playlists.
    r = client.post(
        f"/v1/playlists/{pid}/collaborators", json={"user_id": bob["user_id"]}, headers=ada["headers"]
    )
    assert r.status_code == 400 and "only a collaborative playlist has collaborators" in r.text
    body = {"collaborative": True, "public": False}
    assert client.put(f"/v1/playlists/{pid}", json=body, headers=ada["headers"]).status_code == 200
    for user in (bob, bob):  # twice: no error
        r = client.post(
            f"/v1/playlists/{pid}/collaborators", json={"user_id": user["user_id"]}, headers=ada["headers"]
        )
        assert r.status_code == 200, r.text
    r = client.post(f"/v1/playlists/{pid}/collaborators", json={"user_id": "0" * 22}, headers=ada["headers"])
    assert r.status_code == 404
    collaborators = client.get(f"/v1/playlists/{pid}/collaborators", headers=bob["headers"]).json()
    assert [u["id"] for u in collaborators] == [bob["user_id"]] and collaborators[0]["display_name"] == "Ada"

    # Bob now sees it (private), lists it among his own, and edits its tracks, not its details.
    assert client.get(f"/v1/playlists/{pid}", headers=bob["headers"]).status_code == 200
    assert [p["id"] for p in client.get("/v1/me/playlists", headers=bob["headers"]).json()["items"]] == [pid]
    r = client.post(f"/v1/playlists/{pid}/tracks?uris={turi(t[2])}&position=0", headers=bob["headers"])
    assert r.status_code == 201
    body = {"range_start": 0, "insert_before": 3}
    assert client.put(f"/v1/playlists/{pid}/tracks", json=body, headers=bob["headers"]).status_code == 200
    items = client.get(f"/v1/playlists/{pid}/tracks", headers=bob["headers"]).json()["items"]
    assert [i["track"]["id"] for i in items] == [t[0], t[1], t[2]]
    assert items[2]["added_by"]["id"] == bob["user_id"]
    r = client.put(f"/v1/playlists/{pid}", json={"name": "Bob's"}, headers=bob["headers"])
    assert (r.status_code, r.json()["error"]["message"]) == (403, owner_only)
    assert client.get(f"/v1/playlists/{pid}", headers=cy["headers"]).status_code == 404  # still private

    # Removed (or the playlist no longer collaborative): back to nothing.
    assert (
        client.delete(
            f"/v1/playlists/{pid}/collaborators/{bob['user_id']}", headers=ada["headers"]
        ).status_code
        == 200
    )
    assert client.get(f"/v1/playlists/{pid}", headers=bob["headers"]).status_code == 404
    client.post(f"/v1/playlists/{pid}/collaborators", json={"user_id": cy["user_id"]}, headers=ada["headers"])
    client.put(f"/v1/playlists/{pid}", json={"collaborative": False}, headers=ada["headers"])
    assert client.get(f"/v1/playlists/{pid}/collaborators", headers=ada["headers"]).json() == []
    assert client.get(f"/v1/playlists/{pid}", headers=cy["headers"]).status_code == 404


def test_bad_input_is_a_clear_error(client: TestClient, container: Container) -> None:
    ada = sign_up_and_login(client)
    h = ada["headers"]
    seeded: Seeded = seed(container, private_owner=ada["user_id"])
    t = list(seeded.tracks.values())
    pid = create(client, h)["id"]
    client.post(f"/v1/playlists/{pid}/tracks", json={"uris": [turi(x) for x in t[:5]]}, headers=h)
    bob = sign_up_and_login(client, "bob@example.com")
    bobs = create(client, bob["headers"])["id"]
    secret = seeded.tracks["Secret Demo"]
    tracks_url = f"/v1/playlists/{pid}/tracks"
    cases = [
        ("POST", "/v1/me/playlists", {}, 400, "name: Field required"),
        ("POST", "/v1/me/playlists", {"name": ""}, 400, "name: must be 1 to 200 characters"),
        ("POST", "/v1/me/playlists", {"name": "x" * 201}, 400, "name: must be 1 to 200 characters"),
        ("POST", "/v1/me/playlists", {"name": "x", "description": "d" * 301}, 400, "at most 300"),
        ("POST", "/v1/me/playlists", {"name": "x", "collaborative": True}, 400, "cannot be public"),
        ("GET", "/v1/playlists/nope", None, 400, "invalid playlist id 'nope'"),
        ("GET", f"/v1/playlists/{'0' * 22}", None, 404, f"playlist {'0' * 22} not found"),
        ("GET", f"{tracks_url}?limit=101", None, 400, "limit: must be between 1 and 100"),
        ("GET", f"{tracks_url}?offset=x", None, 400, "offset: must be an integer"),
        ("GET", f"/v1/playlists/{pid}/items?limit=0", None, 400, "limit: must be between 1 and 100"),
        ("GET", "/v1/users/nobody/playlists", None, 400, "invalid user id 'nobody'"),
        ("GET", f"/v1/users/{'0' * 22}/playlists", None, 404, "not found"),
        ("POST", tracks_url, None, 400, "uris: give between 1 and 100 track URIs"),
        ("POST", tracks_url, {"uris": []}, 400, "uris: give between 1 and 100 track URIs, not 0"),
        ("POST", tracks_url, {"uris": [turi(t[0])] * 101}, 400, "not 101"),
        ("POST", tracks_url, {"uris": [f"tonearm:album:{t[0]}"]}, 400, "'album' items cannot be in"),
        ("POST", tracks_url, {"uris": [t[0]]}, 400, "is not a URI like tonearm:track:<id>"),
        ("POST", tracks_url, {"uris": ["tonearm:track:short"]}, 400, "invalid track id 'short'"),
        ("POST", tracks_url, {"uris": [1, 2]}, 400, "every item must be a URI string"),
        ("POST", tracks_url, {"uris": [turi("0" * 22)]}, 404, f"track {'0' * 22} not found"),
        ("POST", tracks_url, {"uris": [turi(t[0])], "position": 6}, 400, "position: must be between 0 and 5"),
        ("POST", f"{tracks_url}?position=-1", {"uris": [turi(t[0])]}, 400, "position: must be between 0"),
        ("POST", tracks_url, {"uris": [turi(t[0])], "position": "1"}, 400, "position: must be an integer"),
        ("POST", tracks_url, "just text", 400, "body: expected"),
        ("PUT", tracks_url, {"range_start": 4, "insert_before": 0, "range_length": 2}, 400,
         "items 4 to 5 are not all in the playlist (it has 5 items, positions 0 to 4)"),
        ("PUT", tracks_url, {"range_start": 5, "insert_before": 0}, 400, "items 5 to 5 are not all"),
        ("PUT", tracks_url, {"range_start": 0, "insert_before": 6}, 400, "insert_before: must be between 0"),
        ("PUT", tracks_url, {"range_start": 0, "insert_before": 2, "range_length": 0}, 400, "at least 1"),
        ("PUT", tracks_url, {"range_start": 0}, 400, "range_start and insert_before: both are needed"),
        ("PUT", tracks_url, {"range_start": 0, "insert_before": 1, "uris": []}, 400, "give either uris"),
        ("DELETE", tracks_url, {"tracks": [{"uri": turi(t[0]), "positions": [0, 0]}]}, 400,
         "position 0 is given more than once"),
        ("DELETE", tracks_url, {"tracks": [{"uri": turi(t[0]), "positions": [0]},
                                           {"uri": turi(t[1]), "positions": [0]}]},
         400, "position 0 is given more than once"),
        ("DELETE", tracks_url, {"tracks": [{"uri": turi(t[0]), "positions": [5]}]}, 400,
         "5 is not a position in the playlist"),
        ("DELETE", tracks_url, {"tracks": []}, 400, "give between 1 and 100 tracks to remove, not 0"),
        ("DELETE", tracks_url, {}, 400, '"tracks"'),
        ("DELETE", tracks_url, {"tracks": [{"uri": "spotify:episode:" + t[0]}]}, 400, "'episode' items"),
        ("PUT", f"/v1/playlists/{pid}/images", "", 400, "the body is empty"),
    ]  # fmt: skip
    for method, url, body, status, message in cases:
        kw: dict[str, Any] = {"content": body} if isinstance(body, str) else {"json": body}
        r = client.request(method, url, headers=h, **kw)
        assert r.status_code == status, (method, url, body, r.status_code, r.text)
        err = r.json()["error"]
        assert err["status"] == status and message in err["message"], (url, body, err)
    # A track only its (other) owner may see is as good as missing, in your own playlist or not.
    r = client.post(f"/v1/playlists/{bobs}/tracks", json={"uris": [turi(secret)]}, headers=bob["headers"])
    assert r.status_code == 404 and r.json()["error"]["message"] == f"track {secret} not found"
    assert (
        client.post(f"/v1/playlists/{pid}/tracks", json={"uris": [turi(secret)]}, headers=h).status_code
        == 201
    )
    assert client.get("/v1/me/playlists").status_code == 401


def test_an_unavailable_track_stays_as_null(client: TestClient, container: Container) -> None:
    ada = sign_up_and_login(client)
    bob = sign_up_and_login(client, "bob@example.com")
    ids = seed(container, private_owner=ada["user_id"]).tracks
    pid = create(client, ada["headers"])["id"]
    uris = [turi(ids["Eple"]), turi(ids["Secret Demo"]), turi(ids["Yesterday"])]
    client.post(f"/v1/playlists/{pid}/tracks", json={"uris": uris}, headers=ada["headers"])
    assert order(client, pid, ada["headers"]) == [ids["Eple"], ids["Secret Demo"], ids["Yesterday"]]
    assert order(client, pid, bob["headers"]) == [ids["Eple"], None, ids["Yesterday"]]  # Ada's private upload
    with container.db.write() as conn:
        conn.execute(sa.update(tracks).where(tracks.c.id == ids["Eple"]).values(visibility="private"))
    container.catalog.invalidate_track(ids["Eple"])
    assert order(client, pid, bob["headers"]) == [None, None, ids["Yesterday"]]
    first = client.get(f"/v1/playlists/{pid}/tracks", headers=bob["headers"]).json()["items"][0]
    assert first["track"] is None and first["added_by"]["id"] == ada["user_id"]
    # Positions stay what the owner sees: a reorder by position still means the same items.
    body = {"range_start": 2, "insert_before": 0}
    assert client.put(f"/v1/playlists/{pid}/tracks", json=body, headers=ada["headers"]).status_code == 200
    assert order(client, pid, bob["headers"]) == [ids["Yesterday"], None, None]


# Covers ---------------------------------------------------------------------------------------
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220), "yellow": (230, 220, 30)}


def jpeg(colour: tuple[int, int, int], size: int = 200) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(out, format="JPEG", quality=90)
    return out.getvalue()


def huge_png() -> bytes:
    out = io.BytesIO()
    Image.new("1", (4200, 4200), 0).save(out, format="PNG", optimize=True)
    return out.getvalue()


def paint(container: Container, album_ids: list[str], colours: list[tuple[int, int, int]]) -> None:
    """Gives albums real single-colour covers (the seeded ones have no bytes behind them)."""
    now = dt.datetime.now(dt.UTC)
    with container.db.write() as conn:
        for album_id, colour in zip(album_ids, colours, strict=True):
            data = jpeg(colour)
            image_id = container.ingest.store_image(
                conn, "embedded", media.make_thumbnails(data), hashlib.sha256(data).hexdigest(), now
            )
            conn.execute(sa.update(albums).where(albums.c.id == album_id).values(image_id=image_id))


def cover(client: TestClient, playlist_id: str, headers: dict[str, str]) -> Image.Image:
    imgs = client.get(f"/v1/playlists/{playlist_id}/images", headers=headers).json()
    assert [(i["width"], i["height"]) for i in imgs] == [(640, 640), (300, 300), (64, 64)]
    r = client.get(imgs[0]["url"].removeprefix("http://testserver"))
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    return Image.open(io.BytesIO(r.content)).convert("RGB")


def near(pixel: Any, colour: tuple[int, int, int]) -> bool:
    return all(abs(a - b) < 40 for a, b in zip(pixel, colour, strict=True))


def test_mosaic_of_the_first_four_album_covers(client: TestClient, container: Container) -> None:
    ada = sign_up_and_login(client)
    h = ada["headers"]
    seeded = seed(container)
    names = ["A Night at the Opera", "Thirteen Tales", "Melody A.M.", "Help!", "Storyteller"]
    paint(container, [seeded.albums[n] for n in names], [*COLOURS.values(), (250, 250, 250)])
    opera = seeded.tracks["Bohemian Rhapsody"], seeded.tracks["Love of My Life"]  # one album, twice
    others = [seeded.tracks[n] for n in ("Bohemian Like You", "Eple", "Yesterday", "100% Pure Love")]
    pid = create(client, h)["id"]
    assert client.get(f"/v1/playlists/{pid}/images", headers=h).json() == []  # empty: no cover

    client.post(f"/v1/playlists/{pid}/tracks?uris={turi(opera[0])},{turi(opera[1])}", headers=h)
    single = cover(client, pid, h)  # fewer than four albums: the first cover alone
    assert near(single.getpixel((320, 320)), COLOURS["red"])

    client.post(f"/v1/playlists/{pid}/tracks", json={"uris": [turi(x) for x in others]}, headers=h)
    mosaic = cover(client, pid, h)  # the first four distinct albums, 2x2
    quadrants = [(160, 160), (480, 160), (160, 480), (480, 480)]
    assert [near(mosaic.getpixel(q), c) for q, c in zip(quadrants, COLOURS.values(), strict=True)] == [
        True
    ] * 4

    # A move that changes the first four covers makes a new mosaic; one that does not keeps it.
    body = {"range_start": 5, "insert_before": 0}  # Storyteller (white) to the front
    assert client.put(f"/v1/playlists/{pid}/tracks", json=body, headers=h).status_code == 200
    assert near(cover(client, pid, h).getpixel((160, 160)), (250, 250, 250))
    before = client.get(f"/v1/playlists/{pid}/images", headers=h).json()
    body = {"range_start": 1, "insert_before": 3}  # the Opera's two tracks swap places
    assert client.put(f"/v1/playlists/{pid}/tracks", json=body, headers=h).status_code == 200
    assert client.get(f"/v1/playlists/{pid}/images", headers=h).json() == before
    # Another playlist starting with the same albums shares the image.
    twin = create(client, h, name="Twin")["id"]
    same = [i["track"]["id"] for i in client.get(f"/v1/playlists/{pid}/tracks", headers=h).json()["items"]]
    client.post(f"/v1/playlists/{twin}/tracks", json={"uris": [turi(x) for x in same]}, headers=h)
    assert client.get(f"/v1/playlists/{twin}/images", headers=h).json() == before
    # Emptied: no cover.
    client.put(f"/v1/playlists/{twin}/tracks", json={"uris": []}, headers=h)
    assert client.get(f"/v1/playlists/{twin}", headers=h).json()["images"] == []


def test_uploaded_cover(client: TestClient, container: Container) -> None:
    ada = sign_up_and_login(client)
    h = ada["headers"]
    seeded = seed(container)
    paint(container, [seeded.albums["Help!"]], [COLOURS["red"]])
    pid = create(client, h, public=False, collaborative=True)["id"]
    client.post(f"/v1/playlists/{pid}/tracks?uris={turi(seeded.tracks['Yesterday'])}", headers=h)
    assert near(cover(client, pid, h).getpixel((320, 320)), COLOURS["red"])
    before = snapshot(client, pid, h)

    body = base64.b64encode(jpeg(COLOURS["blue"], 500))
    r = client.put(f"/v1/playlists/{pid}/images", content=body, headers=h | {"Content-Type": "image/jpeg"})
    assert r.status_code == 202, r.text
    assert near(cover(client, pid, h).getpixel((320, 320)), COLOURS["blue"])
    assert snapshot(client, pid, h) != before
    # The uploaded cover stays when the tracks change.
    client.post(f"/v1/playlists/{pid}/tracks?uris={turi(seeded.tracks['Eple'])}&position=0", headers=h)
    assert near(cover(client, pid, h).getpixel((320, 320)), COLOURS["blue"])
    playlist_images = client.get(f"/v1/playlists/{pid}", headers=h).json()["images"]
    assert playlist_images == client.get(f"/v1/playlists/{pid}/images", headers=h).json()

    url = f"/v1/playlists/{pid}/images"
    for content, status, message in (
        (base64.b64encode(b"%PDF-1.4 definitely not an image"), 415, "image: not a cover we accept"),
        (b"this is not base64 at all!", 400, "image: the body is not base64"),
        (b"A" * (256 * 1024 + 4), 413, "over the 256 KB limit"),
        (base64.b64encode(huge_png()), 413, "over the 16777216-pixel limit"),  # a few KB, 17.6 Mpx
    ):
        r = client.put(url, content=content, headers=h | {"Content-Type": "image/jpeg"})
        assert r.status_code == status and message in r.json()["error"]["message"], r.text
    # Collaborators edit tracks, not the cover.
    bob = sign_up_and_login(client, "bob@example.com")
    client.post(f"/v1/playlists/{pid}/collaborators", json={"user_id": bob["user_id"]}, headers=h)
    r = client.put(url, content=body, headers=bob["headers"])
    assert r.status_code == 403


@pytest.mark.parametrize("path", ["tracks", "items"])
def test_full_playlist_object_embeds_the_first_hundred_items(
    client: TestClient, container: Container, path: str
) -> None:
    ada = sign_up_and_login(client)
    h = ada["headers"]
    t = list(seed(container).tracks.values())
    pid = create(client, h)["id"]
    container.playlists.add(ada["user_id"], pid, [t[n % 30] for n in range(150)])
    full = client.get(f"/v1/playlists/{pid}").json()
    assert full["tracks"]["total"] == 150 and len(full["tracks"]["items"]) == 100
    assert full["tracks"]["next"] == f"http://testserver/v1/playlists/{pid}/tracks?offset=100&limit=100"
    rest = client.get(f"/v1/playlists/{pid}/{path}?offset=100").json()
    assert [i["track"]["id"] for i in rest["items"]] == [t[n % 30] for n in range(100, 150)]


def test_unfollow_deletes_your_own_playlist_and_lets_a_collaborator_leave(
    client: TestClient, container: Container
) -> None:
    """Spotify's DELETE /v1/playlists/{id}/followers (spotipy's current_user_unfollow_playlist)."""
    ada = sign_up_and_login(client)
    bob = sign_up_and_login(client, "bob@example.com")
    cy = sign_up_and_login(client, "cy@example.com")
    t = list(seed(container).tracks.values())
    shared = create(client, ada["headers"], collaborative=True, public=False)["id"]
    r = client.post(
        f"/v1/playlists/{shared}/collaborators", json={"user_id": bob["user_id"]}, headers=ada["headers"]
    )
    assert r.status_code == 200
    # Bob leaves: the playlist stays, he can no longer see it (it is private).
    assert client.delete(f"/v1/playlists/{shared}/followers", headers=bob["headers"]).status_code == 200
    assert client.get(f"/v1/playlists/{shared}", headers=bob["headers"]).status_code == 404
    assert client.get(f"/v1/playlists/{shared}", headers=ada["headers"]).status_code == 200

    public = create(client, ada["headers"])["id"]
    client.post(f"/v1/playlists/{public}/tracks?uris={turi(t[0])}", headers=ada["headers"])
    r = client.delete(f"/v1/playlists/{public}/followers", headers=cy["headers"])
    assert r.status_code == 400 and "you do not follow this playlist" in r.json()["error"]["message"]
    r = client.delete(f"/v1/playlists/{shared}/followers", headers=cy["headers"])
    assert r.status_code == 404  # private and not Cy's: as if it did not exist
    # Ada deletes hers: gone for everyone, and from her list.
    assert client.delete(f"/v1/playlists/{public}/followers", headers=ada["headers"]).status_code == 200
    assert client.get(f"/v1/playlists/{public}", headers=ada["headers"]).status_code == 404
    assert [p["id"] for p in client.get("/v1/me/playlists", headers=ada["headers"]).json()["items"]] == [
        shared
    ]
    assert client.delete(f"/v1/playlists/{public}/followers", headers=ada["headers"]).status_code == 404


def test_a_move_of_an_item_whose_track_was_deleted_meanwhile_is_a_conflict(
    client: TestClient, container: Container
) -> None:
    """Deleting a track from the catalog takes its playlist entries with it without a new
    snapshot; a move computed on the order before that must not land somewhere else."""
    ada = sign_up_and_login(client)
    t = list(seed(container).tracks.values())[:4]
    pid = create(client, ada["headers"])["id"]
    client.post(f"/v1/playlists/{pid}/tracks", json={"uris": [turi(x) for x in t]}, headers=ada["headers"])
    move = {"range_start": 0, "insert_before": 4}
    assert client.put(f"/v1/playlists/{pid}/tracks", json=move, headers=ada["headers"]).status_code == 200
    assert order(client, pid, ada["headers"]) == [t[1], t[2], t[3], t[0]]
    with container.db.write() as conn:  # the uploader deletes t[1]: its entry goes with it
        conn.execute(sa.delete(tracks).where(tracks.c.id == t[1]))
    r = client.put(f"/v1/playlists/{pid}/tracks", json=move, headers=ada["headers"])
    assert r.status_code == 409 and "reload it and try again" in r.json()["error"]["message"]
    # Tried again on what is there now, [t2, t3, t0], the move works.
    again = {"range_start": 0, "insert_before": 3}
    assert client.put(f"/v1/playlists/{pid}/tracks", json=again, headers=ada["headers"]).status_code == 200
    assert order(client, pid, ada["headers"]) == [t[3], t[0], t[2]]
