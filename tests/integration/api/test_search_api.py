"""GET /v1/search and /v1/search/suggest through the API, on SQLite and PostgreSQL: Spotify's
response shape, paging links, validation of every bad input, private uploads, suggestions."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from tests.helpers import make_settings, make_tone
from tonearm.bootstrap import Container, bootstrap
from tonearm.domains.catalog.tables import (
    albums,
    image_variants,
    images,
    track_artists,
    track_genres,
    tracks,
)
from tonearm.domains.search.service import GENRES_TTL_S
from tonearm.kernel.ids import new_id

from .conftest import sign_up_and_login
from .test_catalog import ALBUM_FIELDS, PAGING, TRACK_FIELDS
from .test_ingest import drain, upload

SEARCH_URL = ""  # the embedded default (tantivy in the data dir), as a server runs


@pytest.fixture
def container(tmp_path: Path, db_url: str) -> Iterator[Container]:
    c = bootstrap(make_settings(tmp_path, db_url, search_url=SEARCH_URL))
    yield c
    c.close()


@dataclass
class Seeded:
    tracks: dict[str, str] = field(default_factory=dict)  # title -> id
    albums: dict[str, str] = field(default_factory=dict)
    artists: dict[str, str] = field(default_factory=dict)


# title, artists, album, year, genres, plays, description
CATALOG: list[tuple[str, tuple[str, ...], str, str, tuple[str, ...], int, str]] = [
    ("Bohemian Rhapsody", ("Queen",), "A Night at the Opera", "1975-10-31", ("Rock",), 90_000, ""),
    ("Love of My Life", ("Queen",), "A Night at the Opera", "1975-10-31", ("Rock",), 20_000, ""),
    ("Bohemian Like You", ("The Dandy Warhols",), "Thirteen Tales", "2000-08-01", ("Indie Rock",), 3000, ""),
    ("Halo", ("Beyoncé",), "I Am... Sasha Fierce", "2008-11-12", ("Pop",), 70_000, ""),
    ("Eple", ("Röyksopp",), "Melody A.M.", "2001", ("Electronic",), 4000, ""),
    (
        "Yesterday",
        ("The Beatles",),
        "Help!",
        "1965-08-06",
        ("Rock", "Pop"),
        60_000,
        "recorded with a string quartet",
    ),
    ("100% Pure Love", ("Crystal Waters",), "Storyteller", "1994", ("House",), 5000, ""),
    ("Don't Stop Me Now", ("Queen",), "Jazz", "1978", ("Rock",), 50_000, ""),
    ("Hip Hop Hooray", ("Naughty by Nature",), "19 Naughty III", "1993", ("Hip-Hop",), 8000, ""),
] + [
    (f"Padding Song {n}", ("Padding Band",), "Padding Vol 1", "2010", ("Ambient",), 100 - n, "")
    for n in range(30)
]


def seed(c: Container, *, private_owner: str | None = None) -> Seeded:
    """Writes CATALOG straight into the catalog's tables (plus one private track of
    `private_owner`, "Secret Demo"), as ingest would leave it, and rebuilds the index."""
    out = Seeded()
    now = dt.datetime.now(dt.UTC)
    rows = list(CATALOG)
    if private_owner:
        rows.append(("Secret Demo", ("Bedroom Artist",), "Demos", "2024", ("Lo-Fi",), 0, "a hidden take"))
    with c.db.write() as conn:
        for n, (title, names, album, date, genre_names, plays, description) in enumerate(rows):
            private = title == "Secret Demo"
            artist_ids = [c.catalog.ensure_artist(conn, name, now) for name in names]
            for name, artist_id in zip(names, artist_ids, strict=True):
                out.artists[name] = artist_id
            album_id, image_id = c.catalog.ensure_album(
                conn, album, artist_ids[0], date, now, owner_scope=private_owner if private else None
            )
            out.albums[album] = album_id
            if image_id is None:
                image_id = new_id()
                conn.execute(sa.insert(images).values(id=image_id, source="generated", created_at=now))
                conn.execute(
                    sa.insert(image_variants),
                    [
                        {
                            "image_id": image_id,
                            "size": s,
                            "width": s,
                            "height": s,
                            "blob_key": f"images/{image_id}/{s}.jpg",
                            "content_type": "image/jpeg",
                            "bytes": 1,
                        }
                        for s in (640, 300, 64)
                    ],
                )
                conn.execute(sa.update(albums).where(albums.c.id == album_id).values(image_id=image_id))
            track_id = new_id()
            out.tracks[title] = track_id
            conn.execute(
                sa.insert(tracks).values(
                    id=track_id,
                    title=title,
                    album_id=album_id,
                    duration_ms=180_000,
                    track_number=n + 1,
                    description=description or None,
                    release_date=date,
                    status="ready",
                    visibility="private" if private else "public",
                    owner_user_id=private_owner if private else None,
                    content_hash=f"{n:064x}",
                    play_count=plays,
                    created_at=now,
                    updated_at=now,
                )
            )
            conn.execute(
                sa.insert(track_artists),
                [{"track_id": track_id, "artist_id": a, "position": i} for i, a in enumerate(artist_ids)],
            )
            conn.execute(
                sa.insert(track_genres),
                [{"track_id": track_id, "genre_id": g} for g in c.catalog.ensure_genres(conn, genre_names)],
            )
    c.indexer.reindex()
    return out


def search(client: TestClient, expect: int = 200, **params: Any) -> Any:
    r = client.get("/v1/search", params=params)
    assert r.status_code == expect, r.text
    return r.json()


def names(page: dict[str, Any]) -> list[str]:
    return [item["name"] for item in page["items"]]


def test_response_shape_per_type(client: TestClient, container: Container) -> None:
    ids = seed(container)
    body = search(client, q="queen", type="track,artist,album,playlist")
    assert set(body) == {"tracks", "artists", "albums", "playlists"}
    for page in body.values():
        assert set(page) == PAGING
    tracks_page = body["tracks"]
    # Queen's tracks, most played first (an artist match: same relevance, popularity decides).
    assert names(tracks_page)[:3] == ["Bohemian Rhapsody", "Don't Stop Me Now", "Love of My Life"]
    first = tracks_page["items"][0]
    assert set(first) == TRACK_FIELDS and first["id"] == ids.tracks["Bohemian Rhapsody"]
    assert first["uri"] == f"tonearm:track:{first['id']}"
    assert set(first["album"]) >= ALBUM_FIELDS and first["album"]["name"] == "A Night at the Opera"
    assert [i["width"] for i in first["album"]["images"]] == [640, 300, 64]
    assert first["album"]["images"][0]["url"].startswith("http://testserver/images/")
    assert first["artists"][0]["name"] == "Queen"

    artist = body["artists"]["items"][0]
    assert artist["name"] == "Queen" and artist["id"] == ids.artists["Queen"]
    assert artist["type"] == "artist" and artist["uri"] == f"tonearm:artist:{artist['id']}"
    assert artist["genres"] == ["rock"] and artist["followers"] == {"href": None, "total": 0}
    assert artist["images"] and 0 < artist["popularity"] <= 100
    assert {a["name"] for a in body["albums"]["items"]} == {"A Night at the Opera", "Jazz"}
    assert set(body["albums"]["items"][0]) == ALBUM_FIELDS
    # No playlists yet: an empty paging object, not an error.
    assert body["playlists"]["items"] == [] and body["playlists"]["total"] == 0

    # The type order asked for is the order answered; duplicates collapse.
    assert list(search(client, q="queen", type="album,track,album")) == ["albums", "tracks"]


def test_relevance_filters_and_folding(client: TestClient, container: Container) -> None:
    seed(container)
    assert names(search(client, q="bohemian rhapsody", type="track")["tracks"])[0] == "Bohemian Rhapsody"
    assert names(search(client, q="bohemain rapsody", type="track")["tracks"])[0] == "Bohemian Rhapsody"
    assert names(search(client, q="BEYONCE halo", type="track")["tracks"]) == ["Halo"]
    assert names(search(client, q="royksopp", type="artist")["artists"]) == ["Röyksopp"]
    assert names(search(client, q="dont stop", type="track")["tracks"]) == ["Don't Stop Me Now"]
    assert names(search(client, q="string quartet", type="track")["tracks"]) == ["Yesterday"]
    rock_90s = search(client, q="genre:rock year:1970-1979", type="track")["tracks"]
    assert names(rock_90s) == ["Bohemian Rhapsody", "Don't Stop Me Now", "Love of My Life"]
    assert names(search(client, q='artist:queen track:"love of"', type="track")["tracks"]) == [
        "Love of My Life"
    ]
    assert names(search(client, q='genre:"hip hop"', type="track")["tracks"]) == ["Hip Hop Hooray"]
    # A filter that cannot apply to a type empties it rather than failing.
    body = search(client, q="track:halo", type="track,artist")
    assert names(body["tracks"]) == ["Halo"] and body["artists"]["total"] == 0


def test_paging_links_and_limits(client: TestClient, container: Container) -> None:
    seed(container)
    first = search(client, q="padding", type="track", limit=10)["tracks"]
    assert first["total"] == 30 and first["limit"] == 10 and first["offset"] == 0
    assert first["previous"] is None and len(first["items"]) == 10
    href = urlsplit(first["href"])
    assert href.scheme == "http" and href.netloc == "testserver" and href.path == "/v1/search"
    assert parse_qs(href.query) == {"q": ["padding"], "type": ["track"], "offset": ["0"], "limit": ["10"]}
    second = client.get(first["next"]).json()["tracks"]
    assert second["offset"] == 10 and second["previous"] == first["href"]
    assert not {i["id"] for i in second["items"]} & {i["id"] for i in first["items"]}
    last = search(client, q="padding", type="track", limit=10, offset=20)["tracks"]
    assert last["next"] is None and len(last["items"]) == 10
    beyond = search(client, q="padding", type="track", limit=10, offset=1000)["tracks"]
    assert beyond["items"] == [] and beyond["total"] == 30 and beyond["next"] is None
    counted = search(client, q="padding", type="track", limit=0)["tracks"]
    assert counted["items"] == [] and counted["total"] == 30 and counted["next"] is None
    default = search(client, q="padding", type="track")["tracks"]
    assert default["limit"] == 20 and len(default["items"]) == 20
    # Spotify's podcast and audiobook types: valid, and empty here.
    shows = search(client, q="padding", type="track,show,episode,audiobook")
    assert shows["shows"]["total"] == 0 and shows["episodes"]["items"] == [] and "audiobooks" in shows


BAD_INPUT = [
    ({"type": "track"}, "q is required"),
    ({"q": "", "type": "track"}, "q is required"),
    ({"q": "   ", "type": "track"}, "q is required"),
    ({"q": "x" * 10_000, "type": "track"}, "q is too long"),
    ({"q": "a " * 30, "type": "track"}, "too many words"),
    ({"q": "!!! ???", "type": "track"}, "no words"),
    ({"q": "year:19x9", "type": "track"}, "year:19x9"),
    ({"q": "year:2000-1990", "type": "track"}, "ends before it starts"),
    ({"q": "artist:", "type": "track"}, "needs a value"),
    ({"q": "genre:%%%", "type": "track"}, "no letters"),
    ({"q": "queen"}, "type is required"),
    ({"q": "queen", "type": ""}, "type is required"),
    ({"q": "queen", "type": "track,podcast"}, "unknown type 'podcast'"),
    ({"q": "queen", "type": "track", "limit": "100000"}, "limit must be from 0 to 50"),
    ({"q": "queen", "type": "track", "limit": "51"}, "limit must be from 0 to 50"),
    ({"q": "queen", "type": "track", "limit": "-1"}, "limit must be from 0 to 50"),
    ({"q": "queen", "type": "track", "limit": "ten"}, "limit must be an integer"),
    ({"q": "queen", "type": "track", "limit": "1e3"}, "limit must be an integer"),
    ({"q": "queen", "type": "track", "offset": "-5"}, "offset must be from 0 to 1000"),
    ({"q": "queen", "type": "track", "offset": "1001"}, "offset must be from 0 to 1000"),
    ({"q": "queen", "type": "track", "offset": "9" * 40}, "offset must be from 0 to 1000"),
]


@pytest.mark.parametrize(("params", "message"), BAD_INPUT)
def test_bad_input_is_a_400_saying_why(
    client: TestClient, container: Container, params: dict[str, str], message: str
) -> None:
    body = search(client, expect=400, **params)
    assert body["error"]["status"] == 400 and message in body["error"]["message"], body


ODD_BUT_VALID = [
    '"bohemian rhapsody',  # an unbalanced quote: a phrase still being typed
    'queen "',
    'artist:"queen',
    ".* (a|b)+ [^x] \\d{2,} $ ^",  # regular expression syntax
    "'; DROP TABLE tracks; --",  # SQL
    "% _ \\ %% love",  # LIKE wildcards
    "queen AND OR NOT title:x field:(y) +z -w ~ * ? : { } < > = &&",  # other engines' syntax
    "\x00 queen \u202e \ufffd",  # control characters and oddities
    "🎸 queen 🎸",
    "year:0-9999 queen",
]


@pytest.mark.parametrize("q", ODD_BUT_VALID)
def test_metacharacters_are_just_text(client: TestClient, container: Container, q: str) -> None:
    seed(container)
    body = search(client, q=q, type="track,artist,album")
    assert set(body) == {"tracks", "artists", "albums"}
    assert all(set(page) == PAGING for page in body.values())


def test_private_uploads_are_found_by_their_owner_only(
    client: TestClient, container: Container, tmp_path: Path, have_ffmpeg: None
) -> None:
    ada = sign_up_and_login(client)
    bob = sign_up_and_login(client, "bob@example.com")
    seed(container, private_owner=bob["user_id"])
    # A real upload, through ingest and the indexer, as a server does it.
    src = make_tone(tmp_path / "take.ogg", seconds=1, tags={"title": "Quixotic Lullaby", "artist": "Ada"})
    up = upload(client, ada["headers"], src, visibility="private").json()
    drain(container)
    assert container.indexer.wait_caught_up()
    for q in ("quixotic lullaby", "quixo", "secret demo", "bedroom", "hidden take", "genre:lo-fi"):
        anonymous = search(client, q=q, type="track,artist,album")
        assert all(page["total"] == 0 for page in anonymous.values()), (q, anonymous)
    bob_sees = client.get("/v1/search", params={"q": "quixotic", "type": "track"}, headers=bob["headers"])
    assert bob_sees.json()["tracks"]["total"] == 0
    ada_sees = client.get("/v1/search", params={"q": "quixo", "type": "track"}, headers=ada["headers"])
    track_id = client.get(f"/v1/me/uploads/{up['id']}", headers=ada["headers"]).json()["track"]["id"]
    assert [t["id"] for t in ada_sees.json()["tracks"]["items"]] == [track_id]
    secret = client.get(
        "/v1/search", params={"q": "bedroom", "type": "track,album,artist"}, headers=bob["headers"]
    ).json()
    assert names(secret["tracks"]) == ["Secret Demo"] and names(secret["albums"]) == ["Demos"]
    assert names(secret["artists"]) == ["Bedroom Artist"]

    # Ada renames it: her next search, well within the answer cache's lifetime, shows the change
    # (a change made in this process clears the cache).
    def ada_finds(q: str) -> list[str]:
        r = client.get("/v1/search", params={"q": q, "type": "track"}, headers=ada["headers"])
        return names(r.json()["tracks"])

    assert ada_finds("zephyr") == []
    r = client.patch(f"/v1/tracks/{track_id}", headers=ada["headers"], json={"name": "Zephyr Nocturne"})
    assert r.status_code == 200, r.text
    assert container.indexer.wait_caught_up()
    assert ada_finds("zephyr") == ["Zephyr Nocturne"]
    # A token that is not one is an error, not an anonymous search.
    r = client.get("/v1/search", params={"q": "x", "type": "track"}, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json()["error"]["status"] == 401


def test_suggest_mixes_kinds_and_genres(client: TestClient, container: Container) -> None:
    ids = seed(container)
    r = client.get("/v1/search/suggest", params={"q": "que"})
    assert r.status_code == 200, r.text
    assert "x-tonearm-search" not in r.headers  # loading the genre list is no failover
    body = r.json()
    assert body["q"] == "que"
    kinds = {s["type"] for s in body["suggestions"]}
    assert kinds == {"track", "artist", "album"}, body
    queen = next(s for s in body["suggestions"] if s["type"] == "artist")
    assert queen == {
        "type": "artist",
        "id": ids.artists["Queen"],
        "name": "Queen",
        "uri": f"tonearm:artist:{ids.artists['Queen']}",
        "image": queen["image"],
        "subtitle": "rock",
    }
    assert queen["image"].endswith("/64")
    rhapsody = next(s for s in body["suggestions"] if s["name"] == "Bohemian Rhapsody")
    assert rhapsody["subtitle"] == "Queen" and rhapsody["image"].endswith("/64")
    assert len(body["suggestions"]) <= 8
    assert (
        len(client.get("/v1/search/suggest", params={"q": "padding", "limit": 3}).json()["suggestions"]) == 3
    )
    # Genres whose name (or a word of it) starts with what is typed.
    assert client.get("/v1/search/suggest", params={"q": "hip h"}).json()["genres"] == [
        {"slug": "hip-hop", "name": "Hip-Hop"}
    ]
    rock = client.get("/v1/search/suggest", params={"q": "roc"}).json()["genres"]
    assert [g["name"] for g in rock] == ["Rock", "Indie Rock"]  # by track count
    for params, message in (({}, "q is required"), ({"q": "a", "limit": "0"}, "limit must be from 1")):
        bad = client.get("/v1/search/suggest", params=params)
        assert bad.status_code == 400 and message in bad.json()["error"]["message"]
    # The genre list for browsing stays where it was.
    assert {"name": "Hip-Hop", "slug": "hip-hop", "tracks": 1} in client.get("/v1/genres").json()["genres"]


def test_openapi_documents_search(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/v1/search" in paths and "/v1/search/suggest" in paths


def test_cached_answers_follow_changes_made_by_another_process(tmp_path: Path, db_url: str) -> None:
    """Answers are reused while the index is unchanged, however long: a server process (here `b`)
    asks its index for a repeated query once, and still sees what the indexing process (`a`)
    commits as soon as its reader does, not a cache lifetime later."""
    settings = make_settings(tmp_path, db_url, search_url=SEARCH_URL, search_cache_ttl_s=3600)
    a, b = bootstrap(settings), bootstrap(settings)
    try:
        ids = seed(a)
        before = metrics_value("tonearm_search_queries_total", backend="cache")

        def titles() -> list[str]:
            body = b.search.search("bohemian", ["track"], limit=10, offset=0, viewer_id=None)
            return names(body["tracks"])

        first = titles()
        assert first[0] == "Bohemian Rhapsody"
        assert titles() == first  # asked again: the recent answer, not the index
        assert metrics_value("tonearm_search_queries_total", backend="cache") == before + 1

        with a.db.write() as conn:
            conn.execute(
                sa.update(tracks).where(tracks.c.id == ids.tracks["Bohemian Rhapsody"]).values(title="Gone")
            )
            a.catalog.tracks_changed(conn, [ids.tracks["Bohemian Rhapsody"]])
        assert a.indexer.run_once() > 0
        deadline = time.monotonic() + 10  # a hang guard: b's reader reloads every 0.1 s
        while "Bohemian Rhapsody" in titles():
            assert time.monotonic() < deadline, titles()
            time.sleep(0.02)
    finally:
        a.close()
        b.close()


def metrics_value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_one_thread_reloads_the_genres_while_the_others_use_the_old_list(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every suggestion matches genres; reloading them is an aggregate over the catalog. When the
    list is due, one thread reloads it and the rest answer from the old list meanwhile, instead
    of all of them running the aggregate at once (which stalled suggestions for seconds)."""
    seed(container)
    service = container.search
    before = service.genres()
    assert before
    entered, release, calls = threading.Event(), threading.Event(), []
    load = container.catalog.genres

    def slow_load() -> list[dict[str, Any]]:
        calls.append(1)
        entered.set()
        assert release.wait(10)
        return load()

    monkeypatch.setattr(container.catalog, "genres", slow_load)
    at, keyed = service._genres
    service._genres = (at - GENRES_TTL_S - 1, keyed)  # due
    reloading = threading.Thread(target=service.genres)
    reloading.start()
    try:
        assert entered.wait(10)
        assert service.genres() == before  # at once, from the old list
        body = service.suggest("roc", viewer_id=None)
        assert [g["name"] for g in body["genres"]] == ["Rock", "Indie Rock"]
        assert calls == [1]  # nobody else ran the aggregate
    finally:
        release.set()
        reloading.join(10)
    assert service.clock.monotonic() - service._genres[0] < GENRES_TTL_S  # reloaded
