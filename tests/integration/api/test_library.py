"""Liked tracks and saved albums (`/v1/me/tracks`, `/v1/me/albums`) through the API, on SQLite and
PostgreSQL: Spotify's shapes and paging, idempotent likes, both ways of passing ids, and nobody
reaching another user's private uploads or library."""

from __future__ import annotations

import threading

import sqlalchemy as sa
from fastapi.testclient import TestClient

from tonearm.bootstrap import Container
from tonearm.domains.catalog.tables import tracks
from tonearm.domains.library.tables import track_likes

from .conftest import sign_up_and_login
from .test_search_api import seed


def test_like_list_contains_and_unlike_tracks(client: TestClient, container: Container) -> None:
    ada = sign_up_and_login(client)
    ids = seed(container).tracks
    h = ada["headers"]
    first, second, third = ids["Bohemian Rhapsody"], ids["Yesterday"], ids["Eple"]

    assert client.put(f"/v1/me/tracks?ids={first},{second}", headers=h).status_code == 200
    assert client.put("/v1/me/tracks", json={"ids": [third]}, headers=h).status_code == 200  # body form
    body = client.get("/v1/me/tracks", headers=h).json()
    assert body["total"] == 3 and body["limit"] == 20 and body["offset"] == 0
    assert body["items"][0]["track"]["id"] == third  # newest like first
    assert {i["track"]["id"] for i in body["items"]} == {first, second, third}
    assert all(i["added_at"].endswith("Z") and i["track"]["type"] == "track" for i in body["items"])

    liked_at = {i["track"]["id"]: i["added_at"] for i in body["items"]}
    assert client.put(f"/v1/me/tracks/?ids={first}", headers=h).status_code == 200  # again; spotipy's slash
    again = client.get("/v1/me/tracks", headers=h).json()
    assert {i["track"]["id"]: i["added_at"] for i in again["items"]} == liked_at  # the first added_at stays

    unliked = ids["Don't Stop Me Now"]
    contains = client.get(f"/v1/me/tracks/contains?ids={first},{third},{unliked}", headers=h)
    assert contains.json() == [True, True, False]
    repeated = client.get(f"/v1/me/tracks/contains?ids={unliked},{first},{unliked}", headers=h)
    assert repeated.json() == [False, True, False]  # one answer per id asked, in order

    paged = client.get("/v1/me/tracks?limit=2&offset=1", headers=h).json()
    assert [i["track"]["id"] for i in paged["items"]] == [i["track"]["id"] for i in body["items"][1:3]]
    assert paged["previous"] is not None and paged["next"] is None

    assert client.delete(f"/v1/me/tracks?ids={first}", headers=h).status_code == 200
    assert client.get(f"/v1/me/tracks/contains?ids={first}", headers=h).json() == [False]
    assert client.get("/v1/me/tracks", headers=h).json()["total"] == 2

    # Someone else's library is their own.
    bob = sign_up_and_login(client, "bob@example.com")
    assert client.get("/v1/me/tracks", headers=bob["headers"]).json()["total"] == 0
    assert client.get(f"/v1/me/tracks/contains?ids={second}", headers=bob["headers"]).json() == [False]


def test_a_track_that_becomes_invisible_leaves_the_list(client: TestClient, container: Container) -> None:
    ada = sign_up_and_login(client)
    ids = seed(container).tracks
    h = ada["headers"]
    assert client.put(f"/v1/me/tracks?ids={ids['Eple']},{ids['Yesterday']}", headers=h).status_code == 200
    with container.db.write() as conn:  # its uploader made it private (or it was taken down)
        conn.execute(sa.update(tracks).where(tracks.c.id == ids["Eple"]).values(visibility="private"))
    container.catalog.invalidate_track(ids["Eple"])
    body = client.get("/v1/me/tracks", headers=h).json()
    assert body["total"] == 1 and [i["track"]["id"] for i in body["items"]] == [ids["Yesterday"]]


def test_private_uploads_can_only_be_liked_by_their_owner(client: TestClient, container: Container) -> None:
    ada = sign_up_and_login(client)
    bob = sign_up_and_login(client, "bob@example.com")
    seeded = seed(container, private_owner=ada["user_id"])
    secret = seeded.tracks["Secret Demo"]
    r = client.put(f"/v1/me/tracks?ids={secret}", headers=bob["headers"])
    assert r.status_code == 404 and r.json()["error"]["message"] == f"track {secret} not found"
    assert client.put(f"/v1/me/tracks?ids={secret}", headers=ada["headers"]).status_code == 200
    demos = seeded.albums["Demos"]
    assert client.put(f"/v1/me/albums?ids={demos}", headers=bob["headers"]).status_code == 404
    assert client.put(f"/v1/me/albums?ids={demos}", headers=ada["headers"]).status_code == 200


def test_save_list_contains_and_remove_albums(client: TestClient, container: Container) -> None:
    ada = sign_up_and_login(client)
    albums = seed(container).albums
    h = ada["headers"]
    opera, help_ = albums["A Night at the Opera"], albums["Help!"]
    assert client.put(f"/v1/me/albums?ids={opera}", headers=h).status_code == 200
    assert client.put("/v1/me/albums/", json={"ids": [help_]}, headers=h).status_code == 200
    body = client.get("/v1/me/albums", headers=h).json()
    assert body["total"] == 2 and [i["album"]["id"] for i in body["items"]] == [help_, opera]
    assert body["items"][1]["album"]["name"] == "A Night at the Opera"
    # Full album objects, as Spotify's saved albums: with genres, label and the album's tracks.
    opera_obj = body["items"][1]["album"]
    assert opera_obj == client.get(f"/v1/albums/{opera}", headers=h).json()
    assert [t["name"] for t in opera_obj["tracks"]["items"]] == ["Bohemian Rhapsody", "Love of My Life"]
    assert opera_obj["genres"] == ["Rock"]
    assert client.get(f"/v1/me/albums/contains?ids={opera},{albums['Jazz']}", headers=h).json() == [
        True,
        False,
    ]
    assert client.request("DELETE", "/v1/me/albums", json={"ids": [opera]}, headers=h).status_code == 200
    assert client.get("/v1/me/albums", headers=h).json()["total"] == 1


def test_bad_input_is_a_clear_error(client: TestClient, container: Container) -> None:
    ada = sign_up_and_login(client)
    ids = seed(container).tracks
    h = ada["headers"]
    cases = [
        ("put", "/v1/me/tracks", None, "ids: give between 1 and 50 track ids"),
        ("put", "/v1/me/tracks?ids=", None, "ids: give between 1 and 50 track ids, not 0"),
        ("put", "/v1/me/tracks?ids=../../etc/passwd", None, "invalid track id '../../etc/passwd'"),
        ("put", "/v1/me/tracks?ids=" + ",".join([ids["Eple"][:-2] + f"{n:02d}" for n in range(51)]), None,
         "not 51"),
        ("put", "/v1/me/tracks", {"ids": "not a list"}, None),
        ("get", "/v1/me/tracks?limit=0", None, "limit: must be between 1 and 50"),
        ("get", "/v1/me/tracks?offset=-1", None, "offset: must not be negative"),
        ("get", "/v1/me/albums/contains", None, "ids: give between 1 and 50 album ids"),
    ]  # fmt: skip
    for method, url, json_body, message in cases:
        r = client.request(method.upper(), url, json=json_body, headers=h)
        assert r.status_code in (400, 422), (url, r.status_code, r.text)
        err = r.json()["error"]
        assert err["status"] == r.status_code
        if message:
            assert message in err["message"], (url, err)
    assert client.put(f"/v1/me/tracks?ids={'0' * 22}", headers=h).status_code == 404  # well-formed, unknown
    assert client.get("/v1/me/tracks").status_code == 401  # a library needs a listener
    assert client.put(f"/v1/me/tracks?ids={ids['Eple']}").status_code == 401


def test_the_library_endpoint_takes_uris_of_either_scheme(client: TestClient, container: Container) -> None:
    """Spotify's `/v1/me/library?uris=` (what spotipy sends): tracks and albums in one call."""
    ada = sign_up_and_login(client)
    seeded = seed(container)
    h = ada["headers"]
    track, album = seeded.tracks["Eple"], seeded.albums["Help!"]
    uris = f"spotify:track:{track},tonearm:album:{album}"
    assert client.put(f"/v1/me/library?uris={uris}", headers=h).status_code == 200
    assert client.get("/v1/me/tracks", headers=h).json()["items"][0]["track"]["id"] == track
    assert client.get("/v1/me/albums", headers=h).json()["items"][0]["album"]["id"] == album
    other = seeded.tracks["Yesterday"]
    check = client.get(f"/v1/me/library/contains?uris={uris},tonearm:track:{other}", headers=h)
    assert check.json() == [True, True, False]
    assert client.delete(f"/v1/me/library?uris=tonearm:track:{track}", headers=h).status_code == 200
    assert client.get(f"/v1/me/library/contains?uris={uris}", headers=h).json() == [False, True]
    for bad, message in (
        (f"tonearm:playlist:{track}", "'playlist' items cannot be saved"),
        (f"track:{track}", "is not a URI like tonearm:track:<id>"),
        ("tonearm:track:nope", "invalid track id 'nope'"),
        ("", "give between 1 and 50 URIs, not 0"),
    ):
        r = client.put(f"/v1/me/library?uris={bad}", headers=h)
        assert r.status_code == 400 and message in r.json()["error"]["message"], (bad, r.text)


def test_liking_at_once_from_several_devices(client: TestClient, container: Container) -> None:
    ada = sign_up_and_login(client)
    track = seed(container).tracks["Eple"]
    barrier, errors = threading.Barrier(6), []

    def like() -> None:
        barrier.wait()
        try:
            container.library.save(ada["user_id"], "track", [track])
        except Exception as exc:  # collected, and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=like) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    with container.db.read() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(track_likes)).scalar_one()
    assert n == 1
