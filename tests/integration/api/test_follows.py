"""Followed artists (`/v1/me/following`) and the release feed (`/v1/me/feed/releases`) through the
API, on SQLite and PostgreSQL: Spotify's cursor paging, exact follower counts, and a feed that
never shows another listener's private uploads."""

from __future__ import annotations

import threading

import sqlalchemy as sa
from fastapi.testclient import TestClient

from tonearm.bootstrap import Container
from tonearm.domains.catalog.tables import albums, artists, track_artists, tracks

from .conftest import sign_up_and_login
from .test_search_api import seed


def _followers(container: Container, artist_id: str) -> int:
    with container.db.read() as conn:
        return int(conn.execute(sa.select(artists.c.followers).where(artists.c.id == artist_id)).scalar_one())


def test_follow_list_contains_and_unfollow(client: TestClient, container: Container) -> None:
    ada = sign_up_and_login(client)
    a = seed(container).artists
    h = ada["headers"]
    queen, beatles, eple = a["Queen"], a["The Beatles"], a["Röyksopp"]

    r = client.put(f"/v1/me/following?type=artist&ids={queen},{beatles}", headers=h)
    assert r.status_code == 204, r.text
    r = client.put("/v1/me/following?type=artist", json={"ids": [eple]}, headers=h)  # body form
    assert r.status_code == 204
    body = client.get("/v1/me/following?type=artist", headers=h).json()["artists"]
    # By name: Queen, Röyksopp, The Beatles (folded names: queen, royksopp, the beatles).
    assert [x["name"] for x in body["items"]] == ["Queen", "Röyksopp", "The Beatles"]
    assert body["total"] == 3 and body["cursors"] == {"after": None} and body["next"] is None
    assert body["items"][0]["type"] == "artist" and body["items"][0]["followers"]["total"] == 1
    assert _followers(container, queen) == 1

    # Following again changes nothing, the count included.
    assert client.put(f"/v1/me/following?type=artist&ids={queen}", headers=h).status_code == 204
    assert _followers(container, queen) == 1
    # The followers total in the artist object moved with the follow.
    assert client.get(f"/v1/artists/{queen}", headers=h).json()["followers"]["total"] == 1

    check = client.get(f"/v1/me/following/contains?type=artist&ids={queen},{a['Beyoncé']},{queen}", headers=h)
    assert check.json() == [True, False, True]

    assert client.delete(f"/v1/me/following?type=artist&ids={beatles}", headers=h).status_code == 204
    assert client.get(f"/v1/me/following/contains?type=artist&ids={beatles}", headers=h).json() == [False]
    assert _followers(container, beatles) == 0
    # Unfollowing what you do not follow does not push the count below zero.
    assert client.delete(f"/v1/me/following?type=artist&ids={beatles}", headers=h).status_code == 204
    assert _followers(container, beatles) == 0

    bob = sign_up_and_login(client, "bob@example.com")
    assert client.get("/v1/me/following?type=artist", headers=bob["headers"]).json()["artists"]["total"] == 0


def test_cursor_paging_survives_an_unfollow_between_pages(client: TestClient, container: Container) -> None:
    ada = sign_up_and_login(client)
    a = seed(container).artists
    h = ada["headers"]
    ids = [a[n] for n in ("Queen", "The Beatles", "Röyksopp", "Beyoncé", "Crystal Waters", "Padding Band")]
    assert client.put(f"/v1/me/following?type=artist&ids={','.join(ids)}", headers=h).status_code == 204
    everyone = [
        x["id"]
        for x in client.get("/v1/me/following?type=artist&limit=50", headers=h).json()["artists"]["items"]
    ]
    seen: list[str] = []
    first = client.get("/v1/me/following?type=artist&limit=4", headers=h).json()["artists"]
    seen += [x["id"] for x in first["items"]]
    assert first["cursors"]["after"] == seen[-1] and first["next"].endswith(f"after={seen[-1]}")
    # The cursor's artist is unfollowed before the next page is asked for: paging goes on.
    assert client.delete(f"/v1/me/following?type=artist&ids={seen[-1]}", headers=h).status_code == 204
    second = client.get(f"/v1/me/following?type=artist&limit=4&after={seen[-1]}", headers=h).json()
    seen += [x["id"] for x in second["artists"]["items"]]
    assert seen == everyone and second["artists"]["next"] is None


def test_release_feed_newest_first_and_only_visible(client: TestClient, container: Container) -> None:
    ada = sign_up_and_login(client)
    bob = sign_up_and_login(client, "bob@example.com")
    seeded = seed(container, private_owner=bob["user_id"])
    a, al = seeded.artists, seeded.albums
    h = ada["headers"]
    assert client.get("/v1/me/feed/releases", headers=h).json()["total"] == 0  # follows nobody yet
    # Queen's albums: A Night at the Opera (1975), Jazz (1978); the Bedroom Artist's only album
    # is Bob's private "Demos".
    ids = f"{a['Queen']},{a['Bedroom Artist']}"
    assert client.put(f"/v1/me/following?type=artist&ids={ids}", headers=h).status_code == 204
    feed = client.get("/v1/me/feed/releases", headers=h).json()
    assert [x["id"] for x in feed["items"]] == [al["Jazz"], al["A Night at the Opera"]]
    assert feed["items"][0]["type"] == "album" and feed["items"][0]["images"]
    # Bob follows the same artists and sees his own private album too.
    assert client.put(f"/v1/me/following?type=artist&ids={ids}", headers=bob["headers"]).status_code == 204
    bobs = client.get("/v1/me/feed/releases", headers=bob["headers"]).json()
    assert al["Demos"] in [x["id"] for x in bobs["items"]] and bobs["total"] == 3

    # A featured appearance counts: a Queen track on a Beatles album puts that album in the feed.
    with container.db.write() as conn:
        conn.execute(
            sa.insert(track_artists).values(
                track_id=seeded.tracks["Yesterday"], artist_id=a["Queen"], position=1
            )
        )
    feed = client.get("/v1/me/feed/releases?limit=2", headers=h).json()
    assert feed["total"] == 3 and len(feed["items"]) == 2 and feed["next"] is not None
    # A newer release date comes first.
    with container.db.write() as conn:
        conn.execute(sa.update(albums).where(albums.c.id == al["Help!"]).values(release_date="2026-01-01"))
    container.catalog._album_objs.clear()
    assert client.get("/v1/me/feed/releases", headers=h).json()["items"][0]["id"] == al["Help!"]
    # A release whose tracks were all taken down leaves the feed.
    with container.db.write() as conn:
        conn.execute(sa.update(tracks).where(tracks.c.album_id == al["Jazz"]).values(status="failed"))
    assert al["Jazz"] not in [x["id"] for x in client.get("/v1/me/feed/releases", headers=h).json()["items"]]


def test_follow_by_library_uri_as_spotipy_does(client: TestClient, container: Container) -> None:
    ada = sign_up_and_login(client)
    queen = seed(container).artists["Queen"]
    h = ada["headers"]
    assert client.put(f"/v1/me/library?uris=spotify:artist:{queen}", headers=h).status_code == 200
    assert client.get(f"/v1/me/library/contains?uris=tonearm:artist:{queen}", headers=h).json() == [True]
    assert client.get(f"/v1/me/following/contains?type=artist&ids={queen}", headers=h).json() == [True]
    assert client.delete(f"/v1/me/library?uris=tonearm:artist:{queen}", headers=h).status_code == 200
    assert client.get(f"/v1/me/following/contains?type=artist&ids={queen}", headers=h).json() == [False]
    r = client.put(f"/v1/me/library?uris=tonearm:user:{ada['user_id']}", headers=h)
    assert r.status_code == 400 and "'user' items cannot be saved" in r.json()["error"]["message"]


def test_bad_input_is_a_clear_error(client: TestClient, container: Container) -> None:
    ada = sign_up_and_login(client)
    a = seed(container).artists
    h = ada["headers"]
    track = "0" * 22
    for method, url, status, message in (
        ("PUT", f"/v1/me/following?ids={a['Queen']}", 400, "type: give type=artist"),
        ("PUT", f"/v1/me/following?type=user&ids={a['Queen']}", 400, "following users is not supported"),
        ("PUT", "/v1/me/following?type=artist", 400, "ids: give between 1 and 50 artist ids"),
        ("PUT", "/v1/me/following?type=artist&ids=short", 400, "invalid artist id 'short'"),
        ("PUT", f"/v1/me/following?type=artist&ids={track}", 404, f"artist {track} not found"),
        ("GET", "/v1/me/following?type=artist&limit=0", 400, "limit: must be between 1 and 50"),
        ("GET", "/v1/me/following?type=artist&after=nope", 400, "invalid artist id 'nope'"),
        ("GET", f"/v1/me/following?type=artist&after={track}", 400, f"after: artist {track} not found"),
        ("GET", "/v1/me/feed/releases?limit=51", 400, "limit: must be between 1 and 50"),
        ("GET", "/v1/me/following/contains?type=artist", 400, "ids: give between 1 and 50"),
    ):
        r = client.request(method, url, headers=h)
        assert r.status_code == status and message in r.json()["error"]["message"], (url, r.text)
    assert client.get("/v1/me/following?type=artist").status_code == 401
    assert client.get("/v1/me/feed/releases").status_code == 401


def test_following_at_once_from_several_devices_counts_once(client: TestClient, container: Container) -> None:
    ada = sign_up_and_login(client)
    queen = seed(container).artists["Queen"]
    barrier, errors = threading.Barrier(6), []

    def follow() -> None:
        barrier.wait()
        try:
            container.library.follow(ada["user_id"], [queen])
        except Exception as exc:  # collected, and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=follow) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert _followers(container, queen) == 1
