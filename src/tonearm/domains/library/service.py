"""The listener's library: liked tracks and saved albums, in the Spotify Web API's shapes.

A like is (user, track, added_at); liking again keeps the first `added_at`, as Spotify does. Only
what the listener may see can be liked (public tracks, or their own private uploads), and lists
leave out what has since become invisible to them (deleted, or made private by its uploader).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from tonearm.domains.catalog.service import CatalogService, check_id
from tonearm.domains.catalog.tables import tracks
from tonearm.domains.library.tables import album_saves, track_likes
from tonearm.kernel.clock import Clock
from tonearm.kernel.db import Database
from tonearm.kernel.errors import BadRequest, NotFound
from tonearm.kernel.paging import check_window, page

MAX_IDS = 50  # Spotify's limit for one call
Kind = Literal["track", "album"]


def parse_ids(ids: str | Sequence[str] | None, kind: Kind, *, unique: bool = True) -> list[str]:
    """1..MAX_IDS valid ids, from a comma-separated string or a list; duplicates removed unless
    the answer goes id by id (`/contains` answers one boolean per id asked)."""
    if ids is None:
        raise BadRequest(f"ids: give between 1 and {MAX_IDS} {kind} ids (query parameter or JSON body)")
    raw = ids.split(",") if isinstance(ids, str) else list(ids)
    wanted = [i.strip() for i in raw if i.strip()]
    wanted = list(dict.fromkeys(wanted)) if unique else wanted
    if not 1 <= len(wanted) <= MAX_IDS:
        raise BadRequest(f"ids: give between 1 and {MAX_IDS} {kind} ids, not {len(wanted)}")
    return [check_id(i, kind) for i in wanted]


def parse_uris(uris: str | None, *, unique: bool = True) -> list[tuple[Kind, str]]:
    """`tonearm:track:ID,spotify:album:ID,...` (Spotify's `/v1/me/library` takes URIs; Spotify
    clients write them with their own scheme, so both are read) as (kind, id), in order."""
    raw = [u.strip() for u in (uris or "").split(",") if u.strip()]
    if not 1 <= len(raw) <= MAX_IDS:
        raise BadRequest(f"uris: give between 1 and {MAX_IDS} URIs, not {len(raw)}")
    out: list[tuple[Kind, str]] = []
    for uri in dict.fromkeys(raw) if unique else raw:
        parts = uri.split(":")
        if len(parts) != 3 or parts[0] not in ("tonearm", "spotify"):
            raise BadRequest(f"uris: {uri[:60]!r} is not a URI like tonearm:track:<id>")
        kind = parts[1]
        if kind not in ("track", "album"):
            raise BadRequest(
                f"uris: {kind[:20]!r} items cannot be saved to the library (tracks and albums can)"
            )
        out.append((kind, check_id(parts[2], kind)))  # type: ignore[arg-type]
    return out


def _visible_tracks(user_id: str) -> sa.ColumnElement[bool]:
    return sa.and_(
        tracks.c.status == "ready",
        sa.or_(tracks.c.visibility == "public", tracks.c.owner_user_id == user_id),
    )


class LibraryService:
    def __init__(self, db: Database, catalog: CatalogService, clock: Clock) -> None:
        self.db = db
        self.catalog = catalog
        self.clock = clock

    # Spotify's /v1/me/library: tracks and albums by URI ------------------------------------------
    def add_to_library(self, user_id: str, items: list[tuple[Kind, str]]) -> None:
        track_ids = [i for k, i in items if k == "track"]
        album_ids = [i for k, i in items if k == "album"]
        if track_ids:
            self.like_tracks(user_id, track_ids)
        if album_ids:
            self.save_albums(user_id, album_ids)

    def remove_from_library(self, user_id: str, items: list[tuple[Kind, str]]) -> None:
        track_ids = [i for k, i in items if k == "track"]
        album_ids = [i for k, i in items if k == "album"]
        if track_ids:
            self.unlike_tracks(user_id, track_ids)
        if album_ids:
            self.remove_albums(user_id, album_ids)

    def library_contains(self, user_id: str, items: list[tuple[Kind, str]]) -> list[bool]:
        found: set[tuple[Kind, str]] = set()
        track_ids = [i for k, i in items if k == "track"]
        album_ids = [i for k, i in items if k == "album"]
        if track_ids:
            liked = self.tracks_liked(user_id, track_ids)
            found |= {("track", i) for i, yes in zip(track_ids, liked, strict=True) if yes}
        if album_ids:
            saved = self.albums_saved(user_id, album_ids)
            found |= {("album", i) for i, yes in zip(album_ids, saved, strict=True) if yes}
        return [item in found for item in items]

    # Liked tracks ------------------------------------------------------------------------------
    def like_tracks(self, user_id: str, ids: list[str]) -> None:
        now = self.clock.now()
        with self.db.write() as conn:
            found = set(
                conn.execute(
                    sa.select(tracks.c.id).where(tracks.c.id.in_(ids), _visible_tracks(user_id))
                ).scalars()
            )
            missing = [i for i in ids if i not in found]
            if missing:  # another user's private upload looks exactly like a missing track
                raise NotFound(f"track {missing[0]} not found")
            _insert_new(
                conn, track_likes, [{"user_id": user_id, "track_id": i, "added_at": now} for i in ids]
            )

    def unlike_tracks(self, user_id: str, ids: list[str]) -> None:
        with self.db.write() as conn:
            mine = track_likes.c.user_id == user_id
            conn.execute(sa.delete(track_likes).where(mine, track_likes.c.track_id.in_(ids)))

    def liked_tracks(self, user_id: str, *, limit: int, offset: int) -> dict[str, Any]:
        """`{added_at, track}` items, the newest like first."""
        check_window(limit, offset)
        visible = sa.and_(track_likes.c.user_id == user_id, _visible_tracks(user_id))
        joined = track_likes.join(tracks, tracks.c.id == track_likes.c.track_id)
        with self.db.read() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(joined).where(visible)).scalar_one()
            rows = conn.execute(
                sa.select(track_likes.c.track_id, track_likes.c.added_at)
                .select_from(joined)
                .where(visible)
                .order_by(track_likes.c.added_at.desc(), track_likes.c.track_id)
                .limit(limit)
                .offset(offset)
            ).all()
        objs = self.catalog.tracks_json([r.track_id for r in rows], user_id)
        items = [
            {"added_at": _iso(r.added_at), "track": orjson.Fragment(o)}
            for r, o in zip(rows, objs, strict=True)
            if o is not None
        ]
        return page(f"{self.catalog.base}/v1/me/tracks", items, limit=limit, offset=offset, total=total)

    def tracks_liked(self, user_id: str, ids: list[str]) -> list[bool]:
        with self.db.read() as conn:
            liked = set(
                conn.execute(
                    sa.select(track_likes.c.track_id).where(
                        track_likes.c.user_id == user_id, track_likes.c.track_id.in_(ids)
                    )
                ).scalars()
            )
        return [i in liked for i in ids]

    # Saved albums ------------------------------------------------------------------------------
    def _albums_visible(self, conn: sa.Connection, user_id: str, ids: list[str]) -> set[str]:
        """Albums with at least one track the user may see (an album of someone else's private
        uploads is as good as missing)."""
        return set(
            conn.execute(
                sa.select(tracks.c.album_id)
                .distinct()
                .where(tracks.c.album_id.in_(ids), _visible_tracks(user_id))
            ).scalars()
        )

    def save_albums(self, user_id: str, ids: list[str]) -> None:
        now = self.clock.now()
        with self.db.write() as conn:
            found = self._albums_visible(conn, user_id, ids)
            missing = [i for i in ids if i not in found]
            if missing:
                raise NotFound(f"album {missing[0]} not found")
            _insert_new(
                conn, album_saves, [{"user_id": user_id, "album_id": i, "added_at": now} for i in ids]
            )

    def remove_albums(self, user_id: str, ids: list[str]) -> None:
        with self.db.write() as conn:
            mine = album_saves.c.user_id == user_id
            conn.execute(sa.delete(album_saves).where(mine, album_saves.c.album_id.in_(ids)))

    def saved_albums(self, user_id: str, *, limit: int, offset: int) -> dict[str, Any]:
        """`{added_at, album}` items, the newest save first; albums left with nothing the user may
        see are left out."""
        check_window(limit, offset)
        visible_albums = sa.select(tracks.c.album_id).where(_visible_tracks(user_id))
        cond = sa.and_(album_saves.c.user_id == user_id, album_saves.c.album_id.in_(visible_albums))
        with self.db.read() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(album_saves).where(cond)).scalar_one()
            rows = conn.execute(
                sa.select(album_saves.c.album_id, album_saves.c.added_at)
                .where(cond)
                .order_by(album_saves.c.added_at.desc(), album_saves.c.album_id)
                .limit(limit)
                .offset(offset)
            ).all()
        objs = self.catalog.albums_json([r.album_id for r in rows])
        items = [
            {"added_at": _iso(r.added_at), "album": orjson.Fragment(o)}
            for r, o in zip(rows, objs, strict=True)
            if o is not None
        ]
        return page(f"{self.catalog.base}/v1/me/albums", items, limit=limit, offset=offset, total=total)

    def albums_saved(self, user_id: str, ids: list[str]) -> list[bool]:
        with self.db.read() as conn:
            saved = set(
                conn.execute(
                    sa.select(album_saves.c.album_id).where(
                        album_saves.c.user_id == user_id, album_saves.c.album_id.in_(ids)
                    )
                ).scalars()
            )
        return [i in saved for i in ids]


def _insert_new(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Inserts the rows whose key is not there yet: liking twice, even at the same moment from two
    devices, keeps the first `added_at` and is no error."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(table).on_conflict_do_nothing(), rows)


def _iso(value: Any) -> str:
    return str(value.strftime("%Y-%m-%dT%H:%M:%SZ"))
