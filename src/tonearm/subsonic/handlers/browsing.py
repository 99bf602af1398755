"""Browsing: folders, indexes, artists, albums, songs, genres, and what is like what.

Tonearm has no folders on disk a client could walk, so the folder view is synthesised: one music
folder ("Music", id 1) holding every artist, an artist's folder holding their albums, an album's
holding its songs. Ids are the catalog's own (an artist, album and track never share one).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
import sqlalchemy as sa

from tonearm.domains.catalog.tables import albums, artists, genres, track_artists, track_genres, tracks
from tonearm.kernel.errors import TonearmError
from tonearm.subsonic import objects
from tonearm.subsonic.objects import IGNORED_ARTICLES, visible_tracks
from tonearm.subsonic.protocol import Call, method, not_found

MUSIC_FOLDER_ID = "1"
MUSIC_FOLDER_NAME = "Music"
IMAGE_SIZES = (("smallImageUrl", 64), ("mediumImageUrl", 300), ("largeImageUrl", 640))
MAX_COUNT = 500


@method("getMusicFolders")
def get_music_folders(call: Call) -> dict[str, Any]:
    return {"musicFolders": {"musicFolder": [{"id": int(MUSIC_FOLDER_ID), "name": MUSIC_FOLDER_NAME}]}}


def _check_folder(call: Call) -> None:
    folder = call.params.opt("musicFolderId")
    if folder not in (None, "", MUSIC_FOLDER_ID):
        raise not_found("Music folder")


def _all_artists(call: Call) -> list[dict[str, Any]]:
    return objects.artists_from_query(call, objects.artist_select(call.user_id))


@method("getIndexes")
def get_indexes(call: Call) -> dict[str, Any]:
    _check_folder(call)
    since = call.params.opt_int("ifModifiedSince")
    with call.c.db.read() as conn:
        newest = conn.execute(sa.select(sa.func.max(tracks.c.updated_at)).where(visible_tracks(call.user_id)))
        changed = newest.scalar()
    last_modified = int(changed.timestamp() * 1000) if changed else 0
    out: dict[str, Any] = {"lastModified": last_modified, "ignoredArticles": IGNORED_ARTICLES}
    if since is not None and since >= last_modified:
        return {"indexes": out}  # nothing new: the app keeps what it has
    groups = objects.by_index(_all_artists(call))
    out["index"] = [
        {"name": g["name"], "artist": [objects.artist_short(call, a) for a in g["artist"]]} for g in groups
    ]
    return {"indexes": out}


@method("getArtists")
def get_artists(call: Call) -> dict[str, Any]:
    _check_folder(call)
    return {"artists": {"ignoredArticles": IGNORED_ARTICLES, "index": objects.by_index(_all_artists(call))}}


def _artist(call: Call, artist_id: str) -> dict[str, Any]:
    found = objects.artists_by_id(call, [artist_id])
    if not found:
        raise not_found("Artist")
    return found[0]


def _albums_of(call: Call, artist_id: str) -> list[dict[str, Any]]:
    query = (
        objects.album_select(call.user_id)
        .where(albums.c.artist_id == artist_id)
        .order_by(albums.c.release_date, albums.c.name, albums.c.id)
    )
    return objects.albums_from_query(call, query)


def _album_songs(call: Call, album_id: str) -> list[dict[str, Any]]:
    query = (
        objects.song_select(call.user_id)
        .where(tracks.c.album_id == album_id)
        .order_by(tracks.c.disc_number, tracks.c.track_number, tracks.c.title, tracks.c.id)
    )
    return objects.songs_from_query(call, query)


@method("getMusicDirectory")
def get_music_directory(call: Call) -> dict[str, Any]:
    folder_id = call.params.req("id")
    if folder_id == MUSIC_FOLDER_ID:
        children = [
            objects.present(
                {
                    "id": a["id"],
                    "parent": MUSIC_FOLDER_ID,
                    "isDir": True,
                    "title": a["name"],
                    "artist": a["name"],
                    "coverArt": a.get("coverArt"),
                    "starred": a.get("starred"),
                    "artistId": a["id"],
                }
            )
            for g in objects.by_index(_all_artists(call))
            for a in g["artist"]
        ]
        return {"directory": {"id": MUSIC_FOLDER_ID, "name": MUSIC_FOLDER_NAME, "child": children}}
    if found := objects.artists_by_id(call, [folder_id]):
        artist = found[0]
        directory = {
            "id": artist["id"],
            "parent": MUSIC_FOLDER_ID,
            "name": artist["name"],
            "starred": artist.get("starred"),
            "userRating": artist.get("userRating"),
            "child": [objects.album_child(call, a) for a in _albums_of(call, folder_id)],
        }
        return {"directory": objects.present(directory)}
    if found := objects.albums_by_id(call, [folder_id]):
        album = found[0]
        directory = {
            "id": album["id"],
            "parent": album["artistId"],
            "name": album["name"],
            "starred": album.get("starred"),
            "userRating": album.get("userRating") or None,
            "playCount": album.get("playCount"),
            "child": _album_songs(call, folder_id),
        }
        return {"directory": objects.present(directory)}
    raise not_found("Directory")


@method("getArtist")
def get_artist(call: Call) -> dict[str, Any]:
    artist = _artist(call, call.params.req("id"))
    return {"artist": {**artist, "album": _albums_of(call, artist["id"])}}


@method("getAlbum")
def get_album(call: Call) -> dict[str, Any]:
    album = objects.album_with_songs(call, call.params.req("id"))
    if album is None:
        raise not_found("Album")
    return {"album": album}


@method("getSong")
def get_song(call: Call) -> dict[str, Any]:
    found = objects.songs(call, [call.params.req("id")])
    if not found:
        raise not_found("Song")
    return {"song": found[0]}


@method("getGenres")
def get_genres(call: Call) -> dict[str, Any]:
    query = (
        sa.select(
            genres.c.name,
            sa.func.count(sa.distinct(tracks.c.id)).label("songs"),
            sa.func.count(sa.distinct(tracks.c.album_id)).label("albums"),
        )
        .select_from(
            genres.join(track_genres, track_genres.c.genre_id == genres.c.id).join(
                tracks, tracks.c.id == track_genres.c.track_id
            )
        )
        .where(visible_tracks(call.user_id))
        .group_by(genres.c.id, genres.c.name)
        .order_by(genres.c.name)
    )
    with call.c.db.read() as conn:
        rows = conn.execute(query).all()
    return {
        "genres": {"genre": [{"songCount": r.songs, "albumCount": r.albums, "value": r.name} for r in rows]}
    }


# Information and similarity ------------------------------------------------------------------


def _resolve(call: Call, item_id: str) -> tuple[str, dict[str, Any]]:
    """What an id names for the caller: ("artist" | "album" | "song", its object); 70 if nothing."""
    if found := objects.artists_by_id(call, [item_id]):
        return "artist", found[0]
    if found := objects.albums_by_id(call, [item_id]):
        return "album", found[0]
    if found := objects.songs(call, [item_id]):
        return "song", found[0]
    raise not_found("Item")


def _image_urls(call: Call, image_id: str | None) -> dict[str, Any]:
    return {name: objects.image_url(call, image_id, size) for name, size in IMAGE_SIZES}


def _similar_artist_ids(call: Call, artist_id: str, count: int) -> list[str]:
    """The recommender's radio from this artist gives the artists it plays; the artists with the
    most tracks in this artist's genres fill the rest (and stand in before a model is trained)."""
    found: list[str] = []
    try:
        station = call.c.recs.radio(call.user_id, f"tonearm:artist:{artist_id}", limit=50, offset=0)
    except (TonearmError, ValueError, LookupError):
        station = {"items": []}
    for item in orjson.loads(orjson.dumps(station["items"])):
        for a in item.get("artists", ()):
            if a.get("id") and a["id"] != artist_id and a["id"] not in found:
                found.append(a["id"])
    if len(found) < count:
        mine = sa.select(track_genres.c.genre_id).join(
            track_artists, track_artists.c.track_id == track_genres.c.track_id
        )
        mine = mine.where(track_artists.c.artist_id == artist_id)
        neighbours = (
            sa.select(track_artists.c.artist_id, sa.func.count().label("n"))
            .select_from(
                track_genres.join(tracks, tracks.c.id == track_genres.c.track_id).join(
                    track_artists, track_artists.c.track_id == tracks.c.id
                )
            )
            .where(
                track_genres.c.genre_id.in_(mine.scalar_subquery()),
                track_artists.c.artist_id != artist_id,
                visible_tracks(call.user_id),
            )
            .group_by(track_artists.c.artist_id)
            .order_by(sa.desc("n"), track_artists.c.artist_id)
            .limit(count * 2 + 10)
        )
        with call.c.db.read() as conn:
            found += [i for i in conn.execute(neighbours).scalars() if i not in found]
    return found


def _artist_info(call: Call, id3: bool) -> dict[str, Any]:
    count = call.params.int("count", 20, hi=MAX_COUNT)
    kind, obj = _resolve(call, call.params.req("id"))
    artist = obj if kind == "artist" else _artist(call, obj["artistId"])
    with call.c.db.read() as conn:
        row = conn.execute(
            sa.select(artists.c.bio, artists.c.image_id).where(artists.c.id == artist["id"])
        ).one()
        image_id = (
            row.image_id
            or conn.execute(
                sa.select(albums.c.image_id)
                .where(albums.c.artist_id == artist["id"], albums.c.image_id.is_not(None))
                .order_by(albums.c.release_date.desc(), albums.c.id)
                .limit(1)
            ).scalar()
        )
    similar = (
        objects.artists_by_id(call, _similar_artist_ids(call, artist["id"], count))[:count] if count else []
    )
    info: dict[str, Any] = {"biography": row.bio or None, **_image_urls(call, image_id)}
    info["similarArtist"] = similar if id3 else [objects.artist_short(call, a) for a in similar]
    return objects.present(info)


@method("getArtistInfo")
def get_artist_info(call: Call) -> dict[str, Any]:
    return {"artistInfo": _artist_info(call, id3=False)}


@method("getArtistInfo2")
def get_artist_info2(call: Call) -> dict[str, Any]:
    return {"artistInfo2": _artist_info(call, id3=True)}


def _album_info(call: Call) -> dict[str, Any]:
    kind, obj = _resolve(call, call.params.req("id"))
    if kind == "artist":
        raise not_found("Album")
    album_id = obj["id"] if kind == "album" else obj["albumId"]
    with call.c.db.read() as conn:
        row = conn.execute(
            sa.select(albums.c.name, albums.c.release_date, albums.c.label, albums.c.image_id).where(
                albums.c.id == album_id
            )
        ).one()
    # Tonearm keeps no album notes: say what the catalog knows (when, on which label).
    facts = [
        f"Released {row.release_date}" if row.release_date else "",
        f"on {row.label}" if row.label else "",
    ]
    notes = " ".join(f for f in facts if f)
    return objects.present({"notes": (notes + ".") if notes else None, **_image_urls(call, row.image_id)})


@method("getAlbumInfo")
def get_album_info(call: Call) -> dict[str, Any]:
    return {"albumInfo": _album_info(call)}


@method("getAlbumInfo2")
def get_album_info2(call: Call) -> dict[str, Any]:
    return {"albumInfo": _album_info(call)}


def _radio_ids(call: Call, seed: str, count: int) -> list[str]:
    ids: list[str] = []
    offset = 0
    while len(ids) < count:
        try:
            page = call.c.recs.radio(call.user_id, seed, limit=50, offset=offset)
        except (TonearmError, ValueError, LookupError):
            break
        items = orjson.loads(orjson.dumps(page["items"]))
        ids += [i["id"] for i in items if i.get("id") not in ids]
        if page.get("next") is None or not items:
            break
        offset += 50
    return ids


def _genre_neighbour_ids(call: Call, track_ids: Iterable[str], exclude: set[str], count: int) -> list[str]:
    """Visible songs sharing a genre with these, most played first."""
    seed_genres = sa.select(track_genres.c.genre_id).where(track_genres.c.track_id.in_(list(track_ids)))
    query = (
        sa.select(tracks.c.id)
        .where(
            visible_tracks(call.user_id),
            tracks.c.id.in_(
                sa.select(track_genres.c.track_id).where(
                    track_genres.c.genre_id.in_(seed_genres.scalar_subquery())
                )
            ),
        )
        .order_by(tracks.c.play_count.desc(), tracks.c.id)
        .limit(count + len(exclude))
    )
    with call.c.db.read() as conn:
        return [i for i in conn.execute(query).scalars() if i not in exclude][:count]


def _similar_songs(call: Call) -> list[dict[str, Any]]:
    count = call.params.int("count", 50, hi=MAX_COUNT)
    kind, obj = _resolve(call, call.params.req("id"))
    if kind == "song":
        seed, seed_tracks = f"tonearm:track:{obj['id']}", [obj["id"]]
    else:
        artist_id = obj["id"] if kind == "artist" else obj["artistId"]
        seed = f"tonearm:artist:{artist_id}"
        with call.c.db.read() as conn:
            column = tracks.c.album_id if kind == "album" else track_artists.c.artist_id
            query = sa.select(tracks.c.id).join(track_artists, track_artists.c.track_id == tracks.c.id)
            seed_tracks = list(conn.execute(query.where(column == obj["id"]).distinct()).scalars())
    exclude = set(seed_tracks) if kind == "song" else set()
    ids = [i for i in _radio_ids(call, seed, count) if i not in exclude]
    if len(ids) < count and seed_tracks:
        ids += _genre_neighbour_ids(call, seed_tracks, exclude | set(ids), count - len(ids))
    return objects.songs(call, ids[:count])


@method("getSimilarSongs")
def get_similar_songs(call: Call) -> dict[str, Any]:
    return {"similarSongs": {"song": _similar_songs(call)}}


@method("getSimilarSongs2")
def get_similar_songs2(call: Call) -> dict[str, Any]:
    return {"similarSongs2": {"song": _similar_songs(call)}}


@method("getTopSongs")
def get_top_songs(call: Call) -> dict[str, Any]:
    name = call.params.req("artist")
    count = call.params.int("count", 50, hi=MAX_COUNT)
    by_artist = (
        sa.select(track_artists.c.track_id)
        .join(artists, artists.c.id == track_artists.c.artist_id)
        .where(sa.func.lower(artists.c.name) == name.strip().lower())
    )
    query = (
        objects.song_select(call.user_id)
        .where(tracks.c.id.in_(by_artist))
        .order_by(tracks.c.play_count.desc(), tracks.c.id)
        .limit(count)
    )
    return {"topSongs": {"song": objects.songs_from_query(call, query) if count else []}}
