"""List methods on SQLite and PostgreSQL: getAlbumList(2) of every type, random songs, songs by
genre, starred items and now playing, validated against the XSD and the schemas."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from tests.integration.subsonic.conftest import Listener, World
from tests.subsonic import NS, error_code
from tonearm.domains.history.service import ImportedPlay
from tonearm.domains.history.tables import now_playing
from tonearm.domains.library.tables import ratings

ALL_ALBUMS = 9  # visible to everyone but `other` (who also sees "Demos")


def album_names(world: World, list_type: str, who: Listener | None = None, **params: Any) -> list[str]:
    """getAlbumList2's names; getAlbumList must agree (same ids, folder shape)."""
    two = world.rest("getAlbumList2", who=who, type=list_type, **params)["albumList2"].get("album", [])
    one = world.rest("getAlbumList", who=who, type=list_type, **params)["albumList"].get("album", [])
    if list_type != "random":
        assert [a["id"] for a in one] == [a["id"] for a in two]
        assert all(
            a["isDir"] is True and a["title"] == b["name"] and a["parent"] == b["artistId"]
            for a, b in zip(one, two, strict=True)
        )
    return [a["name"] for a in two]


def test_alphabetical_newest_random_and_paging(world: World) -> None:
    by_name = album_names(world, "alphabeticalByName", size=500)
    assert by_name == sorted(by_name, key=str.lower) and len(by_name) == ALL_ALBUMS
    assert "Demos" not in by_name and "Demos" in album_names(
        world, "alphabeticalByName", who=world.other, size=50
    )
    assert album_names(world, "alphabeticalByName", size=3, offset=2) == by_name[2:5]
    assert album_names(world, "alphabeticalByName") == by_name[:10]  # size defaults to 10
    assert album_names(world, "alphabeticalByName", size=0) == []
    assert len(album_names(world, "alphabeticalByName", size=10**9)) == ALL_ALBUMS  # clamped, not an error
    by_artist = album_names(world, "alphabeticalByArtist", size=50)
    # Articles are not ignored here: Beyoncé, Crystal Waters, Naughty by Nature, Padding Band, Queen x2, ...
    assert by_artist[:2] == ["I Am... Sasha Fierce", "Storyteller"]
    assert by_artist.index("A Night at the Opera") + 1 == by_artist.index("Jazz")
    assert len(album_names(world, "newest", size=50)) == ALL_ALBUMS
    random = album_names(world, "random", size=4)
    assert len(random) == 4 and set(random) <= set(by_name)
    for bad in (
        {"type": "noSuchType"},
        {"type": "newest", "size": "abc"},
        {"type": "newest", "offset": "-1"},
    ):
        assert error_code(world.rest("getAlbumList2", None, **bad)) == 0, bad
        assert error_code(world.rest("getAlbumList", None, **bad)) == 0, bad
    assert error_code(world.rest("getAlbumList2")) == 10


def test_by_year_and_genre(world: World) -> None:
    assert album_names(world, "byYear", fromYear=1970, toYear=1980) == ["A Night at the Opera", "Jazz"]
    # fromYear after toYear: newest first.
    assert album_names(world, "byYear", fromYear=1980, toYear=1970) == ["Jazz", "A Night at the Opera"]
    assert album_names(world, "byYear", fromYear=1990, toYear=1994) == ["19 Naughty III", "Storyteller"]
    assert album_names(world, "byYear", fromYear=2030, toYear=2040) == []
    assert error_code(world.rest("getAlbumList2", type="byYear", fromYear=1970)) == 10
    assert error_code(world.rest("getAlbumList2", type="byYear", fromYear="x", toYear=1)) == 0
    assert album_names(world, "byGenre", genre="Rock") == ["A Night at the Opera", "Help!", "Jazz"]
    assert album_names(world, "byGenre", genre="pop") == ["Help!", "I Am... Sasha Fierce"]
    assert album_names(world, "byGenre", genre="Lo-Fi") == []
    assert album_names(world, "byGenre", genre="Lo-Fi", who=world.other) == ["Demos"]
    assert error_code(world.rest("getAlbumList2", type="byGenre")) == 10


def test_personal_lists(world: World) -> None:
    s = world.seeded
    fan = world.new_listener()
    now = dt.datetime.now(dt.UTC)
    assert album_names(world, "highest", who=fan) == []
    assert album_names(world, "frequent", who=fan) == []
    assert album_names(world, "starred", who=fan) == []
    with world.c.db.write() as conn:
        conn.execute(
            sa.insert(ratings),
            [
                {
                    "user_id": fan.user_id,
                    "kind": "album",
                    "item_id": s.albums["Jazz"],
                    "rating": 3,
                    "updated_at": now,
                },
                {
                    "user_id": fan.user_id,
                    "kind": "album",
                    "item_id": s.albums["Help!"],
                    "rating": 5,
                    "updated_at": now,
                },
            ],
        )
    assert album_names(world, "highest", who=fan) == ["Help!", "Jazz"]
    plays = [ImportedPlay(s.tracks["Halo"], now - dt.timedelta(days=3, minutes=m), 200_000) for m in range(3)]
    plays.append(ImportedPlay(s.tracks["Eple"], now - dt.timedelta(hours=1), 200_000))
    world.c.history.import_plays(fan.user_id, plays)
    assert album_names(world, "frequent", who=fan) == ["I Am... Sasha Fierce", "Melody A.M."]
    assert album_names(world, "recent", who=fan) == ["Melody A.M.", "I Am... Sasha Fierce"]
    assert album_names(world, "recent") == []  # someone else's listening is not mine
    world.c.library.save(fan.user_id, "album", [s.albums["Storyteller"]])
    world.c.library.save(fan.user_id, "album", [s.albums["Jazz"]])
    starred = album_names(world, "starred", who=fan)
    assert set(starred) == {"Storyteller", "Jazz"}


def test_random_songs(world: World) -> None:
    songs = world.rest("getRandomSongs")["randomSongs"]["song"]
    assert len(songs) == 10 and len({s["id"] for s in songs}) == 10
    every = world.rest("getRandomSongs", size=10**6)["randomSongs"]["song"]
    assert len(every) == 39 and "Secret Demo" not in [s["title"] for s in every]
    assert len(world.rest("getRandomSongs", who=world.other, size=500)["randomSongs"]["song"]) == 40
    rock = world.rest("getRandomSongs", size=50, genre="Rock")["randomSongs"]["song"]
    assert {s["title"] for s in rock} == {
        "Bohemian Rhapsody",
        "Love of My Life",
        "Yesterday",
        "Don't Stop Me Now",
    }
    seventies = world.rest("getRandomSongs", size=50, fromYear=1970, toYear=1979)["randomSongs"]["song"]
    assert {s["title"] for s in seventies} == {"Bohemian Rhapsody", "Love of My Life", "Don't Stop Me Now"}
    assert world.rest("getRandomSongs", size=0)["randomSongs"].get("song", []) == []
    assert error_code(world.rest("getRandomSongs", size="abc")) == 0
    assert error_code(world.rest("getRandomSongs", fromYear="then")) == 0


def test_songs_by_genre(world: World) -> None:
    page = world.rest("getSongsByGenre", genre="Ambient", count=12)["songsByGenre"]["song"]
    assert [s["title"] for s in page] == [f"Padding Song {n}" for n in range(12)]
    rest = world.rest("getSongsByGenre", genre="Ambient", count=500, offset=12)["songsByGenre"]["song"]
    assert [s["title"] for s in rest] == [f"Padding Song {n}" for n in range(12, 30)]
    assert len(world.rest("getSongsByGenre", genre="ambient")["songsByGenre"]["song"]) == 10  # default count
    assert world.rest("getSongsByGenre", genre="Lo-Fi")["songsByGenre"].get("song", []) == []
    assert [
        s["title"]
        for s in world.rest("getSongsByGenre", who=world.other, genre="Lo-Fi")["songsByGenre"]["song"]
    ] == ["Secret Demo"]
    assert error_code(world.rest("getSongsByGenre")) == 10
    assert error_code(world.rest("getSongsByGenre", genre="Rock", count="abc")) == 0


def test_starred(world: World) -> None:
    s = world.seeded
    fan = world.new_listener()
    empty = world.rest("getStarred2", who=fan)["starred2"]
    assert all(not empty.get(k) for k in ("artist", "album", "song"))
    world.c.library.save(fan.user_id, "track", [s.tracks["Halo"], s.tracks["Yesterday"]])
    world.c.library.save(fan.user_id, "album", [s.albums["Jazz"]])
    world.c.library.follow(fan.user_id, [s.artists["Queen"]])
    two = world.rest("getStarred2", who=fan)["starred2"]
    assert {x["title"] for x in two["song"]} == {"Halo", "Yesterday"}
    assert all(x["starred"].endswith("Z") for x in two["song"])
    assert [a["name"] for a in two["album"]] == ["Jazz"] and two["album"][0]["songCount"] == 1
    assert [a["name"] for a in two["artist"]] == ["Queen"] and two["artist"][0]["albumCount"] == 2
    one = world.rest("getStarred", who=fan)["starred"]
    assert [a["title"] for a in one["album"]] == ["Jazz"] and one["album"][0]["isDir"] is True
    assert one["artist"] == [
        {"id": s.artists["Queen"], "name": "Queen", "starred": two["artist"][0]["starred"]}
    ] or (one["artist"][0]["name"] == "Queen" and "albumCount" not in one["artist"][0])
    xml = world.xml("getStarred2", who=fan)
    assert [e.tag for e in xml.find(f"{NS}starred2") or []] == [
        f"{NS}artist",
        f"{NS}album",
        f"{NS}song",
        f"{NS}song",
    ]
    # The owner may like their own private upload; nobody else sees it.
    world.c.library.save(world.other.user_id, "track", [s.tracks["Secret Demo"]])
    assert [x["title"] for x in world.rest("getStarred2", who=world.other)["starred2"]["song"]] == [
        "Secret Demo"
    ]


def test_now_playing(world: World) -> None:
    s = world.seeded
    listener = world.new_listener()
    now = dt.datetime.now(dt.UTC)
    world.c.history.set_now_playing(listener.user_id, s.tracks["Halo"], "DSub", now - dt.timedelta(minutes=1))
    world.c.history.set_now_playing(world.other.user_id, s.tracks["Secret Demo"], "Feishin", now)
    stale = world.new_listener()
    world.c.history.set_now_playing(stale.user_id, s.tracks["Eple"], "Tempo", now - dt.timedelta(minutes=10))
    try:
        entries = world.rest("getNowPlaying")["nowPlaying"]["entry"]
        halo = [e for e in entries if e["title"] == "Halo"]
        assert len(halo) == 1 and halo[0]["playerName"] == "DSub" and halo[0]["minutesAgo"] == 1
        assert halo[0]["username"] != listener.email  # another listener's e-mail is never shown
        titles = {e["title"] for e in entries}
        assert "Secret Demo" not in titles and "Eple" not in titles  # private; finished long ago
        mine = world.rest("getNowPlaying", who=listener)["nowPlaying"]["entry"]
        assert [e["username"] for e in mine if e["title"] == "Halo"] == [listener.email]
        theirs = world.rest("getNowPlaying", who=world.other)["nowPlaying"]["entry"]
        assert "Secret Demo" in {e["title"] for e in theirs}
        xml = world.xml("getNowPlaying")
        assert "Halo" in [e.get("title") for e in xml.findall(f"{NS}nowPlaying/{NS}entry")]
    finally:
        with world.c.db.write() as conn:
            conn.execute(sa.delete(now_playing))
