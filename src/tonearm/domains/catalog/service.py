"""The catalog: reads in the Spotify Web API's object shapes, and the writes ingest needs.

Reads are batched (one query per table for any number of ids) and public objects are cached.
A track is visible when it is `ready` and public, or private and owned by the viewer.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import orjson
import sqlalchemy as sa

from tonearm.domains.catalog import search_sql
from tonearm.domains.catalog.objects import artist_objects
from tonearm.domains.catalog.tables import (
    albums,
    artists,
    genres,
    image_variants,
    track_artists,
    track_genres,
    tracks,
)
from tonearm.kernel import changes
from tonearm.kernel.cache import TTLCache
from tonearm.kernel.db import Database, RawQuery
from tonearm.kernel.errors import BadRequest, NotFound
from tonearm.kernel.ids import is_valid_id, new_id, uri
from tonearm.kernel.paging import check_window, page
from tonearm.ports.search import Hits, IndexQuery

Obj = dict[str, Any]

# The batched reads every search result page makes, built once: building a SELECT costs more
# than SQLite takes to run it (~2 ms of the ~2.5 ms an album batch took). Ids bind as expanding
# parameters, so one statement serves any number of them.
_IDS: sa.BindParameter[list[str]] = sa.bindparam("ids", expanding=True)
_BATCH_IMAGES = (
    sa.select(
        image_variants.c.image_id, image_variants.c.size, image_variants.c.width, image_variants.c.height
    )
    .where(image_variants.c.image_id.in_(_IDS))
    .order_by(image_variants.c.image_id, image_variants.c.size.desc())
)
_BATCH_TRACK_ARTISTS = (
    sa.select(track_artists.c.track_id, artists.c.id, artists.c.name)
    .join(artists, artists.c.id == track_artists.c.artist_id)
    .where(track_artists.c.track_id.in_(_IDS))
    .order_by(track_artists.c.track_id, track_artists.c.position)
)
_BATCH_ALBUM_COUNTS = (
    sa.select(tracks.c.album_id, sa.func.count().label("n"))
    .where(tracks.c.album_id.in_(_IDS), tracks.c.status == "ready", tracks.c.visibility == "public")
    .group_by(tracks.c.album_id)
    .subquery()
)
_BATCH_ALBUMS = (
    sa.select(
        albums, artists.c.name.label("artist_name"), sa.func.coalesce(_BATCH_ALBUM_COUNTS.c.n, 0).label("n")
    )
    .join(artists, artists.c.id == albums.c.artist_id)
    .outerjoin(_BATCH_ALBUM_COUNTS, _BATCH_ALBUM_COUNTS.c.album_id == albums.c.id)
    .where(albums.c.id.in_(_IDS))
)
_BATCH_PUBLIC_TRACKS = sa.select(tracks).where(
    tracks.c.id.in_(_IDS), tracks.c.status == "ready", tracks.c.visibility == "public"
)


def name_key(name: str) -> str:
    """Folds case, accents-preserving NFKC and whitespace, so "The  Band" matches "the band"."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def slugify(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", folded).strip("-") or "genre"


def _precision(date: str | None) -> str | None:
    if not date:
        return None
    return {4: "year", 7: "month", 10: "day"}.get(len(date), "day")


def tracks_visible_to(viewer_id: str | None) -> sa.ColumnElement[bool]:
    """Tracks a listener may see: ready, and public or their own upload (public only without a
    viewer). The one definition the other domains' reads of `tracks` share."""
    if not viewer_id:
        return sa.and_(tracks.c.status == "ready", tracks.c.visibility == "public")
    return sa.and_(
        tracks.c.status == "ready",
        sa.or_(tracks.c.visibility == "public", tracks.c.owner_user_id == viewer_id),
    )


def check_id(value: str, kind: str) -> str:
    if not is_valid_id(value):
        raise BadRequest(f"invalid {kind} id {value[:40]!r}: ids are 22 base-62 characters")
    return value


class CatalogService:
    def __init__(self, db: Database, public_url: str, *, cache_size: int = 20000, cache_ttl_s: float = 30.0):
        self.db = db
        self.base = public_url.rstrip("/")
        # track id -> (owner, visibility, object, its JSON); only `ready` tracks are cached.
        self._tracks: TTLCache[str, _CachedTrack] = TTLCache(cache_size, cache_ttl_s)
        # Search results' albums and artists as JSON (not viewer-dependent; the index authorizes).
        self._album_json: TTLCache[str, bytes] = TTLCache(cache_size, cache_ttl_s)
        self._album_objs: TTLCache[str, Obj] = TTLCache(cache_size, cache_ttl_s)  # never mutated
        self._artist_json: TTLCache[str, bytes] = TTLCache(cache_size, cache_ttl_s)
        self._listeners: list[Callable[[str], None]] = []

    # URLs -------------------------------------------------------------------------------------
    def _href(self, kind: str, id_: str) -> str:
        return f"{self.base}/v1/{kind}s/{id_}"

    def _ext(self, kind: str, id_: str) -> dict[str, str]:
        return {"tonearm": f"{self.base}/{kind}/{id_}"}

    def _images(self, conn: sa.Connection, image_ids: Iterable[str | None]) -> dict[str, list[Obj]]:
        ids = {i for i in image_ids if i}
        out: dict[str, list[Obj]] = defaultdict(list)
        if not ids:
            return out
        rows = conn.execute(_BATCH_IMAGES, {"ids": list(ids)}).all()
        for r in rows:
            out[r.image_id].append(
                {"url": f"{self.base}/images/{r.image_id}/{r.size}", "height": r.height, "width": r.width}
            )
        return out

    # Simplified objects -----------------------------------------------------------------------
    def _artist_simple(self, artist_id: str, name: str) -> Obj:
        return {
            "external_urls": self._ext("artist", artist_id),
            "href": self._href("artist", artist_id),
            "id": artist_id,
            "name": name,
            "type": "artist",
            "uri": uri("artist", artist_id),
        }

    def _artists_of_tracks(self, conn: sa.Connection, track_ids: Sequence[str]) -> dict[str, list[Obj]]:
        rows = conn.execute(_BATCH_TRACK_ARTISTS, {"ids": list(track_ids)}).all()
        out: dict[str, list[Obj]] = defaultdict(list)
        for r in rows:
            out[r.track_id].append(self._artist_simple(r.id, r.name))
        return out

    def _album_simple(self, row: Any, artist_name: str, imgs: dict[str, list[Obj]], total: int) -> Obj:
        return {
            "album_type": row.album_type,
            "artists": [self._artist_simple(row.artist_id, artist_name)],
            "available_markets": [],
            "external_urls": self._ext("album", row.id),
            "href": self._href("album", row.id),
            "id": row.id,
            "images": imgs.get(row.image_id, []) if row.image_id else [],
            "name": row.name,
            "release_date": row.release_date or "",
            "release_date_precision": row.release_date_precision or "day",
            "total_tracks": total,
            "type": "album",
            "uri": uri("album", row.id),
        }

    def _album_rows(self, conn: sa.Connection, album_ids: Iterable[str]) -> dict[str, Obj]:
        """Simplified album objects by id (cached: search results embed the same albums over and
        over, and building them takes four queries; they may lag changes by the cache TTL)."""
        out: dict[str, Obj] = {}
        ids = set()
        for i in album_ids:
            if (hit := self._album_objs.get(i)) is not None:
                out[i] = hit
            else:
                ids.add(i)
        if not ids:
            return out
        rows = conn.execute(_BATCH_ALBUMS, {"ids": list(ids)}).all()
        imgs = self._images(conn, (r.image_id for r in rows))
        for r in rows:
            out[r.id] = self._album_simple(r, r.artist_name, imgs, r.n)
            self._album_objs.put(r.id, out[r.id])
        return out

    # Tracks -----------------------------------------------------------------------------------
    def _visible(self, viewer_id: str | None) -> sa.ColumnElement[bool]:
        return tracks_visible_to(viewer_id)

    def _build_tracks(
        self, conn: sa.Connection, rows: Sequence[Any], *, with_album: bool = True
    ) -> list[Obj]:
        ids = [r.id for r in rows]
        arts = self._artists_of_tracks(conn, ids)
        album_objs = self._album_rows(conn, {r.album_id for r in rows}) if with_album else {}
        out = []
        for r in rows:
            obj = self._track_obj(r, arts.get(r.id, []))
            if with_album:
                obj["album"] = album_objs.get(r.album_id)
            out.append(obj)
        return out

    def _track_obj(self, r: Any, artists: list[Obj]) -> Obj:
        """Spotify's (simplified) track object from a row with the `tracks` columns it needs."""
        return {
            "artists": artists,
            "available_markets": [],
            "disc_number": r.disc_number,
            "duration_ms": r.duration_ms,
            "explicit": bool(r.explicit),
            "external_ids": {"isrc": r.isrc} if r.isrc else {},
            "external_urls": self._ext("track", r.id),
            "href": self._href("track", r.id),
            "id": r.id,
            "is_local": False,
            "is_playable": True,
            "name": r.title,
            "popularity": _popularity(r.play_count),
            "preview_url": None,
            "track_number": r.track_number,
            "type": "track",
            "uri": uri("track", r.id),
        }

    def tracks(self, ids: Sequence[str], viewer_id: str | None = None) -> list[Obj | None]:
        """Full track objects in the order asked; None where a track is missing or not visible."""
        return [orjson.loads(j) if j is not None else None for j in self.tracks_json(ids, viewer_id)]

    def tracks_json(self, ids: Sequence[str], viewer_id: str | None = None) -> list[bytes | None]:
        """`tracks()` as JSON bytes, straight from the cache where possible (search results)."""
        for i in ids:
            check_id(i, "track")
        found: dict[str, bytes] = {}
        missing: list[str] = []
        for i in ids:
            hit = self._tracks.get(i)
            if hit is not None and hit.visible_to(viewer_id):
                found[i] = hit.json
            else:
                missing.append(i)
        if missing:
            with self.db.read() as conn:
                if viewer_id is None:
                    rows = conn.execute(_BATCH_PUBLIC_TRACKS, {"ids": missing}).all()
                else:
                    rows = conn.execute(
                        sa.select(tracks).where(tracks.c.id.in_(missing), self._visible(viewer_id))
                    ).all()
                for r, obj in zip(rows, self._build_tracks(conn, rows), strict=True):
                    cached = _CachedTrack(r.owner_user_id, r.visibility, orjson.dumps(obj))
                    found[r.id] = cached.json
                    self._tracks.put(r.id, cached)
        return [found.get(i) for i in ids]

    def albums_json(self, ids: Sequence[str]) -> list[bytes | None]:
        """Simplified album objects as JSON, in the order asked; None where an album is missing."""
        found = {i: j for i in ids if (j := self._album_json.get(i)) is not None}
        missing = [i for i in ids if i not in found]
        if missing:
            with self.db.read() as conn:
                for album_id, obj in self._album_rows(conn, missing).items():
                    found[album_id] = orjson.dumps(obj)
                    self._album_json.put(album_id, found[album_id])
        return [found.get(i) for i in ids]

    def artists_json(self, ids: Sequence[str]) -> list[bytes | None]:
        """Full artist objects (as `artist()` answers) as JSON, in the order asked, built in a
        few queries for any number of ids; None where an artist is missing."""
        found = {i: j for i in ids if (j := self._artist_json.get(i)) is not None}
        missing = [i for i in ids if i not in found]
        if missing:
            with self.db.read() as conn:
                for artist_id, obj in artist_objects(self, conn, missing).items():
                    found[artist_id] = orjson.dumps(obj)
                    self._artist_json.put(artist_id, found[artist_id])
        return [found.get(i) for i in ids]

    def search_fallback(self, query: IndexQuery, *, limit: int, offset: int, timeout_ms: int) -> Hits:
        """Answers a search index query from the catalog's tables, for when the index cannot
        (see search_sql.py: same matches without typos, ranked by plays). Raises
        ServiceUnavailable when it takes longer than `timeout_ms`."""
        return search_sql.search(self.db, query, limit=limit, offset=offset, timeout_ms=timeout_ms)

    def track(self, track_id: str, viewer_id: str | None = None) -> Obj:
        return self._track_entry(track_id, viewer_id).obj

    def check_visible(self, track_id: str, viewer_id: str | None) -> None:
        """Raises NotFound unless the track is ready and this viewer may see it (cached, no parse)."""
        self._track_entry(track_id, viewer_id)

    def track_json(self, track_id: str, viewer_id: str | None = None) -> bytes:
        """The track object as JSON bytes: the hot path of `GET /v1/tracks/{id}`."""
        return self._track_entry(track_id, viewer_id).json

    def cached_track_json(self, track_id: str, viewer_id: str | None) -> bytes | None:
        """The cached JSON if this viewer may see it, without touching the database."""
        hit = self._tracks.get(track_id)
        return hit.json if hit is not None and hit.visible_to(viewer_id) else None

    def _track_entry(self, track_id: str, viewer_id: str | None) -> _CachedTrack:
        check_id(track_id, "track")
        hit = self._tracks.get(track_id)
        if hit is None:
            hit = self._load_track(track_id)
            if hit is not None:
                self._tracks.put(track_id, hit)
        if hit is None or not hit.visible_to(viewer_id):
            raise NotFound(f"track {track_id} not found")
        return hit

    def _load_track(self, track_id: str) -> _CachedTrack | None:
        """One track in three small precompiled queries (the batch path builds SQL per call,
        which costs more than the queries themselves for a single id)."""
        sqlite = self.db.sqlite
        with self.db.raw() as raw:
            if sqlite:  # in-process: three small queries cost less than building JSON in SQL
                found = _ONE_TRACK.run(raw, {"id": track_id}, sqlite=True)
                if not found:
                    return None
                r = _TrackRow(*found[0])
                arts = _TRACK_ARTISTS.run(raw, {"id": track_id}, sqlite=True)
                imgs = _IMAGE_VARIANTS.run(raw, {"id": r.image_id}, sqlite=True) if r.image_id else []
            else:  # over the network every query is a round trip: one query brings everything
                found = _ONE_TRACK_PG.run(raw, {"id": track_id}, sqlite=False)
                if not found:
                    return None
                r = _TrackRow(*found[0][: len(_TrackRow._fields)])
                arts, imgs = found[0][len(_TrackRow._fields) :]
        base = self.base
        album = {
            "album_type": r.album_type,
            "artists": [self._artist_simple(r.album_artist_id, r.album_artist_name)],
            "available_markets": [],
            "external_urls": self._ext("album", r.album_id),
            "href": self._href("album", r.album_id),
            "id": r.album_id,
            "images": [
                {"url": f"{base}/images/{r.image_id}/{size}", "height": height, "width": width}
                for size, width, height in imgs
            ],
            "name": r.album_name,
            "release_date": r.album_release_date or "",
            "release_date_precision": r.release_date_precision or "day",
            "total_tracks": r.total,
            "type": "album",
            "uri": uri("album", r.album_id),
        }
        obj = {"album": album} | self._track_obj(r, [self._artist_simple(a_id, name) for a_id, name in arts])
        return _CachedTrack(r.owner_user_id, r.visibility, orjson.dumps(obj))

    def invalidate_track(self, track_id: str) -> None:
        """Forgets the cached track here and in every cache that registered with on_invalidate."""
        self._tracks.invalidate(track_id)
        self._album_objs.clear()  # its album's may have changed with it (edits are rare)
        for listener in self._listeners:
            listener(track_id)

    def add_plays(self, conn: sa.Connection, counts: dict[str, int]) -> None:
        """Adds counted plays to tracks' play counts (popularity follows within the cache TTL)."""
        for track_id, n in counts.items():
            conn.execute(
                sa.update(tracks).where(tracks.c.id == track_id).values(play_count=tracks.c.play_count + n)
            )
        self.tracks_changed(conn, list(counts))

    def tracks_changed(self, conn: sa.Connection, track_ids: Sequence[str]) -> None:
        """Notes in the change log, in `conn`'s transaction, that these tracks changed, and with
        them their albums and artists (whose search documents aggregate their tracks). Call it
        before deleting a track: it reads the track's album and artists."""
        if not track_ids:
            return
        now = dt.datetime.now(dt.UTC)  # only orders pruning; the seq orders the log
        album_ids = conn.execute(
            sa.select(tracks.c.album_id).distinct().where(tracks.c.id.in_(track_ids))
        ).scalars()
        artist_ids = conn.execute(
            sa.select(track_artists.c.artist_id).distinct().where(track_artists.c.track_id.in_(track_ids))
        ).scalars()
        changes.record(conn, "track", track_ids, now)
        changes.record(conn, "album", list(album_ids), now)
        changes.record(conn, "artist", list(artist_ids), now)

    def artists_changed(self, artist_ids: Sequence[str]) -> None:
        """Forgets this process's cached objects of these artists (e.g. their follower count
        moved); other processes' copies expire with the cache's TTL."""
        for artist_id in artist_ids:
            self._artist_json.invalidate(artist_id)

    def on_invalidate(self, listener: Callable[[str], None]) -> None:
        self._listeners.append(listener)

    # Albums -----------------------------------------------------------------------------------
    def album(self, album_id: str, viewer_id: str | None = None) -> Obj:
        check_id(album_id, "album")
        with self.db.read() as conn:
            obj = self._album_rows(conn, [album_id]).get(album_id)
            if obj is None:
                raise NotFound(f"album {album_id} not found")
            row = conn.execute(sa.select(albums.c.label).where(albums.c.id == album_id)).one()
            genre_names = conn.execute(
                sa.select(genres.c.name)
                .distinct()
                .join(track_genres, track_genres.c.genre_id == genres.c.id)
                .join(tracks, tracks.c.id == track_genres.c.track_id)
                .where(tracks.c.album_id == album_id)
                .order_by(genres.c.name)
            ).scalars()
            obj = obj | {  # a new dict: the simplified one is cached
                "copyrights": [],
                "external_ids": {},
                "genres": list(genre_names),
                "label": row.label or "",
                "popularity": 0,
            }
        obj["tracks"] = self.album_tracks(album_id, viewer_id, limit=50, offset=0)
        return obj

    def album_tracks(self, album_id: str, viewer_id: str | None, *, limit: int, offset: int) -> Obj:
        check_id(album_id, "album")
        check_window(limit, offset)
        with self.db.read() as conn:
            if conn.execute(sa.select(albums.c.id).where(albums.c.id == album_id)).first() is None:
                raise NotFound(f"album {album_id} not found")
            cond = sa.and_(tracks.c.album_id == album_id, self._visible(viewer_id))
            total = conn.execute(sa.select(sa.func.count()).select_from(tracks).where(cond)).scalar_one()
            rows = conn.execute(
                sa.select(tracks)
                .where(cond)
                .order_by(tracks.c.disc_number, tracks.c.track_number, tracks.c.title)
                .limit(limit)
                .offset(offset)
            ).all()
            items = self._build_tracks(conn, rows, with_album=False)
        return page(f"{self._href('album', album_id)}/tracks", items, limit=limit, offset=offset, total=total)

    # Artists ----------------------------------------------------------------------------------
    def artist(self, artist_id: str) -> Obj:
        check_id(artist_id, "artist")
        with self.db.read() as conn:
            row = conn.execute(sa.select(artists).where(artists.c.id == artist_id)).first()
            if row is None:
                raise NotFound(f"artist {artist_id} not found")
            genre_names = conn.execute(
                sa.select(genres.c.name, sa.func.count().label("n"))
                .join(track_genres, track_genres.c.genre_id == genres.c.id)
                .join(track_artists, track_artists.c.track_id == track_genres.c.track_id)
                .where(track_artists.c.artist_id == artist_id)
                .group_by(genres.c.name)
                .order_by(sa.desc("n"), genres.c.name)
                .limit(5)
            ).all()
            plays = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(tracks.c.play_count), 0))
                .join(track_artists, track_artists.c.track_id == tracks.c.id)
                .where(track_artists.c.artist_id == artist_id)
            ).scalar_one()
            image_id = (
                row.image_id
                or conn.execute(
                    sa.select(albums.c.image_id)
                    .where(albums.c.artist_id == artist_id, albums.c.image_id.is_not(None))
                    .order_by(albums.c.release_date.desc())
                    .limit(1)
                ).scalar()
            )
            imgs = self._images(conn, [image_id])
        return self._artist_simple(row.id, row.name) | {
            "followers": {"href": None, "total": row.followers},
            "genres": [g.name.lower() for g in genre_names],
            "images": imgs.get(image_id, []) if image_id else [],
            "popularity": _popularity(int(plays)),
        }

    def artist_albums(self, artist_id: str, *, include_groups: str | None, limit: int, offset: int) -> Obj:
        check_id(artist_id, "artist")
        check_window(limit, offset)
        groups = {"album", "single", "compilation", "appears_on"}
        wanted = set((include_groups or "album,single,compilation,appears_on").split(","))
        if not wanted <= groups:
            raise BadRequest(f"include_groups: unknown group(s) {', '.join(sorted(wanted - groups))}")
        with self.db.read() as conn:
            if conn.execute(sa.select(artists.c.id).where(artists.c.id == artist_id)).first() is None:
                raise NotFound(f"artist {artist_id} not found")
            conds = []
            own_types = list(wanted & {"album", "single", "compilation"})
            if own_types:
                conds.append(sa.and_(albums.c.artist_id == artist_id, albums.c.album_type.in_(own_types)))
            if "appears_on" in wanted:
                on = (
                    sa.select(tracks.c.album_id)
                    .join(track_artists, track_artists.c.track_id == tracks.c.id)
                    .where(track_artists.c.artist_id == artist_id)
                )
                conds.append(sa.and_(albums.c.artist_id != artist_id, albums.c.id.in_(on)))
            has_public = sa.exists().where(
                tracks.c.album_id == albums.c.id, tracks.c.status == "ready", tracks.c.visibility == "public"
            )
            cond = sa.and_(sa.or_(*conds), has_public)
            total = conn.execute(sa.select(sa.func.count()).select_from(albums).where(cond)).scalar_one()
            ids = (
                conn.execute(
                    sa.select(albums.c.id)
                    .where(cond)
                    .order_by(albums.c.release_date.desc(), albums.c.name)
                    .limit(limit)
                    .offset(offset)
                )
                .scalars()
                .all()
            )
            objs = self._album_rows(conn, ids)
        items = [objs[i] for i in ids]
        return page(
            f"{self._href('artist', artist_id)}/albums",
            items,
            limit=limit,
            offset=offset,
            total=total,
            include_groups=include_groups,
        )

    def artist_top_tracks(self, artist_id: str, viewer_id: str | None = None) -> list[Obj]:
        check_id(artist_id, "artist")
        with self.db.read() as conn:
            if conn.execute(sa.select(artists.c.id).where(artists.c.id == artist_id)).first() is None:
                raise NotFound(f"artist {artist_id} not found")
            rows = conn.execute(
                sa.select(tracks)
                .join(track_artists, track_artists.c.track_id == tracks.c.id)
                .where(track_artists.c.artist_id == artist_id, self._visible(viewer_id))
                .order_by(tracks.c.play_count.desc(), tracks.c.created_at.desc(), tracks.c.title)
                .limit(10)
            ).all()
            return self._build_tracks(conn, rows)

    def new_releases(self, *, limit: int, offset: int) -> Obj:
        """Albums with public tracks, newest first (Spotify's /v1/browse/new-releases)."""
        check_window(limit, offset)
        has_public = sa.exists().where(
            tracks.c.album_id == albums.c.id, tracks.c.status == "ready", tracks.c.visibility == "public"
        )
        with self.db.read() as conn:
            total = conn.execute(
                sa.select(sa.func.count()).select_from(albums).where(has_public)
            ).scalar_one()
            ids = (
                conn.execute(
                    sa.select(albums.c.id)
                    .where(has_public)
                    .order_by(albums.c.release_date.desc(), albums.c.name)
                    .limit(limit)
                    .offset(offset)
                )
                .scalars()
                .all()
            )
            objs = self._album_rows(conn, ids)
        items = [objs[i] for i in ids]
        return {
            "albums": page(
                f"{self.base}/v1/browse/new-releases", items, limit=limit, offset=offset, total=total
            )
        }

    def genres(self) -> list[Obj]:
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(genres.c.name, genres.c.slug, sa.func.count(tracks.c.id).label("n"))
                .join(track_genres, track_genres.c.genre_id == genres.c.id)
                .join(tracks, tracks.c.id == track_genres.c.track_id)
                .where(tracks.c.status == "ready", tracks.c.visibility == "public")
                .group_by(genres.c.name, genres.c.slug)
                .order_by(genres.c.name)
            ).all()
        return [{"name": r.name, "slug": r.slug, "tracks": r.n} for r in rows]

    def image_variant(self, image_id: str, size: int) -> Any:
        check_id(image_id, "image")
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(image_variants)
                .where(image_variants.c.image_id == image_id)
                .order_by(image_variants.c.size)
            ).all()
        if not rows:
            raise NotFound(f"image {image_id} not found")
        # The smallest variant at least as large as asked for, else the largest.
        for r in rows:
            if r.size >= size:
                return r
        return rows[-1]

    # Writes used by ingest --------------------------------------------------------------------
    def ensure_artist(self, conn: sa.Connection, name: str, now: dt.datetime) -> str:
        key = name_key(name)[:500]
        row = conn.execute(sa.select(artists.c.id).where(artists.c.name_key == key)).first()
        if row is not None:
            return str(row.id)
        artist_id = new_id()
        conn.execute(sa.insert(artists).values(id=artist_id, name=name[:500], name_key=key, created_at=now))
        return artist_id

    def ensure_album(
        self,
        conn: sa.Connection,
        name: str,
        artist_id: str,
        release_date: str | None,
        now: dt.datetime,
        *,
        owner_scope: str | None = None,
    ) -> tuple[str, str | None]:
        """The album's id and current image id, creating it if needed. Private uploads get their
        own album namespace (`owner_scope`) so a stranger's upload never lands in a public album."""
        match = f"{owner_scope or ''}|{artist_id}|{name_key(name)}"[:1100]
        row = conn.execute(
            sa.select(albums.c.id, albums.c.image_id).where(albums.c.match_key == match)
        ).first()
        if row is not None:
            return str(row.id), row.image_id
        album_id = new_id()
        conn.execute(
            sa.insert(albums).values(
                id=album_id,
                name=name[:500],
                artist_id=artist_id,
                match_key=match,
                album_type="album",
                release_date=release_date,
                release_date_precision=_precision(release_date),
                created_at=now,
            )
        )
        return album_id, None

    def ensure_genres(self, conn: sa.Connection, names: Sequence[str]) -> list[int]:
        ids: list[int] = []
        for name in names:
            slug = slugify(name)
            row = conn.execute(sa.select(genres.c.id).where(genres.c.slug == slug)).first()
            if row is None:
                row = conn.execute(
                    sa.insert(genres).values(name=name[:80], slug=slug).returning(genres.c.id)
                ).one()
            if row.id not in ids:
                ids.append(row.id)
        return ids


_ONE_TRACK = RawQuery(
    """
    SELECT t.id, t.title, t.duration_ms, t.track_number, t.disc_number, t.isrc, t.explicit, t.play_count,
           t.visibility, t.owner_user_id, al.id AS album_id, al.name AS album_name, al.album_type,
           al.release_date AS album_release_date, al.release_date_precision, al.image_id,
           ar.id AS album_artist_id, ar.name AS album_artist_name,
           (SELECT count(*) FROM tracks t2 WHERE t2.album_id = al.id AND t2.status = 'ready'
              AND t2.visibility = 'public') AS total
    FROM tracks t JOIN albums al ON al.id = t.album_id JOIN artists ar ON ar.id = al.artist_id
    WHERE t.id = :id AND t.status = 'ready'
    """
)
# PostgreSQL: the same row plus the artists and image sizes as JSON arrays, in one round trip.
_ONE_TRACK_PG = RawQuery(
    _ONE_TRACK.sql.replace(
        "AS total\n",
        """AS total,
           (SELECT coalesce(json_agg(json_build_array(a.id, a.name) ORDER BY ta.position), '[]'::json)
              FROM track_artists ta JOIN artists a ON a.id = ta.artist_id WHERE ta.track_id = t.id) AS arts,
           (SELECT coalesce(json_agg(json_build_array(v.size, v.width, v.height) ORDER BY v.size DESC),
                            '[]'::json)
              FROM image_variants v WHERE v.image_id = al.image_id) AS imgs
""",
    )
)
_TRACK_ARTISTS = RawQuery(
    "SELECT a.id, a.name FROM track_artists ta JOIN artists a ON a.id = ta.artist_id "
    "WHERE ta.track_id = :id ORDER BY ta.position"
)
_IMAGE_VARIANTS = RawQuery(
    "SELECT size, width, height FROM image_variants WHERE image_id = :id ORDER BY size DESC"
)


class _TrackRow(NamedTuple):
    id: str
    title: str
    duration_ms: int
    track_number: int
    disc_number: int
    isrc: str | None
    explicit: bool
    play_count: int
    visibility: str
    owner_user_id: str | None
    album_id: str
    album_name: str
    album_type: str
    album_release_date: str | None
    release_date_precision: str | None
    image_id: str | None
    album_artist_id: str
    album_artist_name: str
    total: int


class _CachedTrack:
    """A cached track keeps only its JSON (a third of the dict's memory) and who may see it."""

    __slots__ = ("json", "owner", "visibility")

    def __init__(self, owner: str | None, visibility: str, json: bytes) -> None:
        self.owner = owner
        self.visibility = visibility
        self.json = json

    def visible_to(self, viewer_id: str | None) -> bool:
        return self.visibility == "public" or (viewer_id is not None and self.owner == viewer_id)

    @property
    def obj(self) -> Obj:
        loaded: Obj = orjson.loads(self.json)
        return loaded


def _popularity(play_count: int) -> int:
    """0-100 like Spotify's, from plays on a log scale (10 plays ~ 25, 10k plays ~ 100)."""
    import math

    return min(100, round(25 * math.log10(1 + play_count)))
