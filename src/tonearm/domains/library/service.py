"""The listener's library: liked tracks, saved albums and followed artists, in the Spotify Web
API's shapes, and the release feed of the artists they follow.

A like is (user, track, added_at), a saved album (user, album, added_at); both work alike (a
`_Shelf` each). Saving again keeps the first `added_at`, as Spotify does. Only
what the listener may see can be liked (public tracks, or their own private uploads), and lists
leave out what has since become invisible to them (deleted, or made private by its uploader).

Followed artists are listed by name with Spotify's cursor paging (`after` = the last artist id
seen): the name of the cursor's artist is enough to carry on, even if it was unfollowed between
two pages. `artists.followers` counts follows exactly: it moves by the rows a statement really
inserted or deleted (RETURNING), so two devices following at once count once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from tonearm.domains.catalog.service import CatalogService, check_id, tracks_visible_to
from tonearm.domains.catalog.tables import albums, artists, track_artists, tracks
from tonearm.domains.library.tables import album_saves, artist_follows, ratings, track_likes
from tonearm.kernel.clock import Clock
from tonearm.kernel.db import Database
from tonearm.kernel.errors import BadRequest, NotFound
from tonearm.kernel.paging import check_window, page

MAX_IDS = 50  # Spotify's limit for one call
MAX_RATING = 5  # ratings are 1 to 5 stars (Subsonic's setRating); 0 removes one
Kind = Literal["track", "album"]
IdKind = Literal["track", "album", "artist"]


def parse_ids(ids: str | Sequence[str] | None, kind: IdKind, *, unique: bool = True) -> list[str]:
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


def parse_uris(uris: str | None, *, unique: bool = True) -> list[tuple[IdKind, str]]:
    """`tonearm:track:ID,spotify:album:ID,...` (Spotify's `/v1/me/library` takes URIs; Spotify
    clients write them with their own scheme, so both are read) as (kind, id), in order. Artist
    URIs follow the artist (what spotipy sends to follow)."""
    raw = [u.strip() for u in (uris or "").split(",") if u.strip()]
    if not 1 <= len(raw) <= MAX_IDS:
        raise BadRequest(f"uris: give between 1 and {MAX_IDS} URIs, not {len(raw)}")
    out: list[tuple[IdKind, str]] = []
    for uri in dict.fromkeys(raw) if unique else raw:
        parts = uri.split(":")
        if len(parts) != 3 or parts[0] not in ("tonearm", "spotify"):
            raise BadRequest(f"uris: {uri[:60]!r} is not a URI like tonearm:track:<id>")
        kind = parts[1]
        if kind not in ("track", "album", "artist"):
            raise BadRequest(
                f"uris: {kind[:20]!r} items cannot be saved to the library (tracks, albums and artists can)"
            )
        out.append((kind, check_id(parts[2], kind)))  # type: ignore[arg-type]
    return out


def _visible_tracks(user_id: str) -> sa.ColumnElement[bool]:
    return tracks_visible_to(user_id)


@dataclass(frozen=True)
class _Shelf:
    """Where one kind of saved item lives: liked tracks and saved albums work alike."""

    kind: Kind
    table: sa.Table
    key: sa.Column[str]  # the table's item id column
    via: sa.Column[str]  # the tracks column naming the item: an item is visible through its tracks

    def visible(self, user_id: str, item: sa.ColumnElement[str]) -> sa.ColumnElement[bool]:
        """`item` has a track the user may see (another user's private upload, or an album of
        them, is as good as missing)."""
        return sa.exists().where(self.via == item, _visible_tracks(user_id))


_SHELVES: dict[Kind, _Shelf] = {
    "track": _Shelf("track", track_likes, track_likes.c.track_id, tracks.c.id),
    "album": _Shelf("album", album_saves, album_saves.c.album_id, tracks.c.album_id),
}


class LibraryService:
    def __init__(self, db: Database, catalog: CatalogService, clock: Clock) -> None:
        self.db = db
        self.catalog = catalog
        self.clock = clock
        self._listeners: list[Callable[[str], None]] = []

    def on_change(self, listener: Callable[[str], None]) -> None:
        """Calls `listener(user_id)` after a like, save or follow of theirs changes (the
        recommender reads their signals again)."""
        self._listeners.append(listener)

    def _changed(self, user_id: str) -> None:
        for listener in self._listeners:
            listener(user_id)

    def save(self, user_id: str, kind: Kind, ids: list[str]) -> None:
        """Likes tracks or saves albums; saving again keeps the first `added_at`."""
        shelf, now = _SHELVES[kind], self.clock.now()
        with self.db.write() as conn:
            found = set(
                conn.execute(
                    sa.select(shelf.via).distinct().where(shelf.via.in_(ids), _visible_tracks(user_id))
                ).scalars()
            )
            missing = [i for i in ids if i not in found]
            if missing:
                raise NotFound(f"{kind} {missing[0]} not found")
            _insert_new(
                conn, shelf.table, [{"user_id": user_id, shelf.key.name: i, "added_at": now} for i in ids]
            )
        self._changed(user_id)

    def remove(self, user_id: str, kind: Kind, ids: list[str]) -> None:
        shelf = _SHELVES[kind]
        with self.db.write() as conn:
            conn.execute(sa.delete(shelf.table).where(shelf.table.c.user_id == user_id, shelf.key.in_(ids)))
        self._changed(user_id)

    def contains(self, user_id: str, kind: Kind, ids: list[str]) -> list[bool]:
        """One answer per id asked, in order."""
        shelf = _SHELVES[kind]
        with self.db.read() as conn:
            saved = set(
                conn.execute(
                    sa.select(shelf.key).where(shelf.table.c.user_id == user_id, shelf.key.in_(ids))
                ).scalars()
            )
        return [i in saved for i in ids]

    def saved(self, user_id: str, kind: Kind, *, limit: int, offset: int) -> dict[str, Any]:
        """`{added_at, track}` or `{added_at, album}` items, the newest first, leaving out what the
        user may no longer see."""
        check_window(limit, offset)
        shelf = _SHELVES[kind]
        cond = sa.and_(shelf.table.c.user_id == user_id, shelf.visible(user_id, shelf.key))
        with self.db.read() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(shelf.table).where(cond)).scalar_one()
            rows = conn.execute(
                sa.select(shelf.key, shelf.table.c.added_at)
                .where(cond)
                .order_by(shelf.table.c.added_at.desc(), shelf.key)
                .limit(limit)
                .offset(offset)
            ).all()
        ids = [r[0] for r in rows]
        objs = self.catalog.tracks_json(ids, user_id) if kind == "track" else self._full_albums(ids, user_id)
        items = [
            {"added_at": _iso(r.added_at), kind: orjson.Fragment(o)}
            for r, o in zip(rows, objs, strict=True)
            if o is not None
        ]
        return page(f"{self.catalog.base}/v1/me/{kind}s", items, limit=limit, offset=offset, total=total)

    def _full_albums(self, ids: list[str], user_id: str) -> list[bytes | None]:
        """Spotify's saved-album items hold full album objects (with their first tracks), which
        tools that export a library read; the catalog builds them one by one."""
        out: list[bytes | None] = []
        for album_id in ids:
            try:
                out.append(orjson.dumps(self.catalog.album(album_id, user_id)))
            except NotFound:  # deleted since the visibility check
                out.append(None)
        return out

    # Followed artists ---------------------------------------------------------------------------
    def follow(self, user_id: str, ids: list[str]) -> None:
        """Follows artists; following again keeps the first `followed_at`. An artist is there to
        follow when it exists (artists are public, whoever uploaded their tracks)."""
        now = self.clock.now()
        with self.db.write() as conn:
            found = set(conn.execute(sa.select(artists.c.id).where(artists.c.id.in_(ids))).scalars())
            missing = [i for i in ids if i not in found]
            if missing:
                raise NotFound(f"artist {missing[0]} not found")
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            added = (
                conn.execute(
                    dialect.insert(artist_follows)
                    .on_conflict_do_nothing()
                    .returning(artist_follows.c.artist_id),
                    [{"user_id": user_id, "artist_id": i, "followed_at": now} for i in ids],
                )
                .scalars()
                .all()
            )
            self._count_followers(conn, list(added), +1)
        self._changed(user_id)

    def unfollow(self, user_id: str, ids: list[str]) -> None:
        with self.db.write() as conn:
            gone = (
                conn.execute(
                    sa.delete(artist_follows)
                    .where(artist_follows.c.user_id == user_id, artist_follows.c.artist_id.in_(ids))
                    .returning(artist_follows.c.artist_id)
                )
                .scalars()
                .all()
            )
            self._count_followers(conn, list(gone), -1)
        self._changed(user_id)

    def _count_followers(self, conn: sa.Connection, ids: list[str], delta: int) -> None:
        if not ids:
            return
        conn.execute(
            sa.update(artists)
            .where(artists.c.id.in_(ids))
            .values(
                followers=sa.case((artists.c.followers + delta < 0, 0), else_=artists.c.followers + delta)
            )
        )
        self.catalog.artists_changed(ids)

    def follows(self, user_id: str, ids: list[str]) -> list[bool]:
        """One answer per id asked, in order."""
        with self.db.read() as conn:
            yes = set(
                conn.execute(
                    sa.select(artist_follows.c.artist_id).where(
                        artist_follows.c.user_id == user_id, artist_follows.c.artist_id.in_(ids)
                    )
                ).scalars()
            )
        return [i in yes for i in ids]

    def followed_artists(self, user_id: str, *, limit: int, after: str | None) -> dict[str, Any]:
        """`{"artists": cursor page}` of full artist objects, by name (Spotify's shape)."""
        if not 1 <= limit <= MAX_IDS:
            raise BadRequest(f"limit: must be between 1 and {MAX_IDS}")
        cond = artist_follows.c.user_id == user_id
        with self.db.read() as conn:
            total = conn.execute(sa.select(sa.func.count()).where(cond)).scalar_one()
            q = (
                sa.select(artists.c.id)
                .join(artist_follows, artist_follows.c.artist_id == artists.c.id)
                .where(cond)
                .order_by(artists.c.name_key)
                .limit(limit + 1)
            )
            if after is not None:
                key = conn.execute(
                    sa.select(artists.c.name_key).where(artists.c.id == check_id(after, "artist"))
                ).scalar()
                if key is None:
                    raise BadRequest(f"after: artist {after} not found (use cursors.after of the last page)")
                q = q.where(artists.c.name_key > key)
            ids = list(conn.execute(q).scalars())
        more, ids = len(ids) > limit, ids[:limit]
        objs = [orjson.Fragment(o) for o in self.catalog.artists_json(ids) if o is not None]
        href = f"{self.catalog.base}/v1/me/following?type=artist&limit={limit}"
        return {
            "artists": {
                "href": href + (f"&after={after}" if after else ""),
                "items": objs,
                "limit": limit,
                "next": f"{href}&after={ids[-1]}" if more else None,
                "cursors": {"after": ids[-1] if more else None},
                "total": total,
            }
        }

    def release_feed(self, user_id: str, *, limit: int, offset: int) -> dict[str, Any]:
        """Albums (and singles: every upload belongs to one) by the artists the listener follows,
        as album artist or on any track, the newest release first; only albums with a track the
        listener may see."""
        check_window(limit, offset)
        followed = sa.select(artist_follows.c.artist_id).where(artist_follows.c.user_id == user_id)
        by_followed = sa.or_(
            albums.c.artist_id.in_(followed),
            sa.exists().where(
                tracks.c.album_id == albums.c.id,
                track_artists.c.track_id == tracks.c.id,
                track_artists.c.artist_id.in_(followed),
                _visible_tracks(user_id),
            ),
        )
        cond = sa.and_(by_followed, _SHELVES["album"].visible(user_id, albums.c.id))
        with self.db.read() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(albums).where(cond)).scalar_one()
            ids = list(
                conn.execute(
                    sa.select(albums.c.id)
                    .where(cond)
                    .order_by(
                        sa.func.coalesce(albums.c.release_date, "").desc(),
                        albums.c.created_at.desc(),
                        albums.c.id,
                    )
                    .limit(limit)
                    .offset(offset)
                ).scalars()
            )
        items = [orjson.Fragment(o) for o in self.catalog.albums_json(ids) if o is not None]
        return page(
            f"{self.catalog.base}/v1/me/feed/releases", items, limit=limit, offset=offset, total=total
        )

    # Ratings ------------------------------------------------------------------------------------
    def rate(self, user_id: str, kind: IdKind, item_id: str, rating: int) -> None:
        """Sets the listener's 1-5 star rating of a track, album or artist; 0 removes it. Only what
        they may see can be rated: a track that is public or theirs, an album or artist with such
        a track (another listener's private upload is as good as missing)."""
        if not 0 <= rating <= MAX_RATING:
            raise BadRequest(
                f"rating: must be between 1 and {MAX_RATING}, or 0 to remove the rating, not {rating}"
            )
        key = sa.and_(ratings.c.user_id == user_id, ratings.c.kind == kind, ratings.c.item_id == item_id)
        with self.db.write() as conn:
            if not conn.execute(sa.select(_rateable(user_id, kind, item_id))).scalar():
                raise NotFound(f"{kind} {item_id} not found")
            if rating == 0:
                conn.execute(sa.delete(ratings).where(key))
                return
            now = self.clock.now()
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            stmt = dialect.insert(ratings).values(
                user_id=user_id, kind=kind, item_id=item_id, rating=rating, updated_at=now
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[ratings.c.user_id, ratings.c.kind, ratings.c.item_id],
                    set_={"rating": rating, "updated_at": now},
                )
            )

    def rating(self, user_id: str, kind: IdKind, item_id: str) -> int | None:
        """The listener's rating of one item, or None."""
        with self.db.read() as conn:
            found = conn.execute(
                sa.select(ratings.c.rating).where(
                    ratings.c.user_id == user_id, ratings.c.kind == kind, ratings.c.item_id == item_id
                )
            ).scalar()
        return int(found) if found is not None else None

    # Spotify's /v1/me/library: tracks and albums by URI ------------------------------------------
    def add_to_library(self, user_id: str, items: list[tuple[IdKind, str]]) -> None:
        for kind, ids in _by_kind(items).items():
            if kind == "artist":
                self.follow(user_id, ids)
            else:
                self.save(user_id, kind, ids)

    def remove_from_library(self, user_id: str, items: list[tuple[IdKind, str]]) -> None:
        for kind, ids in _by_kind(items).items():
            if kind == "artist":
                self.unfollow(user_id, ids)
            else:
                self.remove(user_id, kind, ids)

    def library_contains(self, user_id: str, items: list[tuple[IdKind, str]]) -> list[bool]:
        found = {
            (kind, i)
            for kind, ids in _by_kind(items).items()
            for i, yes in zip(
                ids,
                self.follows(user_id, ids) if kind == "artist" else self.contains(user_id, kind, ids),
                strict=True,
            )
            if yes
        }
        return [item in found for item in items]


def _rateable(user_id: str, kind: IdKind, item_id: str) -> sa.ColumnElement[bool]:
    """The item exists and the user may see it (through a track of theirs or a public one)."""
    seen = _visible_tracks(user_id)
    if kind == "track":
        return sa.exists().where(tracks.c.id == item_id, seen)
    if kind == "album":
        return sa.exists().where(tracks.c.album_id == item_id, seen)
    return sa.or_(
        sa.exists().where(albums.c.artist_id == item_id, tracks.c.album_id == albums.c.id, seen),
        sa.exists().where(
            track_artists.c.artist_id == item_id, tracks.c.id == track_artists.c.track_id, seen
        ),
    )


def _by_kind(items: list[tuple[IdKind, str]]) -> dict[IdKind, list[str]]:
    out: dict[IdKind, list[str]] = {}
    for kind, id_ in items:
        out.setdefault(kind, []).append(id_)
    return out


def _insert_new(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Inserts the rows whose key is not there yet: liking twice, even at the same moment from two
    devices, keeps the first `added_at` and is no error."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(table).on_conflict_do_nothing(), rows)


def _iso(value: Any) -> str:
    return str(value.strftime("%Y-%m-%dT%H:%M:%SZ"))
