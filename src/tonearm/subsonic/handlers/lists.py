"""Album and song lists: getAlbumList(2) of every type, random songs, songs by genre, the
caller's starred items, and what everyone is playing now.

"Starred" is Tonearm's library: liked tracks, saved albums, followed artists. `highest`,
`frequent` and `recent` are the caller's own ratings and listening, not everyone's.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from tonearm.domains.accounts.tables import users
from tonearm.domains.catalog.tables import albums, artists, genres, track_genres, tracks
from tonearm.domains.history.tables import listening_scores, now_playing
from tonearm.domains.library.tables import album_saves, artist_follows, ratings, track_likes
from tonearm.subsonic import objects
from tonearm.subsonic.objects import visible_tracks
from tonearm.subsonic.protocol import GENERIC, Call, SubsonicError, method, missing

MAX_SIZE = 500
LIST_TYPES = (
    "random",
    "newest",
    "highest",
    "frequent",
    "recent",
    "alphabeticalByName",
    "alphabeticalByArtist",
    "starred",
    "byYear",
    "byGenre",
)


def _year_bound(call: Call, name: str) -> int:
    return call.params.int(name, lo=0, hi=9999)


def _genre_tracks(name: str) -> sa.Select[Any]:
    """Ids of the tracks carrying the genre `name` (any case: apps send it as they showed it)."""
    return (
        sa.select(track_genres.c.track_id)
        .join(genres, genres.c.id == track_genres.c.genre_id)
        .where(sa.func.lower(genres.c.name) == name.strip().lower())
    )


def _album_ids_query(call: Call, kind: str, size: int, offset: int) -> sa.Select[Any]:
    user_id = call.user_id
    q = objects.album_select(user_id)
    if kind == "random":
        return q.order_by(sa.func.random()).limit(size)
    if kind == "newest":
        q = q.order_by(albums.c.created_at.desc(), albums.c.id)
    elif kind == "alphabeticalByName":
        q = q.order_by(sa.func.lower(albums.c.name), albums.c.id)
    elif kind == "alphabeticalByArtist":
        q = q.order_by(
            sa.func.lower(artists.c.name), albums.c.release_date, sa.func.lower(albums.c.name), albums.c.id
        )
    elif kind == "highest":
        rated = (
            sa.select(ratings.c.item_id, ratings.c.rating, ratings.c.updated_at)
            .where(ratings.c.user_id == user_id, ratings.c.kind == "album")
            .subquery("rated")
        )
        q = q.join(rated, rated.c.item_id == albums.c.id).order_by(
            rated.c.rating.desc(), rated.c.updated_at.desc(), albums.c.id
        )
    elif kind in ("frequent", "recent"):
        listened = (
            sa.select(
                tracks.c.album_id,
                sa.func.sum(listening_scores.c.plays).label("plays"),
                sa.func.max(listening_scores.c.last_played_at).label("last"),
            )
            .join(tracks, tracks.c.id == listening_scores.c.item_id)
            .where(listening_scores.c.user_id == user_id, listening_scores.c.kind == "track")
            .group_by(tracks.c.album_id)
            .subquery("listened")
        )
        q = q.join(listened, listened.c.album_id == albums.c.id)
        if kind == "frequent":
            q = q.order_by(listened.c.plays.desc(), listened.c.last.desc(), albums.c.id)
        else:
            q = q.order_by(listened.c.last.desc(), albums.c.id)
    elif kind == "starred":
        saved = (
            sa.select(album_saves.c.album_id, album_saves.c.added_at)
            .where(album_saves.c.user_id == user_id)
            .subquery("saved")
        )
        q = q.join(saved, saved.c.album_id == albums.c.id).order_by(saved.c.added_at.desc(), albums.c.id)
    elif kind == "byYear":
        first, last = _year_bound(call, "fromYear"), _year_bound(call, "toYear")
        year = sa.func.substr(albums.c.release_date, 1, 4)
        q = q.where(year >= f"{min(first, last):04d}", year <= f"{max(first, last):04d}")
        # fromYear after toYear: the same years, newest first (the specification's example).
        q = q.order_by(year.desc() if first > last else year, sa.func.lower(albums.c.name), albums.c.id)
    elif kind == "byGenre":
        genre = call.params.req("genre")
        in_genre = (
            sa.select(tracks.c.album_id)
            .where(tracks.c.id.in_(_genre_tracks(genre)), visible_tracks(user_id))
            .distinct()
        )
        q = q.where(albums.c.id.in_(in_genre)).order_by(sa.func.lower(albums.c.name), albums.c.id)
    else:
        raise SubsonicError(GENERIC, f"Unknown list type {kind[:40]!r}; use one of {', '.join(LIST_TYPES)}")
    return q.limit(size).offset(offset)


def _album_list(call: Call) -> list[dict[str, Any]]:
    kind = call.params.opt("type")
    if not kind:
        raise missing("type")
    size = call.params.int("size", 10, hi=MAX_SIZE)
    offset = call.params.int("offset", 0)
    query = _album_ids_query(call, kind, size, offset)
    return objects.albums_from_query(call, query) if size else []


@method("getAlbumList")
def get_album_list(call: Call) -> dict[str, Any]:
    return {"albumList": {"album": [objects.album_child(call, a) for a in _album_list(call)]}}


@method("getAlbumList2")
def get_album_list2(call: Call) -> dict[str, Any]:
    return {"albumList2": {"album": _album_list(call)}}


@method("getRandomSongs")
def get_random_songs(call: Call) -> dict[str, Any]:
    size = call.params.int("size", 10, hi=MAX_SIZE)
    query = objects.song_select(call.user_id)
    if genre := call.params.opt("genre"):
        query = query.where(tracks.c.id.in_(_genre_tracks(genre)))
    year = sa.func.substr(sa.func.coalesce(tracks.c.release_date, albums.c.release_date), 1, 4)
    if (first := call.params.opt_int("fromYear", hi=9999)) is not None:
        query = query.where(year >= f"{first:04d}")
    if (last := call.params.opt_int("toYear", hi=9999)) is not None:
        query = query.where(year <= f"{last:04d}")
    songs = objects.songs_from_query(call, query.order_by(sa.func.random()).limit(size)) if size else []
    return {"randomSongs": {"song": songs}}


@method("getSongsByGenre")
def get_songs_by_genre(call: Call) -> dict[str, Any]:
    genre = call.params.req("genre")
    count = call.params.int("count", 10, hi=MAX_SIZE)
    offset = call.params.int("offset", 0)
    query = (
        objects.song_select(call.user_id)
        .where(tracks.c.id.in_(_genre_tracks(genre)))
        .order_by(albums.c.name, tracks.c.album_id, tracks.c.disc_number, tracks.c.track_number, tracks.c.id)
        .limit(count)
        .offset(offset)
    )
    return {"songsByGenre": {"song": objects.songs_from_query(call, query) if count else []}}


def _starred(call: Call) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The caller's followed artists, saved albums and liked songs, most recent first."""
    user_id = call.user_id
    with call.c.db.read() as conn:
        artist_ids = conn.execute(
            sa.select(artist_follows.c.artist_id)
            .where(artist_follows.c.user_id == user_id)
            .order_by(artist_follows.c.followed_at.desc(), artist_follows.c.artist_id)
        ).scalars()
        album_ids = conn.execute(
            sa.select(album_saves.c.album_id)
            .where(album_saves.c.user_id == user_id)
            .order_by(album_saves.c.added_at.desc(), album_saves.c.album_id)
        ).scalars()
        track_ids = conn.execute(
            sa.select(track_likes.c.track_id)
            .where(track_likes.c.user_id == user_id)
            .order_by(track_likes.c.added_at.desc(), track_likes.c.track_id)
        ).scalars()
        found = list(artist_ids), list(album_ids), list(track_ids)
    return (
        objects.artists_by_id(call, found[0]),
        objects.albums_by_id(call, found[1]),
        objects.songs(call, found[2]),
    )


@method("getStarred")
def get_starred(call: Call) -> dict[str, Any]:
    return {"starred": objects.folder_shapes(call, *_starred(call))}


@method("getStarred2")
def get_starred2(call: Call) -> dict[str, Any]:
    artist_list, album_list, song_list = _starred(call)
    return {"starred2": {"artist": artist_list, "album": album_list, "song": song_list}}


@method("getNowPlaying")
def get_now_playing(call: Call) -> dict[str, Any]:
    """What each listener's app said it is playing, while the track could still be playing.
    Other listeners are shown by display name: their login is their e-mail address."""
    now = dt.datetime.now(dt.UTC)
    with call.c.db.read() as conn:
        rows = conn.execute(
            sa.select(
                now_playing.c.user_id,
                now_playing.c.track_id,
                now_playing.c.client,
                now_playing.c.started_at,
                tracks.c.duration_ms,
                users.c.email,
                users.c.display_name,
            )
            .join(tracks, tracks.c.id == now_playing.c.track_id)
            .join(users, users.c.id == now_playing.c.user_id)
            .where(visible_tracks(call.user_id))
            .order_by(now_playing.c.started_at.desc(), now_playing.c.user_id)
        ).all()
    current = [r for r in rows if r.started_at + dt.timedelta(milliseconds=r.duration_ms) > now]
    songs = {s["id"]: s for s in objects.songs(call, [r.track_id for r in current])}
    entries = []
    for n, r in enumerate(current):
        song = songs.get(r.track_id)
        if song is None:
            continue
        entries.append(
            {
                **song,
                "username": r.email if r.user_id == call.user_id else r.display_name,
                "minutesAgo": max(0, int((now - r.started_at).total_seconds() // 60)),
                "playerId": n + 1,
                "playerName": r.client,
            }
        )
    return {"nowPlaying": {"entry": entries}}
