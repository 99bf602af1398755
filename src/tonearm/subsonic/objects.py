"""Subsonic's objects (Child / song, AlbumID3, ArtistID3) read from the catalog, the library and
the listener's history: a read model, so a page of 500 songs costs a handful of queries, not 500.

Every reader takes the caller: a track is visible when it is ready and public, or the caller's own
private upload; an album or artist is visible when it has a visible track (an album made only of
someone's private uploads does not exist for anyone else). Per-listener fields (`starred`,
`userRating`, `playCount`, `played`) come from that listener's likes, saves, follows, ratings and
listening scores.

Writes never happen here: they go through the domains' services.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from tonearm.domains.catalog.service import CatalogService, tracks_visible_to
from tonearm.domains.catalog.tables import (
    albums,
    artists,
    genres,
    renditions,
    track_artists,
    track_genres,
    tracks,
)
from tonearm.domains.history.tables import listening_scores
from tonearm.domains.library.tables import album_saves, artist_follows, ratings, track_likes
from tonearm.kernel.cache import TTLCache
from tonearm.kernel.db import RawQuery
from tonearm.subsonic.protocol import Call, iso

REFERENCE_LUFS = -18.0  # ReplayGain 2.0's reference loudness
_CONTENT_TYPES = {
    "mp3": "audio/mpeg",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "opus": "audio/ogg",
    "m4a": "audio/mp4",
    "mp4": "audio/mp4",
    "aac": "audio/aac",
    "wav": "audio/wav",
    "aiff": "audio/aiff",
}


def visible_tracks(user_id: str) -> sa.ColumnElement[bool]:
    """Ready, and public or the caller's own upload."""
    return tracks_visible_to(user_id)


def visible_album_stats(user_id: str) -> sa.Subquery:
    """Per album: the caller's visible tracks' count, total length and newest change."""
    return (
        sa.select(
            tracks.c.album_id,
            sa.func.count().label("song_count"),
            sa.func.sum(tracks.c.duration_ms).label("duration_ms"),
            sa.func.min(tracks.c.created_at).label("created"),
        )
        .where(visible_tracks(user_id))
        .group_by(tracks.c.album_id)
        .subquery("visible_albums")
    )


def present(obj: dict[str, Any]) -> dict[str, Any]:
    """The object without its None fields: the JSON schemas allow no nulls (a missing `starred`
    means "not starred"), and the XML writer leaves them out anyway."""
    return {k: v for k, v in obj.items() if v is not None}


def year_of(date: str | None) -> int | None:
    if date and len(date) >= 4 and date[:4].isdigit():
        return int(date[:4])
    return None


def _chunks(ids: Sequence[str], n: int = 500) -> Iterable[Sequence[str]]:
    for i in range(0, len(ids), n):
        yield ids[i : i + n]


# Songs ----------------------------------------------------------------------------------------

_album_artist = artists.alias("album_artist")

SONG_COLUMNS = (
    tracks.c.id,
    tracks.c.title,
    tracks.c.album_id,
    tracks.c.duration_ms,
    tracks.c.track_number,
    tracks.c.disc_number,
    tracks.c.isrc,
    tracks.c.explicit,
    tracks.c.description,
    tracks.c.release_date,
    tracks.c.loudness_lufs,
    tracks.c.true_peak_dbtp,
    tracks.c.tempo_bpm,
    tracks.c.created_at,
    tracks.c.play_count,
    albums.c.name.label("album_name"),
    albums.c.release_date.label("album_date"),
    albums.c.image_id,
    albums.c.artist_id.label("album_artist_id"),
    _album_artist.c.name.label("album_artist_name"),
    renditions.c.size_bytes,
    renditions.c.container,
    renditions.c.content_type,
    renditions.c.bitrate_kbps,
)


def song_select(user_id: str) -> sa.Select[Any]:
    """The base query of visible songs with their album and original file; add filters, order
    and paging, then pass the result to `songs_from_rows`."""
    return (
        sa.select(*SONG_COLUMNS)
        .select_from(
            tracks.join(albums, albums.c.id == tracks.c.album_id)
            .join(_album_artist, _album_artist.c.id == albums.c.artist_id)
            .outerjoin(
                renditions, sa.and_(renditions.c.track_id == tracks.c.id, renditions.c.is_original.is_(True))
            )
        )
        .where(visible_tracks(user_id))
    )


_Build = Callable[[Call, sa.Connection, Sequence[sa.Row[Any]]], list[dict[str, Any]]]


def _by_id(
    call: Call, ids: Sequence[str], select: sa.Select[Any], id_column: sa.ColumnElement[str], build: _Build
) -> list[dict[str, Any]]:
    """Objects for `ids` in the order given, read 500 ids a statement from `select` (which keeps
    only what the caller may see); unknown and invisible ids are left out."""
    if not ids:
        return []
    rows: dict[str, sa.Row[Any]] = {}
    with call.c.db.read() as conn:
        for chunk in _chunks(list(dict.fromkeys(ids))):
            for row in conn.execute(select.where(id_column.in_(chunk))):
                rows[row.id] = row
        return build(call, conn, [rows[i] for i in ids if i in rows])


def songs(call: Call, track_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Songs in the order given; unknown and invisible ids are left out."""
    return _by_id(call, track_ids, song_select(call.user_id), tracks.c.id, _songs)


def songs_from_query(call: Call, query: sa.Select[Any]) -> list[dict[str, Any]]:
    """Songs from a `song_select(...)` with the caller's filters, order and paging."""
    with call.c.db.read() as conn:
        rows = conn.execute(query).all()
        return _songs(call, conn, rows)


def songs_in_id_order(call: Call, query: sa.Select[Any]) -> list[dict[str, Any]]:
    """Songs from a `song_select(...)` ordered by `tracks.id` (a page of a library sync): the
    tracks' artists and genres and the caller's stars, ratings and plays are read by the page's
    id range, a few fixed statements, instead of by lists of 500 ids."""
    with call.c.db.read() as conn:
        rows = conn.execute(query).all()
        if not rows:
            return []
        return _songs(call, conn, rows, id_range=(rows[0].id, rows[-1].id))


def _songs(
    call: Call, conn: sa.Connection, rows: Sequence[sa.Row[Any]], id_range: tuple[str, str] | None = None
) -> list[dict[str, Any]]:
    if not rows:
        return []
    r: Any
    user_id = call.user_id
    track_artist_names: dict[str, list[tuple[str, str]]] = {}
    track_genre_names: dict[str, list[str]] = {}
    starred: dict[str, dt.datetime] = {}
    rated: dict[str, int] = {}
    played: dict[str, tuple[int, dt.datetime]] = {}
    batches: Iterable[Any] = [id_range] if id_range else _chunks(list(dict.fromkeys(r.id for r in rows)))

    for batch in batches:

        def within(column: sa.ColumnElement[str], batch: Any = batch) -> sa.ColumnElement[bool]:
            return column.between(*batch) if id_range else column.in_(batch)

        for r in conn.execute(
            sa.select(track_artists.c.track_id, artists.c.id, artists.c.name)
            .join(artists, artists.c.id == track_artists.c.artist_id)
            .where(within(track_artists.c.track_id))
            .order_by(track_artists.c.track_id, track_artists.c.position)
        ):
            track_artist_names.setdefault(r.track_id, []).append((r.id, r.name))
        for r in conn.execute(
            sa.select(track_genres.c.track_id, genres.c.name)
            .join(genres, genres.c.id == track_genres.c.genre_id)
            .where(within(track_genres.c.track_id))
            .order_by(track_genres.c.track_id, genres.c.name)
        ):
            track_genre_names.setdefault(r.track_id, []).append(r.name)
        # The caller's likes, ratings and plays of these tracks in one round trip.
        personal = sa.union_all(
            sa.select(
                sa.literal_column("'like'").label("kind"),
                track_likes.c.track_id.label("item_id"),
                sa.literal_column("0").label("n"),
                track_likes.c.added_at.label("at"),
            ).where(track_likes.c.user_id == user_id, within(track_likes.c.track_id)),
            sa.select(sa.literal_column("'rate'"), ratings.c.item_id, ratings.c.rating, sa.null()).where(
                ratings.c.user_id == user_id, ratings.c.kind == "track", within(ratings.c.item_id)
            ),
            sa.select(
                sa.literal_column("'play'"),
                listening_scores.c.item_id,
                listening_scores.c.plays,
                listening_scores.c.last_played_at,
            ).where(
                listening_scores.c.user_id == user_id,
                listening_scores.c.kind == "track",
                within(listening_scores.c.item_id),
            ),
        )
        for kind, item_id, n, at in conn.execute(personal):
            if kind == "like":
                starred[item_id] = at
            elif kind == "rate":
                rated[item_id] = n
            else:
                played[item_id] = (n, at)
    os = call.os
    out = []
    for r in rows:
        i = r.id
        names = track_artist_names.get(i) or [(r.album_artist_id, r.album_artist_name)]
        out.append(
            _song_json(
                os, r, names, track_genre_names.get(i, []), starred.get(i), rated.get(i), played.get(i)
            )
        )
    return out


def song_json(
    call: Call,
    r: sa.Row[Any],
    artist_names: list[tuple[str, str]],
    genre_names: list[str],
    starred: dt.datetime | None,
    rating: int | None,
    played: tuple[int, dt.datetime] | None,
) -> dict[str, Any]:
    return _song_json(call.os, r, artist_names, genre_names, starred, rating, played)


def _song_json(
    os: bool,
    r: Any,
    artist_names: list[tuple[str, str]],
    genre_names: list[str],
    starred: dt.datetime | None,
    rating: int | None,
    played: tuple[int, dt.datetime] | None,
) -> dict[str, Any]:
    # Written for speed (a library sync builds 500 of these per page): optional fields are added
    # only when set, instead of filtering None values afterwards.
    suffix = (r.container or "mp3").lower()
    duration_ms = r.duration_ms
    size = r.size_bytes
    bitrate = r.bitrate_kbps or 0
    if not bitrate and size and duration_ms:  # lossless: the file's average
        bitrate = round(size * 8 / duration_ms)
    first_artist = artist_names[0]
    artist_display = first_artist[1] if len(artist_names) == 1 else ", ".join(n for _, n in artist_names)
    album_name = r.album_name
    title = r.title
    track_number = r.track_number
    song: dict[str, Any] = {
        "id": r.id,
        "parent": r.album_id,
        "isDir": False,
        "title": title,
        "album": album_name,
        "artist": artist_display,
        "track": track_number,
    }
    year = year_of(r.release_date) or year_of(r.album_date)
    if year is not None:
        song["year"] = year
    if genre_names:
        song["genre"] = genre_names[0]
    if r.image_id is not None:
        song["coverArt"] = r.image_id
    if size is not None:
        song["size"] = size
    song["contentType"] = r.content_type or _CONTENT_TYPES.get(suffix, "application/octet-stream")
    song["suffix"] = suffix
    song["duration"] = max(1, round(duration_ms / 1000)) if duration_ms else 0
    if bitrate:
        song["bitRate"] = bitrate
    # Synthesised (there is no music folder on disk a client could read): artist/album/file.
    song["path"] = (
        f"{_path_part(r.album_artist_name)}/{_path_part(album_name)}/"
        f"{track_number:02d} - {_path_part(title)}.{suffix}"
    )
    song["isVideo"] = False
    if rating is not None:
        song["userRating"] = rating
    song["playCount"] = played[0] if played else 0
    song["discNumber"] = r.disc_number
    song["created"] = fast_iso(r.created_at)
    if starred is not None:
        song["starred"] = fast_iso(starred)
    song["albumId"] = r.album_id
    song["artistId"] = first_artist[0]
    song["type"] = "music"
    if os:
        if played:
            song["played"] = fast_iso(played[1])
        song["bpm"] = round(r.tempo_bpm) if r.tempo_bpm else 0
        song["comment"] = r.description or ""
        song["sortName"] = ""
        song["mediaType"] = "song"
        song["musicBrainzId"] = ""
        song["isrc"] = [r.isrc] if r.isrc else []
        song["genres"] = [{"name": g} for g in genre_names]
        song["artists"] = [{"id": i, "name": n} for i, n in artist_names]
        song["displayArtist"] = artist_display
        song["albumArtists"] = [{"id": r.album_artist_id, "name": r.album_artist_name}]
        song["displayAlbumArtist"] = r.album_artist_name
        song["contributors"] = []
        song["displayComposer"] = ""
        song["moods"] = []
        song["explicitStatus"] = "explicit" if r.explicit else ""
        if r.loudness_lufs is not None:
            gain: dict[str, Any] = {"trackGain": round(REFERENCE_LUFS - r.loudness_lufs, 2)}
            if r.true_peak_dbtp is not None:
                gain["trackPeak"] = round(10 ** (r.true_peak_dbtp / 20), 6)
            song["replayGain"] = gain
    return song


def fast_iso(value: dt.datetime) -> str:
    """`iso()` for the UTC datetimes the database gives (a C isoformat instead of strftime)."""
    if value.utcoffset() == _ZERO:
        return value.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
    return iso(value)


_ZERO = dt.timedelta(0)


def _path_part(name: str) -> str:
    return name.replace("/", "_").replace("\\", "_")[:120] or "_"


# Albums ---------------------------------------------------------------------------------------


def album_select(user_id: str) -> sa.Select[Any]:
    """Visible albums with the caller's song count and length; add filters, order and paging."""
    stats = visible_album_stats(user_id)
    return sa.select(
        albums.c.id,
        albums.c.name,
        albums.c.artist_id,
        albums.c.album_type,
        albums.c.release_date,
        albums.c.label,
        albums.c.image_id,
        albums.c.created_at,
        artists.c.name.label("artist_name"),
        stats.c.song_count,
        stats.c.duration_ms,
    ).select_from(
        albums.join(stats, stats.c.album_id == albums.c.id).join(artists, artists.c.id == albums.c.artist_id)
    )


def albums_by_id(call: Call, album_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Albums in the order given; unknown and invisible ids are left out."""
    return _by_id(call, album_ids, album_select(call.user_id), albums.c.id, _albums)


def albums_from_query(call: Call, query: sa.Select[Any]) -> list[dict[str, Any]]:
    with call.c.db.read() as conn:
        return _albums(call, conn, conn.execute(query).all())


def _albums(call: Call, conn: sa.Connection, rows: Sequence[sa.Row[Any]]) -> list[dict[str, Any]]:
    if not rows:
        return []
    r: Any
    ids = [r.id for r in rows]
    user_id = call.user_id
    saved: dict[str, dt.datetime] = {}
    rated: dict[str, int] = {}
    plays: dict[str, tuple[int, dt.datetime | None]] = {}
    album_genres: dict[str, list[str]] = {}
    for chunk in _chunks(ids):
        for r in conn.execute(
            sa.select(album_saves.c.album_id, album_saves.c.added_at).where(
                album_saves.c.user_id == user_id, album_saves.c.album_id.in_(chunk)
            )
        ):
            saved[r.album_id] = r.added_at
        for r in conn.execute(
            sa.select(ratings.c.item_id, ratings.c.rating).where(
                ratings.c.user_id == user_id, ratings.c.kind == "album", ratings.c.item_id.in_(chunk)
            )
        ):
            rated[r.item_id] = r.rating
        for r in conn.execute(
            sa.select(
                tracks.c.album_id,
                sa.func.sum(listening_scores.c.plays).label("plays"),
                sa.func.max(listening_scores.c.last_played_at).label("last"),
            )
            .join(tracks, tracks.c.id == listening_scores.c.item_id)
            .where(
                listening_scores.c.user_id == user_id,
                listening_scores.c.kind == "track",
                tracks.c.album_id.in_(chunk),
            )
            .group_by(tracks.c.album_id)
        ):
            plays[r.album_id] = (int(r.plays or 0), r.last)
        for r in conn.execute(
            sa.select(tracks.c.album_id, genres.c.name)
            .distinct()
            .join(track_genres, track_genres.c.track_id == tracks.c.id)
            .join(genres, genres.c.id == track_genres.c.genre_id)
            .where(tracks.c.album_id.in_(chunk), visible_tracks(user_id))
            .order_by(tracks.c.album_id, genres.c.name)
        ):
            album_genres.setdefault(r.album_id, []).append(r.name)
    return [
        album_json(call, r, album_genres.get(r.id, []), saved.get(r.id), rated.get(r.id), plays.get(r.id))
        for r in rows
    ]


def album_json(
    call: Call,
    r: Any,
    genre_names: list[str],
    starred: dt.datetime | None,
    rating: int | None,
    plays: tuple[int, dt.datetime | None] | None,
) -> dict[str, Any]:
    album: dict[str, Any] = {
        "id": r.id,
        "name": r.name,
        "artist": r.artist_name,
        "artistId": r.artist_id,
        "coverArt": r.image_id,
        "songCount": int(r.song_count or 0),
        "duration": round((r.duration_ms or 0) / 1000),
        "playCount": plays[0] if plays else 0,
        "created": iso(r.created_at),
        "starred": iso(starred) if starred else None,
        "year": year_of(r.release_date),
        "genre": genre_names[0] if genre_names else None,
    }
    if call.os:
        date = (r.release_date or "").split("-")
        release: dict[str, int] = {}
        for key, part in zip(("year", "month", "day"), date, strict=False):
            if part.isdigit():
                release[key] = int(part)
        album.update(
            {
                "played": iso(plays[1]) if plays and plays[1] else None,
                "userRating": rating,
                "recordLabels": [{"name": r.label}] if r.label else [],
                "musicBrainzId": "",
                "genres": [{"name": g} for g in genre_names],
                "artists": [{"id": r.artist_id, "name": r.artist_name}],
                "displayArtist": r.artist_name,
                "releaseTypes": [str(r.album_type).capitalize()],
                "moods": [],
                "sortName": "",
                "originalReleaseDate": release or None,
                "releaseDate": release or None,
                "isCompilation": r.album_type == "compilation",
                "explicitStatus": "",
                "discTitles": [],
            }
        )
    return present(album)


# Artists --------------------------------------------------------------------------------------


def artist_select(user_id: str) -> sa.Select[Any]:
    """Artists with at least one visible album (as its album artist), with the album count."""
    stats = visible_album_stats(user_id)
    counts = (
        sa.select(albums.c.artist_id, sa.func.count().label("album_count"))
        .join(stats, stats.c.album_id == albums.c.id)
        .group_by(albums.c.artist_id)
        .subquery("artist_albums")
    )
    return sa.select(artists.c.id, artists.c.name, artists.c.image_id, counts.c.album_count).select_from(
        artists.join(counts, counts.c.artist_id == artists.c.id)
    )


def artists_by_id(call: Call, artist_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Artists in the order given; unknown and invisible ids are left out."""
    return _by_id(call, artist_ids, artist_select(call.user_id), artists.c.id, _artists)


def artists_from_query(call: Call, query: sa.Select[Any]) -> list[dict[str, Any]]:
    with call.c.db.read() as conn:
        return _artists(call, conn, conn.execute(query).all())


def _artists(call: Call, conn: sa.Connection, rows: Sequence[sa.Row[Any]]) -> list[dict[str, Any]]:
    if not rows:
        return []
    followed: dict[str, dt.datetime] = {}
    rated: dict[str, int] = {}
    for chunk in _chunks([r.id for r in rows]):
        for r in conn.execute(
            sa.select(artist_follows.c.artist_id, artist_follows.c.followed_at).where(
                artist_follows.c.user_id == call.user_id, artist_follows.c.artist_id.in_(chunk)
            )
        ):
            followed[r.artist_id] = r.followed_at
        for r in conn.execute(
            sa.select(ratings.c.item_id, ratings.c.rating).where(
                ratings.c.user_id == call.user_id, ratings.c.kind == "artist", ratings.c.item_id.in_(chunk)
            )
        ):
            rated[r.item_id] = r.rating
    return [artist_json(call, r, followed.get(r.id), rated.get(r.id)) for r in rows]


def artist_json(
    call: Call, r: sa.Row[Any], starred: dt.datetime | None, rating: int | None = None
) -> dict[str, Any]:
    artist: dict[str, Any] = {
        "id": r.id,
        "name": r.name,
        "coverArt": r.image_id,
        "albumCount": int(r.album_count or 0),
        "starred": iso(starred) if starred else None,
    }
    if call.os:
        artist.update(
            {
                "artistImageUrl": image_url(call, r.image_id),
                "musicBrainzId": "",
                "sortName": "",
                "roles": ["albumartist"],
            }
        )
        if rating:
            artist["userRating"] = rating
    return present(artist)


def image_url(call: Call, image_id: str | None, size: int = 640) -> str | None:
    """Cover images are public (like Spotify's CDN URLs): an app can show them without a key."""
    if not image_id:
        return None
    return f"{call.c.settings.public_url.rstrip('/')}/images/{image_id}/{size}"


# Indexes and folder views ---------------------------------------------------------------------

IGNORED_ARTICLES = "The El La Los Las Le Les"
_ARTICLES = tuple(a.lower() + " " for a in IGNORED_ARTICLES.split())


def sort_name(name: str) -> str:
    """The name as indexes sort it: a leading article left out ("The Beatles" under B)."""
    stripped = name.strip()
    lowered = stripped.lower()
    for article in _ARTICLES:
        if lowered.startswith(article) and len(stripped) > len(article):
            return stripped[len(article) :].lstrip()
    return stripped


def index_letter(name: str) -> str:
    """The index an artist is listed under: the first letter of its sort name without accents
    ("Röyksopp" under R), or "#" for digits and symbols."""
    first = unicodedata.normalize("NFKD", sort_name(name)[:1])[:1].upper()
    return first if first.isalpha() and first.isascii() else "#"


def by_index(items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Artists grouped by `index_letter`, letters in order and "#" last, names sorted within."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for item in sorted(items, key=lambda a: (sort_name(a["name"]).casefold(), a["id"])):
        groups.setdefault(index_letter(item["name"]), []).append(item)
    return [{"name": k, "artist": groups[k]} for k in sorted(groups, key=lambda k: (k == "#", k))]


def artist_short(call: Call, artist: dict[str, Any]) -> dict[str, Any]:
    """The older `Artist` shape (getIndexes, getStarred, search2) from an ArtistID3 object."""
    out = {"id": artist["id"], "name": artist["name"], "starred": artist.get("starred")}
    if call.os:
        out["artistImageUrl"] = artist.get("artistImageUrl")
        out["userRating"] = artist.get("userRating")
    return present(out)


def album_child(call: Call, album: dict[str, Any]) -> dict[str, Any]:
    """An album as a folder (`Child` with isDir): the shape of getAlbumList, getStarred, search2
    and an artist's getMusicDirectory. Its parent is the artist's folder."""
    out: dict[str, Any] = {
        "id": album["id"],
        "parent": album.get("artistId"),
        "isDir": True,
        "title": album["name"],
        "album": album["name"],
        "artist": album.get("artist"),
        "year": album.get("year"),
        "genre": album.get("genre"),
        "coverArt": album.get("coverArt"),
        "duration": album.get("duration"),
        "playCount": album.get("playCount"),
        "created": album.get("created"),
        "starred": album.get("starred"),
        "albumId": album["id"],
        "artistId": album.get("artistId"),
    }
    if call.os:
        out["userRating"] = album.get("userRating") or None
        out["played"] = album.get("played")
        out["mediaType"] = "album"
        out["sortName"] = ""
    return present(out)


# getAlbum's cache ------------------------------------------------------------------------------
#
# getAlbum is what every app calls when a listener opens an album: its non-personal part (the
# album, its ready tracks with owner and visibility, each song already as a dict) is kept per
# album; a request filters the tracks the caller may see and adds their own stars, ratings and
# plays, read in one precompiled query. A change to the catalog in this process clears it (the
# catalog's on_invalidate); other processes' copies expire after ALBUM_CACHE_TTL_S, as the
# catalog's own caches do.

ALBUM_CACHE_TTL_S = 30.0
ALBUM_CACHE_SIZE = 4000  # ~12 KB an album of 10 songs: ~50 MB at most


@dataclass(frozen=True, slots=True)
class _CachedSong:
    id: str
    owner: str | None
    public: bool
    duration_ms: int
    genres: tuple[str, ...]
    # The song's first `xml_fields` fields are the XML answer's (OpenSubsonic's come last).
    xml_fields: int

    def visible_to(self, user_id: str) -> bool:
        return self.public or self.owner == user_id


@dataclass(frozen=True, slots=True)
class _CachedAlbum:
    row: _AlbumRow  # the album's columns; song_count and duration_ms are filled per caller
    songs: tuple[_CachedSong, ...]  # in disc / track order
    # The songs without per-listener fields, as for call.os, as one JSON array: a third of the
    # memory of the dicts, and orjson makes them again faster than they could be copied.
    songs_json: bytes


@dataclass(slots=True)
class _AlbumRow:
    id: str
    name: str
    artist_id: str
    album_type: str
    release_date: str | None
    label: str | None
    image_id: str | None
    created_at: dt.datetime
    artist_name: str
    song_count: int = 0
    duration_ms: int = 0


class ReadCaches:
    """This process's caches of the Subsonic read model, cleared on any catalog change."""

    def __init__(self) -> None:
        self.albums: TTLCache[str, _CachedAlbum] = TTLCache(ALBUM_CACHE_SIZE, ALBUM_CACHE_TTL_S)
        # Where the next page of an empty-query search3 starts, as (user, kind, offset) -> the
        # last id of the page before: apps sync a library page after page, and a keyset read
        # stays as fast at offset 99,500 as at 0 (OFFSET would walk every row before it).
        self.cursors: TTLCache[tuple[str, str, int], str] = TTLCache(10_000, 600.0)

    @classmethod
    def following(cls, catalog: CatalogService) -> ReadCaches:
        """New caches that any catalog change made through `catalog` clears."""
        made = cls()
        catalog.on_invalidate(made.clear)
        return made

    def clear(self, _track_id: str = "") -> None:
        self.albums.clear()
        self.cursors.clear()


def caches(call: Call) -> ReadCaches:
    """The caches of the app serving `call` (made with it: see routes.read_caches)."""
    found: ReadCaches = call.request.app.state.subsonic_caches
    return found


# getAlbum's misses, built once: SQLAlchemy then reuses their compiled SQL, and a miss costs
# four executions instead of four constructions and four executions (a third of its time).
_ALBUM: sa.BindParameter[str] = sa.bindparam("album_id", type_=sa.String())
_ALBUM_HEAD = (
    sa.select(
        albums.c.id,
        albums.c.name,
        albums.c.artist_id,
        albums.c.album_type,
        albums.c.release_date,
        albums.c.label,
        albums.c.image_id,
        albums.c.created_at,
        artists.c.name.label("artist_name"),
    )
    .join(artists, artists.c.id == albums.c.artist_id)
    .where(albums.c.id == _ALBUM)
)
_ALBUM_SONGS = (
    sa.select(*SONG_COLUMNS, tracks.c.owner_user_id, tracks.c.visibility)
    .select_from(
        tracks.join(albums, albums.c.id == tracks.c.album_id)
        .join(_album_artist, _album_artist.c.id == albums.c.artist_id)
        .outerjoin(
            renditions,
            sa.and_(renditions.c.track_id == tracks.c.id, renditions.c.is_original.is_(True)),
        )
    )
    .where(tracks.c.album_id == _ALBUM, tracks.c.status == "ready")
    .order_by(tracks.c.disc_number, tracks.c.track_number, tracks.c.title, tracks.c.id)
)
_ALBUM_TRACK_IDS = sa.select(tracks.c.id).where(tracks.c.album_id == _ALBUM, tracks.c.status == "ready")
_ALBUM_ARTISTS = (
    sa.select(track_artists.c.track_id, artists.c.id, artists.c.name)
    .join(artists, artists.c.id == track_artists.c.artist_id)
    .where(track_artists.c.track_id.in_(_ALBUM_TRACK_IDS.scalar_subquery()))
    .order_by(track_artists.c.track_id, track_artists.c.position)
)
_ALBUM_GENRES = (
    sa.select(track_genres.c.track_id, genres.c.name)
    .join(genres, genres.c.id == track_genres.c.genre_id)
    .where(track_genres.c.track_id.in_(_ALBUM_TRACK_IDS.scalar_subquery()))
    .order_by(track_genres.c.track_id, genres.c.name)
)


def _load_album(call: Call, album_id: str) -> _CachedAlbum | None:
    r: Any
    bound = {"album_id": album_id}
    with call.c.db.read() as conn:
        head = conn.execute(_ALBUM_HEAD, bound).first()
        if head is None:
            return None
        rows = conn.execute(_ALBUM_SONGS, bound).all()
        names: dict[str, list[tuple[str, str]]] = {}
        genre_names: dict[str, list[str]] = {}
        if rows:
            for r in conn.execute(_ALBUM_ARTISTS, bound):
                names.setdefault(r.track_id, []).append((r.id, r.name))
            for r in conn.execute(_ALBUM_GENRES, bound):
                genre_names.setdefault(r.track_id, []).append(r.name)
    songs_: list[_CachedSong] = []
    dicts: list[dict[str, Any]] = []
    for r in rows:
        artist_names = names.get(r.id) or [(r.album_artist_id, r.album_artist_name)]
        g = genre_names.get(r.id, [])
        full = _song_json(True, r, artist_names, g, None, None, None)
        # Built without personal fields, OpenSubsonic's part starts at `bpm`: what comes before
        # is the XML answer's.
        xml_fields = list(full).index("bpm")
        songs_.append(
            _CachedSong(
                r.id, r.owner_user_id, r.visibility == "public", r.duration_ms or 0, tuple(g), xml_fields
            )
        )
        dicts.append(full)
    album = _AlbumRow(
        head.id,
        head.name,
        head.artist_id,
        head.album_type,
        head.release_date,
        head.label,
        head.image_id,
        head.created_at,
        head.artist_name,
    )
    return _CachedAlbum(album, tuple(songs_), orjson.dumps(dicts))


# The caller's stars, ratings and plays for one album and its tracks, in one round trip.
_PERSONAL = RawQuery(
    "SELECT 'like', l.track_id, 0, l.added_at FROM track_likes l JOIN tracks t ON t.id = l.track_id"
    " WHERE l.user_id = :u AND t.album_id = :a"
    " UNION ALL SELECT 'rate', r.item_id, r.rating, NULL FROM ratings r JOIN tracks t ON t.id = r.item_id"
    " WHERE r.user_id = :u AND r.kind = 'track' AND t.album_id = :a"
    " UNION ALL SELECT 'play', s.item_id, s.plays, s.last_played_at FROM listening_scores s"
    " JOIN tracks t ON t.id = s.item_id WHERE s.user_id = :u AND s.kind = 'track' AND t.album_id = :a"
    " UNION ALL SELECT 'album_rate', r.item_id, r.rating, NULL FROM ratings r"
    " WHERE r.user_id = :u AND r.kind = 'album' AND r.item_id = :a"
    " UNION ALL SELECT 'save', s.album_id, 0, s.added_at FROM album_saves s"
    " WHERE s.user_id = :u AND s.album_id = :a"
)


def _utc(value: Any) -> dt.datetime:
    # A driver cursor gives SQLite's stored text, or PostgreSQL's naive UTC timestamp.
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime)
    return value.replace(tzinfo=dt.UTC)


def album_with_songs(call: Call, album_id: str) -> dict[str, Any] | None:
    """getAlbum's AlbumID3 with its songs in disc / track order, or None when the album does not
    exist for the caller (unknown, or made only of someone else's private uploads)."""
    cache = caches(call).albums
    cached = cache.get(album_id)
    if cached is None:
        cached = _load_album(call, album_id)
        if cached is None:
            return None
        cache.put(album_id, cached)
    user_id = call.user_id
    visible = [s for s in cached.songs if s.visible_to(user_id)]
    if not visible:
        return None
    liked: dict[str, dt.datetime] = {}
    rated: dict[str, int] = {}
    played: dict[str, tuple[int, dt.datetime]] = {}
    album_rating: int | None = None
    saved: dt.datetime | None = None
    with call.c.db.raw() as raw:
        for kind, item_id, number, at in _PERSONAL.run(
            raw, {"u": user_id, "a": album_id}, sqlite=call.c.db.sqlite
        ):
            if kind == "like":
                liked[item_id] = _utc(at)
            elif kind == "rate":
                rated[item_id] = int(number)
            elif kind == "play":
                played[item_id] = (int(number), _utc(at))
            elif kind == "album_rate":
                album_rating = int(number)
            else:
                saved = _utc(at)
    os = call.os
    song_list = []
    genre_names: list[str] = []
    plays = 0
    last: dt.datetime | None = None
    base = orjson.loads(cached.songs_json)
    for s, full in zip(cached.songs, base, strict=True):
        if not s.visible_to(user_id):
            continue
        song = full if os else dict(itertools.islice(full.items(), s.xml_fields))
        if (when := liked.get(s.id)) is not None:
            song["starred"] = iso(when)
        if (rating := rated.get(s.id)) is not None:
            song["userRating"] = rating
        if (play := played.get(s.id)) is not None:
            song["playCount"] = play[0]
            plays += play[0]
            last = play[1] if last is None or play[1] > last else last
            if os:
                song["played"] = iso(play[1])
        song_list.append(song)
        genre_names.extend(g for g in s.genres if g not in genre_names)
    row = dataclasses.replace(
        cached.row, song_count=len(visible), duration_ms=sum(s.duration_ms for s in visible)
    )
    album = album_json(call, row, sorted(genre_names), saved, album_rating, (plays, last) if played else None)
    album["song"] = song_list
    return album


def folder_shapes(
    call: Call,
    artist_list: list[dict[str, Any]],
    album_list: list[dict[str, Any]],
    song_list: list[dict[str, Any]],
) -> dict[str, list[dict[str, Any]]]:
    """ID3 results in the folder shapes of the older methods (getStarred, search2): artists as
    `Artist`, albums as directory `Child`ren, songs as they are."""
    return {
        "artist": [artist_short(call, a) for a in artist_list],
        "album": [album_child(call, a) for a in album_list],
        "song": song_list,
    }
