"""search3, search2 and the legacy search on SQLite and PostgreSQL: relevance through Tonearm's
search, the empty query (and the literal `""`) listing everything page by page as Symfonium
syncs a library, paging per type, visibility, and bad input."""

from __future__ import annotations

from typing import Any

from tests.integration.subsonic.conftest import Listener, World
from tests.subsonic import NS, error_code

VISIBLE_SONGS = 39  # the seeded catalog; `other` also sees "Secret Demo"


def sync(world: World, who: Listener | None = None, page: int = 7, **params: Any) -> list[str]:
    """Song ids of an empty-query search3, page after page until a short page."""
    ids: list[str] = []
    offset = 0
    while True:
        songs = world.rest(
            "search3",
            who=who,
            fmt="json",
            query="",
            artistCount=0,
            albumCount=0,
            songCount=page,
            songOffset=offset,
            **params,
        )["searchResult3"].get("song", [])
        ids += [s["id"] for s in songs]
        if len(songs) < page:
            return ids
        offset += page


def test_empty_query_pages_through_everything_once(world: World) -> None:
    ids = sync(world)
    assert len(ids) == VISIBLE_SONGS and len(set(ids)) == VISIBLE_SONGS
    assert ids == sorted(ids) or ids == sync(world)  # a stable order, the same on every sync
    assert world.seeded.tracks["Secret Demo"] not in ids
    theirs = sync(world, who=world.other)
    assert len(set(theirs)) == VISIBLE_SONGS + 1 and world.seeded.tracks["Secret Demo"] in theirs
    # The literal "" (two double quotes) is the same empty query; so is a query left out.
    assert sync(world, page=10) == ids
    quoted = world.rest("search3", query='""', songCount=500, artistCount=0, albumCount=0)["searchResult3"]
    assert [s["id"] for s in quoted["song"]] == ids
    missing = world.rest("search3", songCount=500, artistCount=0, albumCount=0)["searchResult3"]
    assert [s["id"] for s in missing["song"]] == ids
    # A page straight at an offset (no previous page served) gives the same songs.
    direct = world.rest("search3", query="", artistCount=0, albumCount=0, songCount=5, songOffset=21)
    assert [s["id"] for s in direct["searchResult3"]["song"]] == ids[21:26]


def test_empty_query_artists_and_albums_paged(world: World) -> None:
    everything = world.rest("search3", query="", artistCount=500, albumCount=500, songCount=0)[
        "searchResult3"
    ]
    artists, albums = everything["artist"], everything["album"]
    assert len(artists) == 8 and "Bedroom Artist" not in [a["name"] for a in artists]
    assert len(albums) == 9 and "Demos" not in [a["name"] for a in albums]
    assert "song" not in everything or everything["song"] == []
    page = world.rest(
        "search3", query="", artistCount=3, artistOffset=3, albumCount=4, albumOffset=4, songCount=0
    )["searchResult3"]
    assert [a["id"] for a in page["artist"]] == [a["id"] for a in artists[3:6]]
    assert [a["id"] for a in page["album"]] == [a["id"] for a in albums[4:8]]
    default = world.rest("search3", query="")["searchResult3"]
    assert len(default["song"]) == 20 and len(default["album"]) == 9  # counts default to 20


def test_query_uses_tonearm_search(world: World) -> None:
    s = world.seeded
    found = world.rest("search3", query="bohemian")["searchResult3"]
    assert [x["title"] for x in found["song"]][:2] == ["Bohemian Rhapsody", "Bohemian Like You"]
    typo = world.rest("search3", query="bohemain rapsody")["searchResult3"]  # typo-tolerant
    assert [x["title"] for x in typo["song"]][:1] == ["Bohemian Rhapsody"]
    queen = world.rest("search3", query="queen", songCount=0, albumCount=0)["searchResult3"]
    assert [a["id"] for a in queen["artist"]] == [s.artists["Queen"]] and queen["artist"][0][
        "albumCount"
    ] == 2
    albums = world.rest("search3", query="opera", artistCount=0, songCount=0)["searchResult3"]
    assert [a["name"] for a in albums["album"]] == ["A Night at the Opera"]
    # Paging: the second page follows the first.
    both = [x["id"] for x in world.rest("search3", query="padding", songCount=20)["searchResult3"]["song"]]
    first = [x["id"] for x in world.rest("search3", query="padding", songCount=8)["searchResult3"]["song"]]
    second = world.rest("search3", query="padding", songCount=8, songOffset=8)["searchResult3"]["song"]
    assert first + [x["id"] for x in second] == both[:16] and len(both) == 20
    big = world.rest("search3", query="padding", songCount=500, artistCount=0, albumCount=0)["searchResult3"]
    assert len(big["song"]) == 30  # more than the search's 50-per-page, still one answer
    # A trailing "*" (older apps) is ignored; nothing found is an empty result, not an error.
    assert [x["title"] for x in world.rest("search3", query="yesterda*")["searchResult3"]["song"]] == [
        "Yesterday"
    ]
    assert not world.rest("search3", query="zzzqqqxxx")["searchResult3"].get("song")
    # Private uploads: only their owner finds them.
    assert not world.rest("search3", query="secret demo")["searchResult3"].get("song")
    mine = world.rest("search3", who=world.other, query="secret demo")["searchResult3"]
    assert [x["title"] for x in mine["song"]] == ["Secret Demo"]


def test_search2_shapes(world: World) -> None:
    s = world.seeded
    found = world.rest("search2", query="queen")["searchResult2"]
    assert found["artist"][0] == {**found["artist"][0], "id": s.artists["Queen"], "name": "Queen"}
    assert "albumCount" not in found["artist"][0]
    albums = world.rest("search2", query="", albumCount=500, artistCount=0, songCount=0)["searchResult2"][
        "album"
    ]
    assert len(albums) == 9 and all(a["isDir"] is True and a["title"] for a in albums)
    xml = world.xml("search2", query="", artistCount=1, albumCount=1, songCount=1)
    result = xml.find(f"{NS}searchResult2")
    assert result is not None and [e.tag for e in result] == [f"{NS}artist", f"{NS}album", f"{NS}song"]


def test_legacy_search(world: World) -> None:
    found = world.rest("search", any="yesterday")["searchResult"]
    assert [m["title"] for m in found["match"]] == ["Yesterday"] and found["totalHits"] == 1
    everything = world.rest("search", count=500)["searchResult"]
    assert everything["totalHits"] == VISIBLE_SONGS and len(everything["match"]) == VISIBLE_SONGS
    paged = world.rest("search", count=5, offset=5)["searchResult"]
    assert paged["offset"] == 5 and [m["id"] for m in paged["match"]] == [
        m["id"] for m in everything["match"][5:10]
    ]
    assert world.rest("search", artist="queen", count=10)["searchResult"]["totalHits"] == 3
    assert not world.rest("search", count=500, newerThan=4102444800000)["searchResult"].get("match")


def test_bad_input(world: World) -> None:
    for params in (
        {"songCount": "abc"},
        {"songOffset": "-5"},
        {"artistCount": "1.5"},
        {"albumOffset": "x"},
    ):
        assert error_code(world.rest("search3", None, query="", **params)) == 0, params
        assert error_code(world.rest("search2", None, query="", **params)) == 0, params
    huge = world.rest("search3", query="", songCount=10**15, artistCount=0, albumCount=0)["searchResult3"]
    assert len(huge["song"]) == VISIBLE_SONGS  # clamped to 500
    beyond = world.rest("search3", query="", songCount=10, songOffset=10**9, artistCount=0, albumCount=0)
    assert not beyond["searchResult3"].get("song")
    assert error_code(world.rest("search3", query="a" * 5000)) is None
    assert error_code(world.rest("search3", query="artist:")) is None
    assert error_code(world.rest("search", count="lots")) == 0
