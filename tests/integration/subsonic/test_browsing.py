"""Browsing methods on SQLite and PostgreSQL: folders, indexes, artists, albums, songs, genres,
artist / album information and similar / top songs, each validated against the XSD and the
OpenSubsonic schemas, with the caller's own stars, ratings and plays, and another listener's
private upload visible to its owner only."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from tests.integration.subsonic.conftest import World
from tests.subsonic import NS, error_code
from tonearm.domains.catalog.tables import artists
from tonearm.domains.history.service import ImportedPlay
from tonearm.domains.library.tables import ratings


def titles(songs: list[dict[str, Any]]) -> list[str]:
    return [s["title"] for s in songs]


def code(answer: dict[str, Any]) -> int | None:
    return error_code(answer)


def test_music_folders_and_indexes(world: World) -> None:
    folders = world.rest("getMusicFolders")["musicFolders"]["musicFolder"]
    assert folders == [{"id": 1, "name": "Music"}]
    indexes = world.rest("getIndexes")["indexes"]
    assert indexes["ignoredArticles"] == "The El La Los Las Le Les"
    assert indexes["lastModified"] > 0
    groups = {g["name"]: [a["name"] for a in g["artist"]] for g in indexes["index"]}
    # Articles are ignored ("The Beatles" under B), accents folded ("Röyksopp" under R).
    assert groups["B"] == ["The Beatles", "Beyoncé"]
    assert groups["D"] == ["The Dandy Warhols"]
    assert groups["R"] == ["Röyksopp"]
    assert groups["Q"] == ["Queen"]
    assert [g["name"] for g in indexes["index"]] == sorted(groups)
    everyone = [name for names in groups.values() for name in names]
    assert "Bedroom Artist" not in everyone  # only a private upload of someone else
    other_groups = world.rest("getIndexes", who=world.other)["indexes"]["index"]
    assert "Bedroom Artist" in [a["name"] for g in other_groups for a in g["artist"]]
    # Nothing changed since lastModified: no index at all.
    same = world.rest("getIndexes", ifModifiedSince=indexes["lastModified"])["indexes"]
    assert "index" not in same and same["lastModified"] == indexes["lastModified"]
    older = world.rest("getIndexes", ifModifiedSince=indexes["lastModified"] - 1)["indexes"]
    assert len(older["index"]) == len(indexes["index"])
    assert code(world.rest("getIndexes", ifModifiedSince="yesterday")) == 0
    assert code(world.rest("getIndexes", musicFolderId="7")) == 70


def test_artists_artist_and_album(world: World) -> None:
    s = world.seeded
    index = world.rest("getArtists")["artists"]
    assert index["ignoredArticles"] == "The El La Los Las Le Les"
    queen = next(a for g in index["index"] for a in g["artist"] if a["name"] == "Queen")
    assert queen == {
        **queen,
        "id": s.artists["Queen"],
        "albumCount": 2,
    }
    artist = world.rest("getArtist", id=s.artists["Queen"])["artist"]
    assert [a["name"] for a in artist["album"]] == ["A Night at the Opera", "Jazz"]  # by release date
    assert artist["album"][0]["songCount"] == 2 and artist["album"][0]["year"] == 1975
    album = world.rest("getAlbum", id=s.albums["A Night at the Opera"])["album"]
    assert album["name"] == "A Night at the Opera" and album["artist"] == "Queen"
    assert album["songCount"] == 2 and album["duration"] == 360 and album["genre"] == "Rock"
    assert titles(album["song"]) == ["Bohemian Rhapsody", "Love of My Life"]
    assert [x["parent"] for x in album["song"]] == [album["id"]] * 2
    assert album["song"][0]["artistId"] == s.artists["Queen"] and album["song"][0]["duration"] == 180
    padding = world.rest("getAlbum", id=s.albums["Padding Vol 1"])["album"]
    assert titles(padding["song"]) == [f"Padding Song {n}" for n in range(30)]  # track order
    # XML: the same album, songs as child elements in order.
    root = world.xml("getAlbum", id=s.albums["A Night at the Opera"])
    songs = root.findall(f"{NS}album/{NS}song")
    assert [e.get("title") for e in songs] == ["Bohemian Rhapsody", "Love of My Life"]
    song = world.rest("getSong", id=s.tracks["Halo"])["song"]
    assert song["title"] == "Halo" and song["album"] == "I Am... Sasha Fierce" and song["year"] == 2008
    assert song["genre"] == "Pop" and song["isDir"] is False


def test_personal_fields_follow_the_caller(world: World) -> None:
    s = world.seeded
    fan = world.new_listener()
    album_id = s.albums["A Night at the Opera"]
    world.c.library.save(fan.user_id, "track", [s.tracks["Love of My Life"]])
    world.c.library.save(fan.user_id, "album", [album_id])
    now = dt.datetime.now(dt.UTC)
    world.c.history.import_plays(
        fan.user_id,
        [
            ImportedPlay(s.tracks["Bohemian Rhapsody"], now - dt.timedelta(hours=h), 200_000)
            for h in range(1, 4)
        ],
    )
    with world.c.db.write() as conn:
        conn.execute(
            sa.insert(ratings),
            [
                {
                    "user_id": fan.user_id,
                    "kind": "track",
                    "item_id": s.tracks["Bohemian Rhapsody"],
                    "rating": 5,
                    "updated_at": now,
                },
                {
                    "user_id": fan.user_id,
                    "kind": "album",
                    "item_id": album_id,
                    "rating": 4,
                    "updated_at": now,
                },
            ],
        )
    for _ in range(2):  # the second answer comes from the album cache: the same personal fields
        album = world.rest("getAlbum", who=fan, id=album_id)["album"]
        rhapsody, love = album["song"]
        assert rhapsody["userRating"] == 5 and rhapsody["playCount"] == 3 and "starred" not in rhapsody
        assert rhapsody["played"].endswith("Z")
        assert love["starred"].endswith("Z") and love["playCount"] == 0 and "userRating" not in love
        assert album["starred"].endswith("Z") and album["userRating"] == 4 and album["playCount"] == 3
    # Someone else sees none of it.
    album = world.rest("getAlbum", id=album_id)["album"]
    assert all("starred" not in x and "userRating" not in x for x in album["song"])
    assert "starred" not in album and album["playCount"] == 0
    song = world.rest("getSong", who=fan, id=s.tracks["Bohemian Rhapsody"])["song"]
    assert song["userRating"] == 5 and song["playCount"] == 3
    directory = world.rest("getMusicDirectory", who=fan, id=album_id)["directory"]
    assert directory["starred"].endswith("Z") and directory["playCount"] == 3


def test_music_directory_walks_artist_album_song(world: World) -> None:
    s = world.seeded
    root = world.rest("getMusicDirectory", id="1")["directory"]
    assert root["name"] == "Music"
    assert s.artists["Queen"] in [c["id"] for c in root["child"]]
    artist = world.rest("getMusicDirectory", id=s.artists["Queen"])["directory"]
    assert artist["name"] == "Queen" and artist["parent"] == "1"
    assert [(c["title"], c["isDir"], c["parent"]) for c in artist["child"]] == [
        ("A Night at the Opera", True, s.artists["Queen"]),
        ("Jazz", True, s.artists["Queen"]),
    ]
    album = world.rest("getMusicDirectory", id=artist["child"][0]["id"])["directory"]
    assert album["parent"] == s.artists["Queen"] and album["name"] == "A Night at the Opera"
    assert [(c["title"], c["isDir"]) for c in album["child"]] == [
        ("Bohemian Rhapsody", False),
        ("Love of My Life", False),
    ]
    xml = world.xml("getMusicDirectory", id=s.artists["Queen"])
    assert [e.get("title") for e in xml.findall(f"{NS}directory/{NS}child")] == [
        "A Night at the Opera",
        "Jazz",
    ]


def test_private_upload_only_for_its_owner(world: World) -> None:
    s = world.seeded
    track, album, artist = s.tracks["Secret Demo"], s.albums["Demos"], s.artists["Bedroom Artist"]
    for method, item in [
        ("getSong", track),
        ("getAlbum", album),
        ("getArtist", artist),
        ("getMusicDirectory", album),
        ("getMusicDirectory", artist),
        ("getAlbumInfo2", album),
        ("getArtistInfo2", artist),
        ("getSimilarSongs2", track),
    ]:
        assert code(world.rest(method, id=item)) == 70, method
        assert code(world.rest(method, who=world.other, id=item)) is None, method
    assert world.rest("getSong", who=world.other, id=track)["song"]["title"] == "Secret Demo"
    assert titles(world.rest("getAlbum", who=world.other, id=album)["album"]["song"]) == ["Secret Demo"]
    genres = {g["value"]: g for g in world.rest("getGenres")["genres"]["genre"]}
    assert "Lo-Fi" not in genres
    other_genres = {g["value"]: g for g in world.rest("getGenres", who=world.other)["genres"]["genre"]}
    assert other_genres["Lo-Fi"]["songCount"] == 1


def test_errors(world: World) -> None:
    for method in (
        "getSong",
        "getAlbum",
        "getArtist",
        "getMusicDirectory",
        "getArtistInfo",
        "getArtistInfo2",
        "getAlbumInfo",
        "getAlbumInfo2",
        "getSimilarSongs",
        "getSimilarSongs2",
    ):
        assert code(world.rest(method)) == 10, method
        assert code(world.rest(method, id="0" * 22)) == 70, method
        assert code(world.rest(method, id="../../etc/passwd")) == 70, method
    assert code(world.rest("getTopSongs")) == 10
    assert code(world.rest("getSimilarSongs2", id=world.seeded.tracks["Halo"], count="abc")) == 0
    assert code(world.rest("getArtistInfo2", id=world.seeded.artists["Queen"], count="-1")) == 0


def test_genres_count_visible_tracks(world: World) -> None:
    genres = {g["value"]: g for g in world.rest("getGenres")["genres"]["genre"]}
    assert genres["Rock"] == {"value": "Rock", "songCount": 4, "albumCount": 3}
    assert genres["Ambient"] == {"value": "Ambient", "songCount": 30, "albumCount": 1}
    assert genres["Pop"]["songCount"] == 2
    xml = world.xml("getGenres")
    rock = next(e for e in xml.findall(f"{NS}genres/{NS}genre") if e.text == "Rock")
    assert rock.get("songCount") == "4" and rock.get("albumCount") == "3"


def test_artist_and_album_info(world: World) -> None:
    s = world.seeded
    with world.c.db.write() as conn:
        conn.execute(
            sa.update(artists).where(artists.c.id == s.artists["Queen"]).values(bio="British rock band.")
        )
    info = world.rest("getArtistInfo2", id=s.artists["Queen"])["artistInfo2"]
    assert info["biography"] == "British rock band."
    assert info["smallImageUrl"].endswith("/64") and info["largeImageUrl"].endswith("/640")
    assert info["mediumImageUrl"].endswith("/300")
    similar = [a["name"] for a in info["similarArtist"]]
    # Genre neighbours: the Beatles share Rock (and the recommender has no model here).
    assert "The Beatles" in similar and "Queen" not in similar and "Bedroom Artist" not in similar
    assert (
        len(world.rest("getArtistInfo2", id=s.artists["Queen"], count=1)["artistInfo2"]["similarArtist"]) == 1
    )
    assert world.rest("getArtistInfo2", id=s.artists["Queen"], count=0)["artistInfo2"]["similarArtist"] == []
    old = world.rest("getArtistInfo", id=s.artists["Queen"], includeNotPresent="true")["artistInfo"]
    assert [a["name"] for a in old["similarArtist"]] == similar and "albumCount" not in old["similarArtist"][
        0
    ]
    # A song's or an album's id stands for its artist.
    by_song = world.rest("getArtistInfo2", id=s.tracks["Halo"])["artistInfo2"]
    assert "biography" not in by_song and by_song["largeImageUrl"].endswith("/640")
    xml = world.xml("getArtistInfo2", id=s.artists["Queen"])
    assert xml.findtext(f"{NS}artistInfo2/{NS}biography") == "British rock band."
    album = world.rest("getAlbumInfo2", id=s.albums["A Night at the Opera"])["albumInfo"]
    assert album["notes"] == "Released 1975-10-31." and album["smallImageUrl"].endswith("/64")
    assert world.rest("getAlbumInfo", id=s.tracks["Halo"])["albumInfo"]["notes"] == "Released 2008-11-12."
    assert code(world.rest("getAlbumInfo", id=s.artists["Queen"])) == 70


def test_similar_and_top_songs(world: World) -> None:
    s = world.seeded
    similar = titles(
        world.rest("getSimilarSongs2", id=s.tracks["Bohemian Rhapsody"])["similarSongs2"]["song"]
    )
    assert "Bohemian Rhapsody" not in similar and "Secret Demo" not in similar
    assert {"Love of My Life", "Don't Stop Me Now", "Yesterday"} <= set(similar)
    assert len(world.rest("getSimilarSongs", id=s.tracks["Halo"], count=1)["similarSongs"]["song"]) == 1
    by_artist = titles(
        world.rest("getSimilarSongs2", id=s.artists["Queen"], count=10)["similarSongs2"]["song"]
    )
    assert len(by_artist) <= 10 and "Secret Demo" not in by_artist and by_artist
    assert world.rest("getSimilarSongs2", id=s.albums["Padding Vol 1"], count=5)["similarSongs2"]["song"]
    top = titles(world.rest("getTopSongs", artist="queen")["topSongs"]["song"])
    assert top == ["Bohemian Rhapsody", "Don't Stop Me Now", "Love of My Life"]  # most played first
    assert titles(world.rest("getTopSongs", artist="Queen", count=1)["topSongs"]["song"]) == [
        "Bohemian Rhapsody"
    ]
    assert (
        "song" not in world.rest("getTopSongs", artist="Nobody At All")["topSongs"]
        or not world.rest("getTopSongs", artist="Nobody At All")["topSongs"]["song"]
    )
    assert world.rest("getTopSongs", artist="Bedroom Artist")["topSongs"].get("song", []) == []
    assert titles(
        world.rest("getTopSongs", who=world.other, artist="Bedroom Artist")["topSongs"]["song"]
    ) == ["Secret Demo"]
    huge = world.rest("getTopSongs", artist="Padding Band", count=10**12)["topSongs"]["song"]
    assert len(huge) == 30
