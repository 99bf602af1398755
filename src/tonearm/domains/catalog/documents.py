"""What the search index knows of the catalog: `SearchDoc`s built from the catalog's tables.

Only ready tracks are searchable. An album or an artist is searchable while it has a ready track;
it is public when one of those tracks is public, else it is visible to the owner of its tracks
only. Popularity is plays: a track's own, summed over the tracks of an album or an artist.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from tonearm.domains.catalog.tables import albums, artists, genres, track_artists, track_genres, tracks
from tonearm.ports.search import Kind, SearchDoc

CATALOG_KINDS: tuple[Kind, ...] = ("track", "album", "artist")
_READY = tracks.c.status == "ready"


def _year(*dates: str | None) -> int | None:
    for d in dates:
        if d and d[:4].isdigit():
            return int(d[:4])
    return None


def documents(conn: sa.Connection, kind: Kind, ids: Sequence[str]) -> dict[str, SearchDoc]:
    """The documents of these ids that should be in the index; an id missing from the answer
    should not be (deleted, not ready, or no longer has any ready track)."""
    if not ids:
        return {}
    if kind == "track":
        return _tracks(conn, ids)
    if kind == "album":
        return _albums(conn, ids)
    if kind == "artist":
        return _artists(conn, ids)
    return {}


def _tracks(conn: sa.Connection, ids: Sequence[str]) -> dict[str, SearchDoc]:
    rows = conn.execute(
        sa.select(
            tracks.c.id,
            tracks.c.title,
            tracks.c.description,
            tracks.c.release_date,
            tracks.c.play_count,
            tracks.c.visibility,
            tracks.c.owner_user_id,
            albums.c.name.label("album"),
            albums.c.release_date.label("album_date"),
        )
        .join(albums, albums.c.id == tracks.c.album_id)
        .where(tracks.c.id.in_(ids), _READY)
    ).all()
    names: dict[str, list[str]] = defaultdict(list)
    for track_id, name in conn.execute(
        sa.select(track_artists.c.track_id, artists.c.name)
        .join(artists, artists.c.id == track_artists.c.artist_id)
        .where(track_artists.c.track_id.in_(ids))
        .order_by(track_artists.c.track_id, track_artists.c.position)
    ):
        names[track_id].append(name)
    genre_names = _genres_by(conn, track_genres.c.track_id, track_genres.c.track_id.in_(ids))
    return {
        r.id: SearchDoc(
            "track",
            r.id,
            r.title,
            artists=tuple(names.get(r.id, ())),
            album=r.album,
            genres=tuple(genre_names.get(r.id, ())),
            description=r.description or "",
            year=_year(r.release_date, r.album_date),
            popularity=r.play_count,
            public=r.visibility == "public",
            owner_id=r.owner_user_id,
        )
        for r in rows
    }


def _genres_by(
    conn: sa.Connection,
    key: sa.ColumnElement[str],
    where: sa.ColumnElement[bool],
    *,
    via_tracks: bool = False,
) -> dict[str, list[str]]:
    q = (
        sa.select(key, genres.c.name)
        .distinct()
        .join_from(track_genres, genres, genres.c.id == track_genres.c.genre_id)
    )
    if via_tracks:
        q = q.join(tracks, tracks.c.id == track_genres.c.track_id).where(_READY)
    out: dict[str, list[str]] = defaultdict(list)
    for owner, name in conn.execute(q.where(where).order_by(key, genres.c.name)):
        out[owner].append(name)
    return out


def _stats(
    rows: Sequence[Any],
) -> dict[str, tuple[int, bool, str | None]]:
    return {key: (int(plays or 0), bool(public), owner) for key, plays, public, owner in rows}


_PUBLIC = sa.func.max(sa.case((tracks.c.visibility == "public", 1), else_=0))


def _albums(conn: sa.Connection, ids: Sequence[str]) -> dict[str, SearchDoc]:
    stats = _stats(
        conn.execute(
            sa.select(
                tracks.c.album_id,
                sa.func.sum(tracks.c.play_count),
                _PUBLIC,
                sa.func.min(tracks.c.owner_user_id),
            )
            .where(tracks.c.album_id.in_(ids), _READY)
            .group_by(tracks.c.album_id)
        ).all()
    )
    if not stats:
        return {}
    rows = conn.execute(
        sa.select(albums.c.id, albums.c.name, albums.c.release_date, artists.c.name.label("artist"))
        .join(artists, artists.c.id == albums.c.artist_id)
        .where(albums.c.id.in_(list(stats)))
    ).all()
    genre_names = _genres_by(conn, tracks.c.album_id, tracks.c.album_id.in_(list(stats)), via_tracks=True)
    out = {}
    for r in rows:
        plays, public, owner = stats[r.id]
        out[r.id] = SearchDoc(
            "album",
            r.id,
            r.name,
            artists=(r.artist,),
            genres=tuple(genre_names.get(r.id, ())),
            year=_year(r.release_date),
            popularity=plays,
            public=public,
            owner_id=None if public else owner,
        )
    return out


def _artists(conn: sa.Connection, ids: Sequence[str]) -> dict[str, SearchDoc]:
    ta = track_artists
    stats = _stats(
        conn.execute(
            sa.select(
                ta.c.artist_id, sa.func.sum(tracks.c.play_count), _PUBLIC, sa.func.min(tracks.c.owner_user_id)
            )
            .join(tracks, tracks.c.id == ta.c.track_id)
            .where(ta.c.artist_id.in_(ids), _READY)
            .group_by(ta.c.artist_id)
        ).all()
    )
    if not stats:
        return {}
    rows = conn.execute(
        sa.select(artists.c.id, artists.c.name, artists.c.bio).where(artists.c.id.in_(list(stats)))
    ).all()
    genre_names: dict[str, list[str]] = defaultdict(list)
    for artist_id, name in conn.execute(
        sa.select(ta.c.artist_id, genres.c.name)
        .distinct()
        .join(tracks, tracks.c.id == ta.c.track_id)
        .join(track_genres, track_genres.c.track_id == ta.c.track_id)
        .join(genres, genres.c.id == track_genres.c.genre_id)
        .where(ta.c.artist_id.in_(list(stats)), _READY)
        .order_by(ta.c.artist_id, genres.c.name)
    ):
        genre_names[artist_id].append(name)
    out = {}
    for r in rows:
        plays, public, owner = stats[r.id]
        out[r.id] = SearchDoc(
            "artist",
            r.id,
            r.name,
            genres=tuple(genre_names.get(r.id, ())),
            description=r.bio or "",
            popularity=plays,
            public=public,
            owner_id=None if public else owner,
        )
    return out


_TABLES = {"track": tracks, "album": albums, "artist": artists}


def count(conn: sa.Connection) -> int:
    """About how many documents a full rebuild reads (for its progress bar)."""
    total = 0
    for table in _TABLES.values():
        total += int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
    return total


def iter_ids(conn: sa.Connection, kind: Kind, *, batch: int = 2000) -> Iterator[list[str]]:
    """Every id of a kind, in batches, by keyset (no OFFSET scans)."""
    table = _TABLES.get(kind)
    if table is None:
        return
    last = ""
    while True:
        ids = list(
            conn.execute(
                sa.select(table.c.id).where(table.c.id > last).order_by(table.c.id).limit(batch)
            ).scalars()
        )
        if not ids:
            return
        yield ids
        last = ids[-1]
