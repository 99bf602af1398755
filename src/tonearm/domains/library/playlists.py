"""Playlists in the Spotify Web API's shapes: create, list, read, change details, add / reorder /
replace / remove tracks, a cover image, and collaborators.

Order: each entry has a fractional `position_key` (see positions.py) and entries are read with
`ORDER BY position_key` over the unique index (playlist_id, position_key). Adding n tracks
inserts n rows, moving a range of n tracks rewrites those n rows and nothing else; when keys
grow past `positions.RENUMBER_ABOVE` characters the playlist's keys are rewritten in one batch.

Who may do what:
  - a public playlist is readable by anyone (anonymous callers included); a private one only by
    its owner and collaborators: to anyone else it does not exist (404, never 403);
  - the owner changes everything; collaborators (only a collaborative playlist has them, and a
    collaborative playlist is never public, as on Spotify) add, move and remove tracks;
  - anyone else who can see the playlist gets 403 for an edit.

`snapshot_id` names a version of the playlist (every successful edit bumps `playlists.version`).
Reorders, replaces and removals given a `snapshot_id` that is no longer current fail with 409
Conflict instead of applying positions the client computed on a list that has since changed
(stricter than Spotify, which applies them anyway).

Tracks that became invisible to the viewer (made private by their uploader, or not `ready`) stay
in the playlist as items with `"track": null`, as Spotify shows unavailable items, so positions
stay what the owner sees and reorders by position remain meaningful. A track deleted from the
catalog takes its entries with it (the foreign key cascades), without a new snapshot.

Cover: a cover the owner uploads wins. Without one, the playlist's cover is derived from the
album covers of its first public tracks: a 2x2 mosaic of the first four distinct covers, or the
first cover alone when there are fewer than four, or none for an empty playlist. It is made on
the edit that changes those covers (after the commit, never on a read), stored as an image with
source "mosaic" and a content hash naming the covers it was made from, so playlists starting with
the same four albums share it and an unchanged start costs one query per edit. A track made
private elsewhere changes the mosaic only at the playlist's next edit.

Spotify renamed the `/tracks` paths to `/items` (February 2026): both are served. Its renames of
the objects' fields (`tracks` to `items`, an item's `track` to `item`) are not mirrored: objects
keep the names spotipy and most clients read, as sending both would double every page.

Reading is the hot path: one read transaction runs three small fixed queries on the driver's
cursor (the playlist, its length, the page), then the catalog's batched, cached `tracks_json`. The
length is counted once per version; a reader going page by page (following `next`) gets each
page by seeking after the previous page's last key instead of stepping over `offset` entries.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, Protocol

import orjson
import sqlalchemy as sa
import structlog
from PIL import Image
from sqlalchemy.dialects import postgresql, sqlite

from tonearm import media
from tonearm.domains.accounts.tables import users
from tonearm.domains.catalog import search_sql
from tonearm.domains.catalog.service import CatalogService, check_id
from tonearm.domains.catalog.tables import albums, image_variants, images, tracks
from tonearm.domains.library import playlist_search
from tonearm.domains.library.positions import RENUMBER_ABOVE, keys_between
from tonearm.domains.library.tables import playlist_collaborators, playlist_entries, playlists
from tonearm.kernel import changes
from tonearm.kernel.cache import TTLCache
from tonearm.kernel.clock import Clock
from tonearm.kernel.db import Database, RawQuery
from tonearm.kernel.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    UnsupportedMedia,
)
from tonearm.kernel.ids import new_id, uri
from tonearm.kernel.paging import check_window, page
from tonearm.ports.blobs import BlobNotFound, BlobStore
from tonearm.ports.search import Hits, IndexQuery

Obj = dict[str, Any]
ItemsPath = Literal["tracks", "items"]

MAX_TRACKS = 10_000  # Spotify's limit per playlist
MAX_URIS = 100  # per call, as Spotify
MAX_ITEMS_LIMIT = 100  # page size of a playlist's items, as Spotify
MAX_COVER_BYTES = 256 * 1024  # the base64 body of a cover upload, as Spotify
MAX_COVER_PIXELS = 4096 * 4096  # a few hundred KB can declare a huge image: decode no more
MOSAIC = "mosaic"  # images.source of derived covers
_MOSAIC_TILES = 4
_MOSAIC_EDGE = 640

log = structlog.get_logger("tonearm.library")

P, E, C = playlists, playlist_entries, playlist_collaborators


class ImageStore(Protocol):
    """Where verified thumbnails become an `images` row (ingest's `store_image`)."""

    def store_image(
        self,
        conn: sa.Connection,
        source: str,
        thumbs: list[media.Thumbnail],
        content_hash: str | None,
        now: dt.datetime,
    ) -> str:
        """MUST store the thumbnails' bytes and rows and return the image id; MAY return an
        existing image with the same `content_hash` instead."""
        ...


# Input ----------------------------------------------------------------------------------------
def parse_track_uris(uris: str | Sequence[object] | None, *, allow_empty: bool = False) -> list[str]:
    """Track ids from `tonearm:track:ID` / `spotify:track:ID` URIs (a comma-separated string or a
    list), in order, duplicates kept (a playlist may hold a track twice); at most MAX_URIS."""
    if uris is None:
        raise BadRequest(f"uris: give between 1 and {MAX_URIS} track URIs (query parameter or JSON body)")
    raw: list[object] = list(uris.split(",")) if isinstance(uris, str) else list(uris)
    if not all(isinstance(u, str) for u in raw):
        raise BadRequest("uris: every item must be a URI string like tonearm:track:<id>")
    wanted = [u.strip() for u in raw if isinstance(u, str) and u.strip()]
    least = 0 if allow_empty else 1
    if not least <= len(wanted) <= MAX_URIS:
        raise BadRequest(f"uris: give between {least} and {MAX_URIS} track URIs, not {len(wanted)}")
    return [parse_track_uri(u, "uris") for u in wanted]


def parse_track_uri(value: str, field: str) -> str:
    parts = value.split(":")
    if len(parts) != 3 or parts[0] not in ("tonearm", "spotify"):
        raise BadRequest(f"{field}: {value[:60]!r} is not a URI like tonearm:track:<id>")
    if parts[1] != "track":
        raise BadRequest(f"{field}: {parts[1][:20]!r} items cannot be in a playlist (only tracks can)")
    return check_id(parts[2], "track")


def snapshot_id(playlist_id: str, version: int) -> str:
    """An opaque name of one version of one playlist (like Spotify's, base64 of "version,id")."""
    return base64.urlsafe_b64encode(f"{version},{playlist_id}".encode()).decode().rstrip("=")


def _snapshot_version(value: str, playlist_id: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode("ascii")
        version, of = raw.split(",")
        number = int(version)
    except ValueError:  # bad base64 (binascii.Error), bytes, or parts
        raise BadRequest(f"snapshot_id: {value[:60]!r} is not a snapshot id of this server") from None
    if of != playlist_id:
        raise BadRequest("snapshot_id: that is a snapshot of another playlist")
    return number


def decode_cover(body: bytes) -> bytes:
    """The image bytes of a cover upload: Spotify's body is the base64 of a JPEG (a data: URL
    prefix is tolerated). Raises PayloadTooLarge or BadRequest."""
    if len(body) > MAX_COVER_BYTES:
        raise PayloadTooLarge(f"image: the base64 body is over the {MAX_COVER_BYTES // 1024} KB limit")
    text = body.strip()
    if text.startswith(b"data:"):
        text = text.partition(b",")[2]
    if not text:
        raise BadRequest("image: the body is empty; send the cover as base64-encoded JPEG")
    try:
        return base64.b64decode(b"".join(text.split()), validate=True)
    except ValueError:
        raise BadRequest("image: the body is not base64; send the cover as base64-encoded JPEG") from None


def _check_name(name: str) -> str:
    if not name.strip() or len(name) > 200:
        raise BadRequest(f"name: must be 1 to 200 characters, not {len(name.strip())}")
    return name


def _check_description(description: str | None) -> str | None:
    if description is not None and len(description) > 300:
        raise BadRequest(f"description: must be at most 300 characters, not {len(description)}")
    return description or None


def _check_flags(public: bool, collaborative: bool) -> None:
    if public and collaborative:
        raise BadRequest(
            "collaborative: a collaborative playlist cannot be public (as on Spotify); set public to false"
        )


# The hot read path (a page of items) runs fixed SQL on the driver's cursor, inside the read
# transaction: SQLAlchemy's result processing cost more than the queries (see RawQuery).
_ROW = RawQuery(
    """
    SELECT p.id, p.owner_id, p.name, p.description, p.public, p.collaborative, p.version, p.image_id,
           u.display_name AS owner_name,
           EXISTS (SELECT 1 FROM playlist_collaborators c
                   WHERE c.playlist_id = p.id AND c.user_id = :viewer) AS is_collab
    FROM playlists p JOIN users u ON u.id = p.owner_id
    WHERE p.id = :pid
    """
)
_TOTAL = RawQuery("SELECT count(*) FROM playlist_entries WHERE playlist_id = :pid")
_PAGE = RawQuery(
    "SELECT track_id, added_at, added_by, position_key FROM playlist_entries WHERE playlist_id = :pid "
    "ORDER BY position_key LIMIT :limit OFFSET :offset"
)
# The next page of a reader going page by page: a seek in the index instead of skipping `offset`.
_PAGE_AFTER = RawQuery(
    "SELECT track_id, added_at, added_by, position_key FROM playlist_entries "
    "WHERE playlist_id = :pid AND position_key > :after ORDER BY position_key LIMIT :limit"
)


class _Row(NamedTuple):
    id: str
    owner_id: str
    name: str
    description: str | None
    public: bool
    collaborative: bool
    version: int
    image_id: str | None
    owner_name: str
    is_collab: bool


_PID: sa.BindParameter[str] = sa.bindparam("pid")
_KEYS_AT = (
    sa.select(E.c.id, E.c.track_id, E.c.position_key)
    .where(E.c.playlist_id == _PID)
    .order_by(E.c.position_key)
    .limit(sa.bindparam("limit", type_=sa.Integer()))
    .offset(sa.bindparam("offset", type_=sa.Integer()))
)
_COUNT = sa.select(sa.func.count()).select_from(E).where(E.c.playlist_id == _PID)
_ORDER = sa.select(E.c.id, E.c.position_key).where(E.c.playlist_id == _PID).order_by(E.c.position_key)
_ORDERS_KEPT = 64  # playlists whose order a process keeps (a 10,000-track one: ~1.5 MB)
_SET_KEY = sa.update(E).where(E.c.id == sa.bindparam("eid")).values(position_key=sa.bindparam("key"))


@dataclass(frozen=True, slots=True)
class _CoverWork:
    """A derived cover to render after the commit: from these album images, under this hash."""

    playlist_id: str
    sources: tuple[str, ...]
    content_hash: str


class PlaylistService:
    def __init__(
        self,
        db: Database,
        catalog: CatalogService,
        clock: Clock,
        blobs: BlobStore,
        image_store: ImageStore,
        *,
        cache_size: int = 10_000,
        cache_ttl_s: float = 30.0,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.clock = clock
        self.blobs = blobs
        self.image_store = image_store
        self.base = catalog.base
        # Keyed by version, so edits never meet a stale entry (see _total and _page).
        self._totals: TTLCache[tuple[str, int], int] = TTLCache(cache_size, cache_ttl_s)
        self._cursors: TTLCache[tuple[str, int, int], str] = TTLCache(cache_size, cache_ttl_s)
        # The order of a playlist being edited, (entry id, key) in position order, per version:
        # a move then finds its items and neighbours by index instead of scanning the entries.
        self._orders: TTLCache[tuple[str, int], list[tuple[str, str]]] = TTLCache(_ORDERS_KEPT, 600)
        self._listeners: list[Callable[[str], None]] = []  # told of changes search sees (on_change)

    # Objects ----------------------------------------------------------------------------------
    def _user(self, user_id: str, display_name: str | None = None) -> Obj:
        obj: Obj = {
            "external_urls": {"tonearm": f"{self.base}/user/{user_id}"},
            "href": f"{self.base}/v1/users/{user_id}",
            "id": user_id,
            "type": "user",
            "uri": uri("user", user_id),
        }
        if display_name is not None:
            obj = {"display_name": display_name, **obj}
        return obj

    def _href(self, playlist_id: str) -> str:
        return f"{self.base}/v1/playlists/{playlist_id}"

    def _obj(self, row: Any, images_of: dict[str, list[Obj]], total: int) -> Obj:
        """The simplified playlist object (`tracks` is `{href, total}`)."""
        href = self._href(row.id)
        return {
            "collaborative": bool(row.collaborative),
            "description": row.description,
            "external_urls": {"tonearm": f"{self.base}/playlist/{row.id}"},
            "href": href,
            "id": row.id,
            "images": images_of.get(row.image_id, []) if row.image_id else [],
            "name": row.name,
            "owner": self._user(row.owner_id, row.owner_name),
            "public": bool(row.public),
            "snapshot_id": snapshot_id(row.id, row.version),
            "tracks": {"href": f"{href}/tracks", "total": total},
            "type": "playlist",
            "uri": uri("playlist", row.id),
        }

    def _images(self, conn: sa.Connection, image_ids: Iterable[str | None]) -> dict[str, list[Obj]]:
        ids = sorted({i for i in image_ids if i})
        out: dict[str, list[Obj]] = {}
        if not ids:
            return out
        rows = conn.execute(
            sa.select(
                image_variants.c.image_id,
                image_variants.c.size,
                image_variants.c.width,
                image_variants.c.height,
            )
            .where(image_variants.c.image_id.in_(ids))
            .order_by(image_variants.c.image_id, image_variants.c.size.desc())
        ).all()
        for r in rows:
            out.setdefault(r.image_id, []).append(
                {"url": f"{self.base}/images/{r.image_id}/{r.size}", "height": r.height, "width": r.width}
            )
        return out

    def _item_list(self, entries: Sequence[Any], viewer_id: str | None) -> list[Obj]:
        """Playlist-track items for `entries` (track_id, added_at, added_by): the tracks come from
        the catalog in one batch (mostly from its cache), `null` where the viewer cannot see one."""
        found = self.catalog.tracks_json([e[0] for e in entries], viewer_id) if entries else []
        stamps: dict[Any, str] = {}  # entries added together share a timestamp and a user
        adders: dict[str, Obj] = {}
        items = []
        for (_, added_at, added_by, _), track in zip(entries, found, strict=True):
            stamp = stamps.get(added_at)
            if stamp is None:
                stamp = stamps[added_at] = _stamp(added_at)
            adder = adders.get(added_by) if added_by else None
            if added_by and adder is None:
                adder = adders[added_by] = self._user(added_by)
            items.append(
                {
                    "added_at": stamp,
                    "added_by": adder,
                    "is_local": False,
                    "track": orjson.Fragment(track) if track is not None else None,
                }
            )
        return items

    def simplified_json(self, ids: Sequence[str], owner_id: str | None = None) -> list[bytes | None]:
        """Simplified playlist objects (JSON) of these ids, in their order, in three queries
        (rows, lengths, covers), for search results: None where a playlist is gone or not public
        (search finds public playlists only, whoever asks) unless `owner_id` owns it."""
        unique = list(dict.fromkeys(ids))
        if not unique:
            return []
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(
                    P.c.id,
                    P.c.owner_id,
                    P.c.name,
                    P.c.description,
                    P.c.public,
                    P.c.collaborative,
                    P.c.version,
                    P.c.image_id,
                    users.c.display_name.label("owner_name"),
                )
                .join(users, users.c.id == P.c.owner_id)
                .where(
                    P.c.id.in_(unique),
                    sa.or_(P.c.public == sa.true(), P.c.owner_id == owner_id) if owner_id else P.c.public,
                )
            ).all()
            counts: dict[str, int] = {}
            if rows:
                counts = {
                    r[0]: r[1]
                    for r in conn.execute(
                        sa.select(E.c.playlist_id, sa.func.count())
                        .where(E.c.playlist_id.in_([r.id for r in rows]))
                        .group_by(E.c.playlist_id)
                    )
                }
            imgs = self._images(conn, (r.image_id for r in rows))
        objs = {r.id: orjson.dumps(self._obj(r, imgs, counts.get(r.id, 0))) for r in rows}
        return [objs.get(i) for i in ids]

    def search_fallback(self, query: IndexQuery, *, limit: int, offset: int, timeout_ms: int) -> Hits:
        """Public playlists for a search index query, from the tables, while the index cannot
        answer (see catalog/search_sql.py and playlist_search.py)."""
        return search_sql.search(
            self.db, query, limit=limit, offset=offset, timeout_ms=timeout_ms, shape=playlist_search.SHAPE
        )

    def on_change(self, listener: Callable[[str], None]) -> None:
        """`listener(playlist_id)` is called after a change search follows (created, details
        changed, deleted) has committed: the indexer then looks at once, search forgets answers."""
        self._listeners.append(listener)

    def _changed(self, playlist_id: str) -> None:
        for listener in self._listeners:
            listener(playlist_id)

    # Reading ----------------------------------------------------------------------------------
    def _read_row(self, conn: sa.Connection, playlist_id: str, viewer_id: str | None) -> _Row:
        """The playlist (with owner_name, is_collab) if this viewer may see it."""
        check_id(playlist_id, "playlist")
        found = _ROW.run(conn.connection, {"pid": playlist_id, "viewer": viewer_id}, sqlite=self.db.sqlite)
        row = _Row(*found[0]) if found else None
        if row is None or not (row.public or row.owner_id == viewer_id or row.is_collab):
            raise NotFound(f"playlist {playlist_id} not found")
        return row

    def _total(self, conn: sa.Connection, row: _Row) -> int:
        """The number of items, counted once per version (every edit makes a new version; a
        track deleted from the catalog takes its entries with it without one, hence the TTL)."""
        total = self._totals.get((row.id, row.version))
        if total is None:
            total = int(_TOTAL.run(conn.connection, {"pid": row.id}, sqlite=self.db.sqlite)[0][0])
            self._totals.put((row.id, row.version), total)
        return total

    def _page(self, conn: sa.Connection, row: _Row, limit: int, offset: int) -> list[tuple[Any, ...]]:
        """(track_id, added_at, added_by, position_key) of the items in this window. Reading
        page after page, a page starts where the previous one ended (remembered per version),
        which seeks in the index instead of stepping over `offset` entries."""
        raw, sqlite_ = conn.connection, self.db.sqlite
        after = self._cursors.get((row.id, row.version, offset)) if offset else None
        if after is not None:
            rows = _PAGE_AFTER.run(raw, {"pid": row.id, "after": after, "limit": limit}, sqlite=sqlite_)
        else:
            rows = _PAGE.run(raw, {"pid": row.id, "limit": limit, "offset": offset}, sqlite=sqlite_)
        if rows:
            self._cursors.put((row.id, row.version, offset + len(rows)), rows[-1][3])
        return rows

    def playlist(self, playlist_id: str, viewer_id: str | None) -> Obj:
        """The full playlist object: `tracks` holds the first page of 100 items."""
        with self.db.read() as conn:
            row = self._read_row(conn, playlist_id, viewer_id)
            total = self._total(conn, row)
            entries = self._page(conn, row, MAX_ITEMS_LIMIT, 0)
            obj = self._obj(row, self._images(conn, [row.image_id]), total)
        obj["tracks"] = page(
            f"{self._href(playlist_id)}/tracks",
            self._item_list(entries, viewer_id),
            limit=MAX_ITEMS_LIMIT,
            offset=0,
            total=total,
        )
        return obj

    def items(
        self,
        playlist_id: str,
        viewer_id: str | None,
        *,
        limit: int = MAX_ITEMS_LIMIT,
        offset: int = 0,
        path: ItemsPath = "tracks",
    ) -> Obj:
        """A page of the playlist's items, in playlist order."""
        check_window(limit, offset, max_limit=MAX_ITEMS_LIMIT)
        with self.db.read() as conn:
            row = self._read_row(conn, playlist_id, viewer_id)
            total = self._total(conn, row)
            entries = self._page(conn, row, limit, offset)
        items = self._item_list(entries, viewer_id)
        return page(f"{self._href(playlist_id)}/{path}", items, limit=limit, offset=offset, total=total)

    def playlists_of(self, owner_id: str, viewer_id: str | None, *, limit: int, offset: int) -> Obj:
        """A user's playlists, newest first: to themselves also the ones they collaborate on, to
        anyone else only their public ones."""
        check_id(owner_id, "user")
        check_window(limit, offset)
        with self.db.read() as conn:
            if owner_id == viewer_id:
                cond = sa.or_(
                    P.c.owner_id == owner_id,
                    P.c.id.in_(sa.select(C.c.playlist_id).where(C.c.user_id == owner_id)),
                )
            else:
                if conn.execute(sa.select(users.c.id).where(users.c.id == owner_id)).first() is None:
                    raise NotFound(f"user {owner_id} not found")
                cond = sa.and_(P.c.owner_id == owner_id, P.c.public)
            total = conn.execute(sa.select(sa.func.count()).select_from(P).where(cond)).scalar_one()
            rows = conn.execute(
                sa.select(P, users.c.display_name.label("owner_name"))
                .join(users, users.c.id == P.c.owner_id)
                .where(cond)
                .order_by(P.c.created_at.desc(), P.c.id)
                .limit(limit)
                .offset(offset)
            ).all()
            ids = [r.id for r in rows]
            counts: dict[str, int] = {
                r[0]: r[1]
                for r in conn.execute(
                    sa.select(E.c.playlist_id, sa.func.count())
                    .where(E.c.playlist_id.in_(ids))
                    .group_by(E.c.playlist_id)
                )
            }
            imgs = self._images(conn, (r.image_id for r in rows))
        items = [self._obj(r, imgs, counts.get(r.id, 0)) for r in rows]
        return page(
            f"{self.base}/v1/users/{owner_id}/playlists", items, limit=limit, offset=offset, total=total
        )

    def images(self, playlist_id: str, viewer_id: str | None) -> list[Obj]:
        with self.db.read() as conn:
            row = self._read_row(conn, playlist_id, viewer_id)
            return self._images(conn, [row.image_id]).get(row.image_id, []) if row.image_id else []

    def collaborators(self, playlist_id: str, viewer_id: str | None) -> list[Obj]:
        """The collaborators (user objects), for anyone who can see the playlist."""
        with self.db.read() as conn:
            self._read_row(conn, playlist_id, viewer_id)
            rows = conn.execute(
                sa.select(users.c.id, users.c.display_name)
                .join(C, C.c.user_id == users.c.id)
                .where(C.c.playlist_id == playlist_id)
                .order_by(C.c.created_at, users.c.id)
            ).all()
        return [self._user(r.id, r.display_name) for r in rows]

    # Writing details --------------------------------------------------------------------------
    def create(
        self,
        owner_id: str,
        *,
        name: str,
        description: str | None = None,
        public: bool = True,
        collaborative: bool = False,
    ) -> Obj:
        """Creates an empty playlist and returns the full playlist object."""
        _check_name(name)
        description = _check_description(description)
        _check_flags(public, collaborative)
        playlist_id, now = new_id(), self.clock.now()
        with self.db.write() as conn:
            conn.execute(
                sa.insert(P).values(
                    id=playlist_id,
                    owner_id=owner_id,
                    name=name,
                    description=description,
                    public=public,
                    collaborative=collaborative,
                    version=1,
                    created_at=now,
                    updated_at=now,
                )
            )
            changes.record(conn, "playlist", [playlist_id], now)  # search follows (public ones)
        self._changed(playlist_id)
        return self.playlist(playlist_id, owner_id)

    def change_details(
        self,
        user_id: str,
        playlist_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        public: bool | None = None,
        collaborative: bool | None = None,
    ) -> str:
        """Owner only. None leaves a field as it is; an empty description clears it. Making a
        playlist not collaborative removes its collaborators."""
        values: dict[str, Any] = {}
        if name is not None:
            values["name"] = _check_name(name)
        if description is not None:
            values["description"] = _check_description(description)
        now = self.clock.now()
        with self.db.write() as conn:
            row = self._editable(conn, playlist_id, user_id, details=True)
            new_public = row.public if public is None else public
            new_collaborative = row.collaborative if collaborative is None else collaborative
            _check_flags(new_public, new_collaborative)
            values |= {"public": new_public, "collaborative": new_collaborative}
            if not new_collaborative:
                conn.execute(sa.delete(C).where(C.c.playlist_id == playlist_id))
            changes.record(conn, "playlist", [playlist_id], now)  # name, description, public
            snapshot = self._bump(conn, row, now, **values)
        self._changed(playlist_id)
        return snapshot

    def upload_cover(self, user_id: str, playlist_id: str, data: bytes) -> str:
        """Owner only: `data` (the decoded image) is verified by content like every uploaded
        image, cut into the usual thumbnails and becomes the cover, replacing any mosaic."""
        with self.db.read() as conn:  # answer 404/403 before spending time on the image
            self._permission(conn, self._read_row(conn, playlist_id, user_id), user_id, details=True)
        try:
            thumbs = media.make_thumbnails(data, max_pixels=MAX_COVER_PIXELS)
        except media.MediaError as exc:
            if exc.code == "image_too_large":
                raise PayloadTooLarge(f"image: {exc}") from None
            raise UnsupportedMedia(f"image: not a cover we accept (a JPEG image): {exc}") from None
        now = self.clock.now()
        with self.db.write() as conn:
            row = self._editable(conn, playlist_id, user_id, details=True)
            image_id = self.image_store.store_image(
                conn, "uploaded", thumbs, hashlib.sha256(data).hexdigest(), now
            )
            return self._bump(conn, row, now, image_id=image_id)

    def add_collaborator(self, owner_id: str, playlist_id: str, user_id: str) -> None:
        """Owner only; the playlist must be collaborative. Adding twice is no error."""
        check_id(user_id, "user")
        with self.db.write() as conn:
            row = self._editable(conn, playlist_id, owner_id, details=True)
            if not row.collaborative:
                raise BadRequest(
                    "user_id: only a collaborative playlist has collaborators; "
                    "make it collaborative (and not public) first"
                )
            if user_id == row.owner_id:
                raise BadRequest("user_id: the owner already edits their own playlist")
            if conn.execute(sa.select(users.c.id).where(users.c.id == user_id)).first() is None:
                raise NotFound(f"user {user_id} not found")
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            conn.execute(
                dialect.insert(C)
                .values(playlist_id=playlist_id, user_id=user_id, created_at=self.clock.now())
                .on_conflict_do_nothing()
            )

    def remove_collaborator(self, caller_id: str, playlist_id: str, user_id: str) -> None:
        """The owner removes a collaborator, or a collaborator leaves."""
        check_id(user_id, "user")
        with self.db.write() as conn:
            row = self._lock(conn, playlist_id, caller_id)
            if caller_id != user_id:
                self._permission(conn, row, caller_id, details=True)
            conn.execute(sa.delete(C).where(C.c.playlist_id == playlist_id, C.c.user_id == user_id))

    def unfollow(self, user_id: str, playlist_id: str) -> None:
        """Spotify's "unfollow" of a playlist: its owner deletes it (with its items and
        collaborators), a collaborator leaves it. Tonearm has no following of others' playlists
        yet, so for anyone else there is nothing to unfollow."""
        with self.db.write() as conn:
            row = self._lock(conn, playlist_id, user_id)
            deleted = row.owner_id == user_id
            if deleted:
                conn.execute(sa.delete(P).where(P.c.id == playlist_id))
                changes.record(conn, "playlist", [playlist_id], self.clock.now())  # leaves search
            elif self._collaborates(conn, row, user_id):
                conn.execute(sa.delete(C).where(C.c.playlist_id == playlist_id, C.c.user_id == user_id))
            else:
                raise BadRequest(
                    "you do not follow this playlist (following other listeners' playlists is not "
                    "supported yet; save its tracks instead)"
                )
        if deleted:
            self._changed(playlist_id)

    # Writing tracks ---------------------------------------------------------------------------
    def add(
        self, user_id: str, playlist_id: str, track_ids: Sequence[str], *, position: int | None = None
    ) -> str:
        """Inserts the tracks at `position` (0 = first; None = at the end), in the order given.
        All or nothing: every track must be visible to the caller and the playlist must stay
        within MAX_TRACKS. The API takes at most MAX_URIS per call; callers inside may pass more."""
        if not track_ids:
            raise BadRequest(f"uris: give between 1 and {MAX_URIS} track URIs, not 0")
        now = self.clock.now()
        with self.db.write() as conn:
            row = self._editable(conn, playlist_id, user_id)
            self._check_tracks(conn, user_id, track_ids)
            total = self._count(conn, playlist_id)
            if total + len(track_ids) > MAX_TRACKS:
                raise BadRequest(
                    f"uris: a playlist holds at most {MAX_TRACKS} tracks; this one has {total}, "
                    f"so {MAX_TRACKS - total} more fit, not {len(track_ids)}"
                )
            at = total if position is None else position
            if not 0 <= at <= total:
                raise BadRequest(f"position: must be between 0 and {total} (the playlist's length)")
            before, after = self._neighbours(conn, playlist_id, at, total)
            keys = keys_between(before, after, len(track_ids))
            _insert_entries(conn, playlist_id, user_id, track_ids, keys, now)
            self._renumber_if_long(conn, playlist_id, keys)
            snapshot = self._bump(conn, row, now)
            work = self._refresh_cover(conn, playlist_id, row.image_id)
        self._make_cover(work)
        return snapshot

    def reorder(
        self,
        user_id: str,
        playlist_id: str,
        *,
        range_start: int,
        insert_before: int,
        range_length: int = 1,
        snapshot: str | None = None,
    ) -> str:
        """Moves `range_length` items starting at `range_start` to just before the item that is
        at `insert_before` now (positions before the move; `insert_before` = length moves them
        to the end), as Spotify. Rewrites `range_length` rows."""
        now = self.clock.now()
        with self.db.write() as conn:
            row = self._editable(conn, playlist_id, user_id, snapshot=snapshot)
            order = self._order(conn, row)
            total = len(order)
            if range_length < 1:
                raise BadRequest("range_length: must be at least 1")
            if total == 0:
                raise BadRequest("range_start: the playlist is empty, there is nothing to reorder")
            if not 0 <= range_start < total or range_start + range_length > total:
                raise BadRequest(
                    f"range_start, range_length: items {range_start} to {range_start + range_length - 1} "
                    f"are not all in the playlist (it has {total} items, positions 0 to {total - 1})"
                )
            if not 0 <= insert_before <= total:
                raise BadRequest(f"insert_before: must be between 0 and {total} (the playlist's length)")
            new_order: list[tuple[str, str]] | None = order
            if not range_start <= insert_before <= range_start + range_length:  # else it stays put
                moved = order[range_start : range_start + range_length]
                before = order[insert_before - 1][1] if insert_before > 0 else None
                after = order[insert_before][1] if insert_before < total else None
                keys = keys_between(before, after, range_length)
                done = conn.execute(
                    _SET_KEY, [{"eid": m[0], "key": k} for m, k in zip(moved, keys, strict=True)]
                )
                if done.rowcount != range_length:
                    # A moved entry is gone: its track was deleted from the catalog, which takes
                    # entries with it without a new version. Start again from the database.
                    self._orders.invalidate((row.id, row.version))
                    raise Conflict(
                        "the playlist changed while it was being edited (a track in it was removed "
                        "from the catalog); reload it and try again"
                    )
                moved_now = [(m[0], k) for m, k in zip(moved, keys, strict=True)]
                rest = order[:range_start] + order[range_start + range_length :]
                at = insert_before if insert_before < range_start else insert_before - range_length
                new_order = rest[:at] + moved_now + rest[at:]
                if max(len(k) for k in keys) > RENUMBER_ABOVE:
                    self.renumber(conn, playlist_id)
                    new_order = None  # new keys everywhere: the next edit reads them
            snapshot_now = self._bump(conn, row, now)
            if new_order is not None:
                self._orders.put((row.id, row.version + 1), new_order)
            work = self._refresh_cover(conn, playlist_id, row.image_id)
        self._make_cover(work)
        return snapshot_now

    def replace(
        self, user_id: str, playlist_id: str, track_ids: Sequence[str], *, snapshot: str | None = None
    ) -> str:
        """Replaces every item with these tracks (none: empties the playlist)."""
        if len(track_ids) > MAX_TRACKS:
            raise BadRequest(f"uris: a playlist holds at most {MAX_TRACKS} tracks, not {len(track_ids)}")
        now = self.clock.now()
        with self.db.write() as conn:
            row = self._editable(conn, playlist_id, user_id, snapshot=snapshot)
            self._check_tracks(conn, user_id, track_ids)
            conn.execute(sa.delete(E).where(E.c.playlist_id == playlist_id))
            if track_ids:
                keys = keys_between(None, None, len(track_ids))
                _insert_entries(conn, playlist_id, user_id, track_ids, keys, now)
            snapshot_now = self._bump(conn, row, now)
            work = self._refresh_cover(conn, playlist_id, row.image_id)
        self._make_cover(work)
        return snapshot_now

    def remove(
        self,
        user_id: str,
        playlist_id: str,
        removals: Sequence[tuple[str, Sequence[int] | None]],
        *,
        snapshot: str | None = None,
    ) -> str:
        """Removes (track id, positions) pairs: without positions every occurrence of the track,
        with positions (as they are before the removal) exactly those, each of which must hold
        that track. Tracks not in the playlist are ignored, as Spotify does."""
        if not 1 <= len(removals) <= MAX_URIS:
            raise BadRequest(f"tracks: give between 1 and {MAX_URIS} tracks to remove, not {len(removals)}")
        wanted: dict[int, str] = {}
        for track_id, positions in removals:
            for p in positions or ():
                if p in wanted:
                    raise BadRequest(f"positions: position {p} is given more than once")
                wanted[p] = track_id
        everywhere = sorted({t for t, positions in removals if positions is None})
        now = self.clock.now()
        with self.db.write() as conn:
            row = self._editable(conn, playlist_id, user_id, snapshot=snapshot)
            entry_ids: list[str] = []
            if wanted:
                total = self._count(conn, playlist_id)
                past = [p for p in sorted(wanted) if not 0 <= p < total]
                if past:
                    held = f"positions 0 to {total - 1}" if total else "it is empty"
                    raise BadRequest(
                        f"positions: {past[0]} is not a position in the playlist ({total} items: {held})"
                    )
                for p, entry in zip(
                    sorted(wanted), self._entries_at(conn, playlist_id, sorted(wanted)), strict=True
                ):
                    if entry.track_id != wanted[p]:
                        raise BadRequest(
                            f"positions: position {p} does not hold {uri('track', wanted[p])}; "
                            "reload the playlist (or send its snapshot_id) and try again"
                        )
                    entry_ids.append(entry.id)
            for chunk in _chunks(entry_ids, 500):
                conn.execute(sa.delete(E).where(E.c.id.in_(chunk)))
            if everywhere:
                conn.execute(sa.delete(E).where(E.c.playlist_id == playlist_id, E.c.track_id.in_(everywhere)))
            snapshot_now = self._bump(conn, row, now)
            work = self._refresh_cover(conn, playlist_id, row.image_id)
        self._make_cover(work)
        return snapshot_now

    # Helpers of the writes --------------------------------------------------------------------
    def _lock(self, conn: sa.Connection, playlist_id: str, user_id: str) -> Any:
        """The playlist row, locked for this transaction (PostgreSQL: FOR UPDATE serializes the
        edits of one playlist; SQLite's writer lock does already), if the user may see it."""
        check_id(playlist_id, "playlist")
        row = conn.execute(sa.select(P).where(P.c.id == playlist_id).with_for_update()).first()
        if row is None or not (
            row.public or row.owner_id == user_id or self._collaborates(conn, row, user_id)
        ):
            raise NotFound(f"playlist {playlist_id} not found")
        return row

    def _collaborates(self, conn: sa.Connection, row: Any, user_id: str) -> bool:
        if row.owner_id == user_id:
            return False
        found = conn.execute(
            sa.select(C.c.user_id).where(C.c.playlist_id == row.id, C.c.user_id == user_id)
        ).first()
        return found is not None

    def _permission(self, conn: sa.Connection, row: Any, user_id: str, *, details: bool = False) -> None:
        if row.owner_id == user_id:
            return
        if details:
            raise Forbidden("only the playlist's owner can change its details, cover and collaborators")
        if not self._collaborates(conn, row, user_id):
            raise Forbidden("only the playlist's owner and its collaborators can change its tracks")

    def _editable(
        self,
        conn: sa.Connection,
        playlist_id: str,
        user_id: str,
        *,
        details: bool = False,
        snapshot: str | None = None,
    ) -> Any:
        row = self._lock(conn, playlist_id, user_id)
        self._permission(conn, row, user_id, details=details)
        if snapshot is not None and _snapshot_version(snapshot, playlist_id) != row.version:
            raise Conflict(
                "snapshot_id: the playlist has changed since that snapshot (another edit came first); "
                "reload it and apply your change to its current snapshot_id"
            )
        return row

    def _bump(self, conn: sa.Connection, row: Any, now: dt.datetime, **values: Any) -> str:
        """Every edit makes a new version: returns its snapshot_id."""
        version = row.version + 1
        conn.execute(sa.update(P).where(P.c.id == row.id).values(version=version, updated_at=now, **values))
        return snapshot_id(row.id, version)

    def _count(self, conn: sa.Connection, playlist_id: str) -> int:
        return int(conn.execute(_COUNT, {"pid": playlist_id}).scalar_one())

    def _check_tracks(self, conn: sa.Connection, user_id: str, track_ids: Sequence[str]) -> None:
        """Only tracks the user may see can be added (404 like any track they cannot see)."""
        unique = list(dict.fromkeys(track_ids))
        visible = sa.and_(
            tracks.c.status == "ready",
            sa.or_(tracks.c.visibility == "public", tracks.c.owner_user_id == user_id),
        )
        found: set[str] = set()
        for chunk in _chunks(unique, 500):
            found.update(
                conn.execute(sa.select(tracks.c.id).where(tracks.c.id.in_(chunk), visible)).scalars()
            )
        missing = [t for t in unique if t not in found]
        if missing:
            raise NotFound(f"track {missing[0]} not found")

    def _neighbours(
        self, conn: sa.Connection, playlist_id: str, at: int, total: int
    ) -> tuple[str | None, str | None]:
        """The keys of the items at positions at-1 and at (None past either end)."""
        if total == 0:
            return None, None
        rows = conn.execute(
            _KEYS_AT, {"pid": playlist_id, "limit": 2 if 0 < at < total else 1, "offset": max(at - 1, 0)}
        ).all()
        if at == 0:
            return None, rows[0].position_key
        if at == total:
            return rows[0].position_key, None
        return rows[0].position_key, rows[1].position_key

    def _entries_at(self, conn: sa.Connection, playlist_id: str, positions: list[int]) -> list[Any]:
        """(id, track_id) of the entries at these positions (ascending), in one query."""
        numbered = (
            sa.select(
                E.c.id,
                E.c.track_id,
                (sa.func.row_number().over(order_by=E.c.position_key) - 1).label("pos"),
            )
            .where(E.c.playlist_id == playlist_id)
            .subquery()
        )
        return list(
            conn.execute(
                sa.select(numbered.c.id, numbered.c.track_id)
                .where(numbered.c.pos.in_(positions))
                .order_by(numbered.c.pos)
            ).all()
        )

    def _order(self, conn: sa.Connection, row: Any) -> list[tuple[str, str]]:
        """The playlist's (entry id, key) pairs in order at `row.version` (locked by the caller):
        kept from this process's last edit, or read in one pass over the index."""
        order = self._orders.get((row.id, row.version))
        if order is None:
            order = [(r[0], r[1]) for r in conn.execute(_ORDER, {"pid": row.id}).all()]
            self._orders.put((row.id, row.version), order)
        return order

    def _renumber_if_long(self, conn: sa.Connection, playlist_id: str, new_keys: Sequence[str]) -> None:
        if max(len(k) for k in new_keys) > RENUMBER_ABOVE:
            self.renumber(conn, playlist_id)

    def renumber(self, conn: sa.Connection, playlist_id: str) -> None:
        """Gives the playlist's entries fresh short keys, order unchanged, in one batch. The keys
        first move aside to "~<entry id>" ("~" is no key digit) so no new key meets an old one
        in the unique index midway."""
        ids = (
            conn.execute(sa.select(E.c.id).where(E.c.playlist_id == playlist_id).order_by(E.c.position_key))
            .scalars()
            .all()
        )
        conn.execute(
            sa.update(E).where(E.c.playlist_id == playlist_id).values(position_key=sa.literal("~") + E.c.id)
        )
        keys = keys_between(None, None, len(ids))
        conn.execute(_SET_KEY, [{"eid": i, "key": k} for i, k in zip(ids, keys, strict=True)])

    # Derived cover ----------------------------------------------------------------------------
    def _cover_sources(self, conn: sa.Connection, playlist_id: str) -> list[str]:
        """The first four distinct album covers of the playlist's public tracks, or the first
        cover alone when there are fewer than four, in order; read in growing chunks since the
        first few entries almost always settle it."""

        def chunk_query(limit: int, offset: int) -> sa.Select[Any]:
            # The entries first, through the (playlist_id, position_key) index, then their covers:
            # joined the other way round, PostgreSQL may plan a join of every entry (20+ ms at
            # 10,000) before it has statistics for a freshly filled playlist.
            first = (
                sa.select(E.c.track_id, E.c.position_key)
                .where(E.c.playlist_id == playlist_id)
                .order_by(E.c.position_key)
                .limit(limit)
                .offset(offset)
                .subquery()
            )
            # Outer joins: one row per entry (None where it has no public cover), so a short
            # chunk means the end of the playlist.
            public = sa.and_(
                tracks.c.id == first.c.track_id, tracks.c.status == "ready", tracks.c.visibility == "public"
            )
            return (
                sa.select(albums.c.image_id)
                .select_from(
                    first.outerjoin(tracks, public).outerjoin(albums, albums.c.id == tracks.c.album_id)
                )
                .order_by(first.c.position_key)
            )

        found: list[str] = []
        offset, chunk = 0, 32
        while len(found) < _MOSAIC_TILES:
            rows = conn.execute(chunk_query(chunk, offset)).scalars().all()
            for image_id in rows:
                if image_id is not None and image_id not in found:
                    found.append(image_id)
                    if len(found) == _MOSAIC_TILES:
                        break
            if len(rows) < chunk:
                break
            offset, chunk = offset + chunk, min(chunk * 4, 4096)
        return found if len(found) == _MOSAIC_TILES else found[:1]

    def _refresh_cover(
        self, conn: sa.Connection, playlist_id: str, image_id: str | None
    ) -> _CoverWork | None:
        """Points the playlist at the derived cover its items call for, if one exists already;
        returns the work of making it otherwise. A cover the owner uploaded is left alone."""
        current = None
        if image_id is not None:
            current = conn.execute(
                sa.select(images.c.source, images.c.content_hash).where(images.c.id == image_id)
            ).first()
            if current is not None and current.source != MOSAIC:
                return None
        sources = self._cover_sources(conn, playlist_id)
        if not sources:
            if image_id is not None:
                conn.execute(sa.update(P).where(P.c.id == playlist_id).values(image_id=None))
            return None
        wanted = hashlib.sha256(("playlist-cover:v1:" + ",".join(sources)).encode()).hexdigest()
        if current is not None and current.content_hash == wanted:
            return None
        made = conn.execute(
            sa.select(images.c.id).where(images.c.content_hash == wanted, images.c.source == MOSAIC).limit(1)
        ).scalar()
        if made is not None:
            conn.execute(sa.update(P).where(P.c.id == playlist_id).values(image_id=made))
            return None
        return _CoverWork(playlist_id, tuple(sources), wanted)

    def _make_cover(self, work: _CoverWork | None) -> None:
        """Renders and stores a derived cover, after the edit committed. Best effort: a cover
        that cannot be made (an album image's bytes missing) leaves the old one and is logged."""
        if work is None:
            return
        try:
            with self.db.read() as conn:
                keys = dict(
                    conn.execute(
                        sa.select(image_variants.c.image_id, image_variants.c.blob_key)
                        .where(image_variants.c.image_id.in_(work.sources))
                        .order_by(image_variants.c.size)  # the largest last, so it wins below
                    ).all()
                )
            tiles = []
            for source in work.sources:
                with self.blobs.open(keys[source]) as fh:
                    tiles.append(fh.read())
            jpeg = tiles[0] if len(tiles) == 1 else _mosaic(tiles)
            thumbs = media.make_thumbnails(jpeg)
            with self.db.write() as conn:
                row = conn.execute(
                    sa.select(P.c.image_id).where(P.c.id == work.playlist_id).with_for_update()
                ).first()
                # Still wanted? Another edit may have changed the start of the playlist meanwhile.
                if row is None or self._refresh_cover(conn, work.playlist_id, row.image_id) != work:
                    return
                image_id = self.image_store.store_image(
                    conn, MOSAIC, thumbs, work.content_hash, self.clock.now()
                )
                conn.execute(sa.update(P).where(P.c.id == work.playlist_id).values(image_id=image_id))
        except BlobNotFound as exc:
            log.warning("playlist.cover_failed", playlist_id=work.playlist_id, missing_blob=str(exc))
        except Exception:
            log.warning("playlist.cover_failed", playlist_id=work.playlist_id, exc_info=True)


def _insert_entries(
    conn: sa.Connection,
    playlist_id: str,
    user_id: str,
    track_ids: Sequence[str],
    keys: Sequence[str],
    now: dt.datetime,
) -> None:
    """One entry per track, at these position keys, added by `user_id` now."""
    conn.execute(
        sa.insert(E),
        [
            {
                "id": new_id(),
                "playlist_id": playlist_id,
                "track_id": t,
                "position_key": k,
                "added_by": user_id,
                "added_at": now,
            }
            for t, k in zip(track_ids, keys, strict=True)
        ],
    )


def _stamp(value: Any) -> str:
    """Spotify's timestamp from a raw `added_at`: SQLite's text ("2026-01-01 12:00:00.000000")
    or PostgreSQL's naive UTC datetime."""
    if isinstance(value, str):
        if len(value) >= 19 and value[10] == " ":
            return f"{value[:10]}T{value[11:19]}Z"
        value = dt.datetime.fromisoformat(value)
    return str(value.strftime("%Y-%m-%dT%H:%M:%SZ"))


def _mosaic(tiles: Sequence[bytes]) -> bytes:
    """A 2x2 JPEG of four covers (our own square JPEG thumbnails)."""
    half = _MOSAIC_EDGE // 2
    canvas = Image.new("RGB", (_MOSAIC_EDGE, _MOSAIC_EDGE))
    for n, data in enumerate(tiles[:_MOSAIC_TILES]):
        with Image.open(io.BytesIO(data), formats=("JPEG",)) as tile:
            square = tile.convert("RGB").resize((half, half), Image.Resampling.LANCZOS)
        canvas.paste(square, ((n % 2) * half, (n // 2) * half))
    out = io.BytesIO()
    canvas.save(out, format="JPEG", quality=88)
    return out.getvalue()


def _chunks(values: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]
