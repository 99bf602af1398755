"""Sharing: what the public pages, embeds and oEmbed show of an object, URI resolution, and short
share links with an optional expiry and a click count.

The one rule: **private items are never exposed.** Public routes (pages, embeds, oEmbed, short
links) are anonymous and see only what anyone may see:
- a track that is `ready` and public;
- an album or an artist with at least one such track (an album of private uploads, or an artist
  known only from someone's private uploads, is as good as missing);
- a playlist whose `public` flag is set, listing only such tracks;
- a user (profiles are public), listing only their public playlists.
Everything else answers exactly like an unknown id (404), so nothing can be probed. `resolve`
also shows the caller their own private items. A share link can only be made for what is public
("make it public to share it"), and it is checked again on every click: an item made private
afterwards leads to a 404 page.

Playlists are read straight from their tables (read-only): the playlist service owns writes.
"""

from __future__ import annotations

import datetime as dt
import math
import secrets
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from html import escape
from typing import Any

import sqlalchemy as sa

from tonearm import media
from tonearm.domains.accounts.tables import users
from tonearm.domains.catalog.tables import albums, artists, image_variants, track_artists, tracks
from tonearm.domains.library.tables import playlist_collaborators, playlist_entries, playlists
from tonearm.domains.sharing.links import KINDS, Kind, Ref, ShortLink, is_code, parse_reference
from tonearm.domains.sharing.tables import share_links
from tonearm.domains.streaming.service import StreamingService
from tonearm.kernel.clock import Clock, iso
from tonearm.kernel.db import Database
from tonearm.kernel.errors import BadRequest, Forbidden, NotFound, TonearmError, TooManyRequests
from tonearm.kernel.ids import ALPHABET, is_valid_id
from tonearm.kernel.paging import check_window, page
from tonearm.kernel.ratelimit import RateLimiter

LIST_LIMIT = 100  # tracks listed on a page (a playlist may hold 10,000)
EMBED_LIST_LIMIT = 50
TOP_TRACKS = 10
USER_PLAYLISTS = 50
CODE_LENGTH = 10  # 62**10 ~ 8e17 codes: unguessable enough for links meant to be passed around
MIN_EXPIRY_S = 60
MAX_EXPIRY_S = 365 * 24 * 3600
PREVIEW_USER = "preview"  # the `u` a preview URL is signed for: nobody's account
PREVIEW_BUCKET_S = 300  # preview URLs change every 5 minutes, so a page renders the same in between
EMBED_WIDTH = 456
EMBED_HEIGHT = {"track": 152, "album": 352, "artist": 352, "playlist": 352}
OEMBED_CACHE_AGE_S = 3600


class Gone(TonearmError):
    """The thing existed but is no more (an expired share link)."""

    status = 410
    reason = "gone"


@dataclass(frozen=True, slots=True)
class Image:
    url: str
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Link:
    """A named page of this server."""

    name: str
    url: str


@dataclass(frozen=True, slots=True)
class Preview:
    """A short-lived signed URL to a low-bitrate rendition of a public track."""

    url: str
    content_type: str


@dataclass(frozen=True, slots=True)
class TrackLine:
    id: str
    name: str
    url: str
    artists: tuple[Link, ...]
    album: Link | None
    duration_ms: int
    disc_number: int
    track_number: int
    explicit: bool
    preview: Preview | None


@dataclass(frozen=True, slots=True)
class PublicObject:
    """Everything a public page, an embed or oEmbed shows of one object."""

    kind: Kind
    id: str
    name: str
    url: str  # the canonical page
    description: str
    images: tuple[Image, ...]  # largest first (at most 640 px)
    artists: tuple[Link, ...] = ()  # a track's or an album's artists
    album: Link | None = None  # a track's album
    owner: Link | None = None  # a playlist's owner
    release_date: str | None = None
    duration_ms: int | None = None  # a track's, or the sum of the listed tracks'
    disc_number: int | None = None
    track_number: int | None = None
    tracks: tuple[TrackLine, ...] = ()  # an album's or playlist's tracks, an artist's top tracks
    total_tracks: int = 0  # all of them (a playlist lists LIST_LIMIT)
    playlists: tuple[Link, ...] = ()  # a user's public playlists
    preview: Preview | None = None  # the track's, or the first listed track's

    @property
    def uri(self) -> str:
        return f"tonearm:{self.kind}:{self.id}"

    @property
    def image(self) -> Image | None:
        return self.images[0] if self.images else None

    @property
    def author(self) -> Link | None:
        """Who made it, as oEmbed's author and the page's byline."""
        if self.kind in ("track", "album"):
            return self.artists[0] if self.artists else None
        if self.kind == "playlist":
            return self.owner
        return None


def _public_tracks() -> sa.ColumnElement[bool]:
    return sa.and_(tracks.c.status == "ready", tracks.c.visibility == "public")


def _visible_tracks(viewer_id: str | None) -> sa.ColumnElement[bool]:
    if viewer_id is None:
        return _public_tracks()
    return sa.and_(
        tracks.c.status == "ready",
        sa.or_(tracks.c.visibility == "public", tracks.c.owner_user_id == viewer_id),
    )


def _exists_cond(kind: Kind, object_id: str, viewer_id: str | None) -> sa.ColumnElement[bool]:
    """Whether the object exists and `viewer_id` (None: anyone) may see it (module docstring)."""
    seen = _visible_tracks(viewer_id)
    if kind == "track":
        return sa.exists().where(tracks.c.id == object_id, seen)
    if kind == "album":
        return sa.exists().where(tracks.c.album_id == object_id, seen)
    if kind == "artist":
        return sa.or_(
            sa.exists().where(
                track_artists.c.artist_id == object_id, tracks.c.id == track_artists.c.track_id, seen
            ),
            sa.exists().where(albums.c.artist_id == object_id, tracks.c.album_id == albums.c.id, seen),
        )
    if kind == "playlist":
        allowed: sa.ColumnElement[bool] = playlists.c.public.is_(True)
        if viewer_id is not None:
            allowed = sa.or_(
                allowed,
                playlists.c.owner_id == viewer_id,
                sa.exists().where(
                    playlist_collaborators.c.playlist_id == playlists.c.id,
                    playlist_collaborators.c.user_id == viewer_id,
                ),
            )
        return sa.exists().where(playlists.c.id == object_id, allowed)
    return sa.exists().where(users.c.id == object_id)


def _iso_or_none(value: dt.datetime | None) -> str | None:
    return iso(value) if value is not None else None


class SharingService:
    def __init__(
        self,
        db: Database,
        streaming: StreamingService,
        clock: Clock,
        limiter: RateLimiter,
        public_url: str,
        *,
        preview_ttl_s: int = 900,
        shares_per_hour: int = 100,
    ) -> None:
        self.db = db
        self.streaming = streaming
        self.clock = clock
        self.limiter = limiter
        self.public_url = public_url
        self.base = public_url.rstrip("/")
        self.preview_ttl_s = preview_ttl_s
        self.shares_per_hour = shares_per_hour

    # URLs -------------------------------------------------------------------------------------
    def page_url(self, kind: str, object_id: str) -> str:
        return f"{self.base}/{kind}/{object_id}"

    def embed_url(self, kind: str, object_id: str) -> str:
        return f"{self.base}/embed/{kind}/{object_id}"

    def player_url(self, obj: PublicObject) -> str:
        """The object in the web player (it routes by hash; it has album and artist views)."""
        if obj.kind == "track" and obj.album is not None:
            return f"{self.base}/#/album/{obj.album.url.rsplit('/', 1)[-1]}"
        if obj.kind == "user":
            return f"{self.base}/#/"
        return f"{self.base}/#/{obj.kind}/{obj.id}"

    # Visibility -------------------------------------------------------------------------------
    def _exists(self, conn: sa.Connection, ref: Ref, viewer_id: str | None) -> bool:
        return bool(conn.execute(sa.select(_exists_cond(ref.kind, ref.id, viewer_id))).scalar())

    def target(self, text: str | None, viewer_id: str | None, *, field: str = "uri") -> Ref:
        """What a URI, page URL or short link names, if `viewer_id` (None: anyone) may see it;
        NotFound otherwise, for a missing object and another user's private one alike. A short
        link is followed without counting a click."""
        found = parse_reference(text, self.public_url, field=field)
        with self.db.read() as conn:
            if isinstance(found, ShortLink):
                found = self._live_link(conn, found.code).target
            if not self._exists(conn, found, viewer_id):
                raise NotFound(f"{found.kind} {found.id} not found")
        return found

    # Resolve ----------------------------------------------------------------------------------
    def resolve(self, text: str | None, viewer_id: str | None) -> dict[str, Any]:
        """`{type, id, uri, href, external_urls, name}` of what a URI or page URL names."""
        ref = self.target(text, viewer_id)
        with self.db.read() as conn:
            name = self._name(conn, ref)
        return {
            "type": ref.kind,
            "id": ref.id,
            "uri": ref.uri,
            "href": f"{self.base}/v1/{ref.kind}s/{ref.id}",
            "external_urls": {"tonearm": self.page_url(ref.kind, ref.id)},
            "name": name,
        }

    def _name(self, conn: sa.Connection, ref: Ref) -> str:
        column = {
            "track": tracks.c.title,
            "album": albums.c.name,
            "artist": artists.c.name,
            "playlist": playlists.c.name,
            "user": users.c.display_name,
        }[ref.kind]
        table = column.table
        return str(conn.execute(sa.select(column).where(table.c.id == ref.id)).scalar_one())

    # Public objects ---------------------------------------------------------------------------
    def public(self, kind: Kind, object_id: str, *, previews: int = 1) -> PublicObject:
        """What anyone may see of one object; NotFound for a missing, invalid or private one.
        `previews`: how many listed tracks get a preview URL (the first one is the page's)."""
        if not is_valid_id(object_id):
            raise NotFound(f"no {kind} has the id {object_id[:40]!r} (ids are 22 base-62 characters)")
        build = {
            "track": self._track,
            "album": self._album,
            "artist": self._artist,
            "playlist": self._playlist,
            "user": self._user,
        }[kind]
        with self.db.read() as conn:
            obj = build(conn, object_id)
        if obj is None:
            raise NotFound(f"{kind} {object_id} not found")
        return self._with_previews(obj, previews)

    def _track(self, conn: sa.Connection, track_id: str) -> PublicObject | None:
        lines = self._lines(conn, sa.and_(tracks.c.id == track_id, _public_tracks()), [], limit=1)
        if not lines:
            return None
        line, row = lines[0]
        return PublicObject(
            kind="track",
            id=track_id,
            name=line.name,
            url=line.url,
            description=_join(
                ", ".join(a.name for a in line.artists),
                line.album.name if line.album else None,
                "Song",
                (row.release_date or row.album_release_date or "")[:4],
            ),
            images=self._images(conn, row.image_id),
            artists=line.artists,
            album=line.album,
            release_date=row.release_date or row.album_release_date,
            duration_ms=line.duration_ms,
            disc_number=line.disc_number,
            track_number=line.track_number,
            tracks=(line,),
            total_tracks=1,
        )

    def _album(self, conn: sa.Connection, album_id: str) -> PublicObject | None:
        row = conn.execute(
            sa.select(albums, artists.c.name.label("artist_name"))
            .join(artists, artists.c.id == albums.c.artist_id)
            .where(albums.c.id == album_id)
        ).first()
        if row is None:
            return None
        cond = sa.and_(tracks.c.album_id == album_id, _public_tracks())
        order = [tracks.c.disc_number, tracks.c.track_number, tracks.c.title, tracks.c.id]
        lines = [line for line, _ in self._lines(conn, cond, order, limit=LIST_LIMIT)]
        if not lines:
            return None  # an album of private (or unfinished) tracks only
        total = self._count(conn, cond)
        year = (row.release_date or "")[:4]
        kind_name = {"single": "Single", "compilation": "Compilation"}.get(row.album_type, "Album")
        return PublicObject(
            kind="album",
            id=album_id,
            name=row.name,
            url=self.page_url("album", album_id),
            description=_join(row.artist_name, kind_name, year, _songs(total)),
            images=self._images(conn, row.image_id),
            artists=(Link(row.artist_name, self.page_url("artist", row.artist_id)),),
            release_date=row.release_date,
            duration_ms=sum(t.duration_ms for t in lines),
            tracks=tuple(lines),
            total_tracks=total,
        )

    def _artist(self, conn: sa.Connection, artist_id: str) -> PublicObject | None:
        row = conn.execute(sa.select(artists).where(artists.c.id == artist_id)).first()
        if row is None or not self._exists(conn, Ref("artist", artist_id), None):
            return None
        by_artist = sa.exists().where(
            track_artists.c.track_id == tracks.c.id, track_artists.c.artist_id == artist_id
        )
        cond = sa.and_(by_artist, _public_tracks())
        order = [tracks.c.play_count.desc(), tracks.c.created_at.desc(), tracks.c.title, tracks.c.id]
        lines = [line for line, _ in self._lines(conn, cond, order, limit=TOP_TRACKS)]
        # Their own picture, else the newest cover of one of their albums anyone may see.
        image_id = (
            row.image_id
            or conn.execute(
                sa.select(albums.c.image_id)
                .where(
                    albums.c.artist_id == artist_id,
                    albums.c.image_id.is_not(None),
                    sa.exists().where(tracks.c.album_id == albums.c.id, _public_tracks()),
                )
                .order_by(sa.func.coalesce(albums.c.release_date, "").desc(), albums.c.id)
                .limit(1)
            ).scalar()
        )
        songs = self._count(conn, cond)
        return PublicObject(
            kind="artist",
            id=artist_id,
            name=row.name,
            url=self.page_url("artist", artist_id),
            description=_join("Artist", _songs(songs), _followers(row.followers)),
            images=self._images(conn, image_id),
            tracks=tuple(lines),
            total_tracks=songs,
        )

    def _playlist(self, conn: sa.Connection, playlist_id: str) -> PublicObject | None:
        row = conn.execute(
            sa.select(playlists, users.c.display_name.label("owner_name"))
            .join(users, users.c.id == playlists.c.owner_id)
            .where(playlists.c.id == playlist_id, playlists.c.public.is_(True))
        ).first()
        if row is None:
            return None
        in_playlist = sa.and_(
            playlist_entries.c.playlist_id == playlist_id,
            playlist_entries.c.track_id == tracks.c.id,
            _public_tracks(),
        )
        order = [playlist_entries.c.position_key, playlist_entries.c.id]
        pairs = self._lines(conn, in_playlist, order, limit=LIST_LIMIT, with_entries=True)
        lines = [line for line, _ in pairs]
        total = self._count(conn, in_playlist, with_entries=True)
        image_id = row.image_id or next((r.image_id for _, r in pairs if r.image_id), None)
        owner = Link(row.owner_name, self.page_url("user", row.owner_id))
        return PublicObject(
            kind="playlist",
            id=playlist_id,
            name=row.name,
            url=self.page_url("playlist", playlist_id),
            description=row.description or _join("Playlist", owner.name, _songs(total)),
            images=self._images(conn, image_id),
            owner=owner,
            duration_ms=sum(t.duration_ms for t in lines),
            tracks=tuple(lines),
            total_tracks=total,
        )

    def _user(self, conn: sa.Connection, user_id: str) -> PublicObject | None:
        row = conn.execute(
            sa.select(users.c.display_name, users.c.avatar_image_id).where(users.c.id == user_id)
        ).first()
        if row is None:
            return None
        public_lists = sa.and_(playlists.c.owner_id == user_id, playlists.c.public.is_(True))
        found = conn.execute(
            sa.select(playlists.c.id, playlists.c.name)
            .where(public_lists)
            .order_by(playlists.c.created_at.desc(), playlists.c.id)
            .limit(USER_PLAYLISTS)
        ).all()
        n = conn.execute(sa.select(sa.func.count()).select_from(playlists).where(public_lists)).scalar_one()
        return PublicObject(
            kind="user",
            id=user_id,
            name=row.display_name,
            url=self.page_url("user", user_id),
            description=_join("Profile", _count_of(n, "public playlist")),
            images=self._images(conn, row.avatar_image_id),
            playlists=tuple(Link(p.name, self.page_url("playlist", p.id)) for p in found),
        )

    def _lines(
        self,
        conn: sa.Connection,
        cond: sa.ColumnElement[bool],
        order: Sequence[Any],
        *,
        limit: int,
        with_entries: bool = False,
    ) -> list[tuple[TrackLine, Any]]:
        """Track lines (with their rows) for the tracks matching `cond`, in `order`."""
        q = sa.select(
            tracks.c.id,
            tracks.c.title,
            tracks.c.duration_ms,
            tracks.c.disc_number,
            tracks.c.track_number,
            tracks.c.explicit,
            tracks.c.release_date,
            albums.c.id.label("album_id"),
            albums.c.name.label("album_name"),
            albums.c.image_id,
            albums.c.release_date.label("album_release_date"),
        )
        if with_entries:
            q = q.select_from(playlist_entries).join(tracks, playlist_entries.c.track_id == tracks.c.id)
        rows = conn.execute(
            q.join(albums, albums.c.id == tracks.c.album_id).where(cond).order_by(*order).limit(limit)
        ).all()
        names: dict[str, list[Link]] = defaultdict(list)
        if rows:
            for r in conn.execute(
                sa.select(track_artists.c.track_id, artists.c.id, artists.c.name)
                .join(artists, artists.c.id == track_artists.c.artist_id)
                .where(track_artists.c.track_id.in_({r.id for r in rows}))
                .order_by(track_artists.c.track_id, track_artists.c.position)
            ):
                names[r.track_id].append(Link(r.name, self.page_url("artist", r.id)))
        return [
            (
                TrackLine(
                    id=r.id,
                    name=r.title,
                    url=self.page_url("track", r.id),
                    artists=tuple(names[r.id]),
                    album=Link(r.album_name, self.page_url("album", r.album_id)),
                    duration_ms=r.duration_ms,
                    disc_number=r.disc_number,
                    track_number=r.track_number,
                    explicit=bool(r.explicit),
                    preview=None,
                ),
                r,
            )
            for r in rows
        ]

    def _count(self, conn: sa.Connection, cond: sa.ColumnElement[bool], *, with_entries: bool = False) -> int:
        source = playlist_entries.join(tracks, playlist_entries.c.track_id == tracks.c.id)
        q = sa.select(sa.func.count()).select_from(source if with_entries else tracks).where(cond)
        return int(conn.execute(q).scalar_one())

    def _images(self, conn: sa.Connection, image_id: str | None) -> tuple[Image, ...]:
        """The image's sizes up to 640 px, largest first (the 640 px one is the cover to share)."""
        if not image_id:
            return ()
        rows = conn.execute(
            sa.select(image_variants.c.size, image_variants.c.width, image_variants.c.height)
            .where(image_variants.c.image_id == image_id, image_variants.c.size <= 640)
            .order_by(image_variants.c.size.desc())
        ).all()
        return tuple(Image(f"{self.base}/images/{image_id}/{r.size}", r.width, r.height) for r in rows)

    # Previews ---------------------------------------------------------------------------------
    def _with_previews(self, obj: PublicObject, n: int) -> PublicObject:
        if n <= 0 or not obj.tracks:
            return obj
        lines = tuple(
            replace(t, preview=self.preview(t.id, t.duration_ms)) if i < n else t
            for i, t in enumerate(obj.tracks)
        )
        first = next((t.preview for t in lines if t.preview is not None), None)
        return replace(obj, tracks=lines, preview=first)

    def preview(self, track_id: str, duration_ms: int) -> Preview | None:
        """A signed URL to the lowest-bitrate lossy rendition (AAC 96 kb/s, made on first use
        when missing) of a public track, valid for `preview_ttl_s` plus the track's length. It is
        the whole track at a low bitrate, not a 30-second clip (streaming has no clip rendition).
        Only ever called for tracks the caller checked are public."""
        try:
            info = self.streaming.info(track_id)
        except NotFound:
            return None
        if not info.renditions:
            return None  # nothing to make a rendition from
        lossy = sorted(
            (
                r
                for r in info.renditions.values()
                # A transcode, never the uploaded file itself (its tags and bytes are the uploader's).
                if r.name != "original" and r.codec in ("aac", "mp3") and 0 < r.bitrate_kbps <= 160
            ),
            key=lambda r: (r.bitrate_kbps, r.codec != "aac"),
        )
        spec = media.RenditionSpec("aac", 96, "m4a")
        name, content_type = (
            (lossy[0].name, lossy[0].content_type) if lossy else (spec.name, spec.content_type)
        )
        # In 5-minute steps, so a page renders the same bytes for a while (shared caches agree).
        now = int(time.time())  # the signer checks against wall time, not the app's clock
        exp = (now // PREVIEW_BUCKET_S + 1) * PREVIEW_BUCKET_S + self.preview_ttl_s
        exp += math.ceil(duration_ms / 1000)
        query = self.streaming.signer.query(track_id, name, PREVIEW_USER, exp)
        return Preview(f"{self.base}/stream/{track_id}/{name}?{query}", content_type)

    # oEmbed -----------------------------------------------------------------------------------
    def oembed(self, url: str | None, *, maxwidth: int | None, maxheight: int | None) -> dict[str, Any]:
        """The oEmbed 1.0 `rich` response for one of our page URLs (never fetched: parsed)."""
        for name, value in (("maxwidth", maxwidth), ("maxheight", maxheight)):
            if value is not None and value < 1:
                raise BadRequest(f"{name}: must be a positive number of pixels")
        ref = self.target(url, None, field="url")
        if ref.kind == "user":
            raise NotFound("url: user profiles have no embeddable player")
        obj = self.public(ref.kind, ref.id, previews=0)
        width = min(EMBED_WIDTH, maxwidth or EMBED_WIDTH)
        height = min(EMBED_HEIGHT[ref.kind], maxheight or EMBED_HEIGHT[ref.kind])
        out: dict[str, Any] = {
            "type": "rich",
            "version": "1.0",
            "title": obj.name,
            "provider_name": "Tonearm",
            "provider_url": f"{self.base}/",
            "cache_age": OEMBED_CACHE_AGE_S,
            "html": _iframe(self.embed_url(ref.kind, ref.id), width, height, obj.name),
            "width": width,
            "height": height,
        }
        author = obj.author or (Link(obj.name, obj.url) if obj.kind == "artist" else None)
        if author is not None:
            out["author_name"] = author.name
            out["author_url"] = author.url
        thumb = next(
            (
                i
                for i in obj.images
                if i.width <= (maxwidth or i.width) and i.height <= (maxheight or i.height)
            ),
            None,
        )
        if thumb is not None:
            out |= {
                "thumbnail_url": thumb.url,
                "thumbnail_width": thumb.width,
                "thumbnail_height": thumb.height,
            }
        return out

    # Share links ------------------------------------------------------------------------------
    def create_share(
        self, user_id: str, text: str | None, expires_in: int | None, description: str | None = None
    ) -> dict[str, Any]:
        """A short link to something public. The caller's own private items are refused with a
        clear reason (a link would lead nowhere); anyone else's look missing."""
        description = _description(description)
        wait = self.limiter.retry_after(f"share:{user_id}", self.shares_per_hour, 3600)
        if wait > 0:
            raise TooManyRequests(
                f"share link limit reached ({self.shares_per_hour} per hour); try again in {int(wait) + 1} s",
                int(wait) + 1,
            )
        _check_expiry(expires_in)
        found = parse_reference(text, self.public_url, field="uri")
        if isinstance(found, ShortLink):
            raise BadRequest("uri: this is already a share link; share the page or URI it leads to")
        with self.db.read() as conn:
            if not self._exists(conn, found, None):
                if self._exists(conn, found, user_id):
                    raise Forbidden(f"this {found.kind} is private: make it public to share it")
                raise NotFound(f"{found.kind} {found.id} not found")
        now = self.clock.now()
        row = {
            "user_id": user_id,
            "kind": found.kind,
            "object_id": found.id,
            "created_at": now,
            "expires_at": now + dt.timedelta(seconds=expires_in) if expires_in is not None else None,
            "description": description,
        }
        for attempt in range(5):
            code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
            try:
                with self.db.write() as conn:
                    conn.execute(sa.insert(share_links).values(code=code, **row))
                break
            except sa.exc.IntegrityError:  # a code taken already (about never happens): draw again
                if attempt == 4:
                    raise
        self.limiter.hit(f"share:{user_id}")
        return self.share(user_id, code)

    def shares(self, user_id: str, *, limit: int, offset: int) -> dict[str, Any]:
        """The caller's share links, the newest first, in a paging object."""
        check_window(limit, offset)
        mine = share_links.c.user_id == user_id
        with self.db.read() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(share_links).where(mine)).scalar_one()
            rows = conn.execute(
                sa.select(share_links)
                .where(mine)
                .order_by(share_links.c.created_at.desc(), share_links.c.code)
                .limit(limit)
                .offset(offset)
            ).all()
        items = [self._share_obj(r) for r in rows]
        return page(f"{self.base}/v1/me/shares", items, limit=limit, offset=offset, total=total)

    def share(self, user_id: str, code: str) -> dict[str, Any]:
        with self.db.read() as conn:
            row = conn.execute(sa.select(share_links).where(*self._mine(user_id, code))).first()
        if row is None:
            raise NotFound(f"share link {code[:20]} not found")
        return self._share_obj(row)

    def update_share(
        self,
        user_id: str,
        code: str,
        *,
        description: str | None = None,
        expires_in: int | None = None,
        never_expires: bool = False,
    ) -> dict[str, Any]:
        """Changes a link's description and/or expiry in place (its URL stays what people were
        sent); None leaves a field as it is, `never_expires` removes the expiry."""
        values: dict[str, Any] = {}
        if description is not None:
            values["description"] = _description(description)
        if never_expires:
            values["expires_at"] = None
        elif expires_in is not None:
            _check_expiry(expires_in)
            values["expires_at"] = self.clock.now() + dt.timedelta(seconds=expires_in)
        if values:
            with self.db.write() as conn:
                done = conn.execute(sa.update(share_links).where(*self._mine(user_id, code)).values(**values))
            if not done.rowcount:
                raise NotFound(f"share link {code[:20]} not found")
        return self.share(user_id, code)

    def delete_share(self, user_id: str, code: str) -> None:
        with self.db.write() as conn:
            gone = conn.execute(sa.delete(share_links).where(*self._mine(user_id, code))).rowcount
        if not gone:
            raise NotFound(f"share link {code[:20]} not found")

    def _mine(self, user_id: str, code: str) -> tuple[sa.ColumnElement[bool], ...]:
        if not is_code(code):
            return (sa.false(),)
        return share_links.c.user_id == user_id, share_links.c.code == code

    def follow(self, code: str, *, count: bool = True) -> str:
        """The page a short link leads to, counting the click (atomically: two clicks at once
        count two) unless `count` is False. Gone once expired; NotFound if unknown or if its
        object is no longer public."""
        now = self.clock.now()
        with self.db.write() if count else self.db.read() as conn:
            link = self._live_link(conn, code)
            if not self._exists(conn, link.target, None):
                raise NotFound("this link leads to something that is no longer available")
            if not count:
                return self.page_url(link.target.kind, link.target.id)
            conn.execute(
                sa.update(share_links)
                .where(share_links.c.code == code)
                .values(clicks=share_links.c.clicks + 1, last_clicked_at=now)
            )
        return self.page_url(link.target.kind, link.target.id)

    def _live_link(self, conn: sa.Connection, code: str) -> _Link:
        row = (
            conn.execute(
                sa.select(share_links.c.kind, share_links.c.object_id, share_links.c.expires_at).where(
                    share_links.c.code == code
                )
            ).first()
            if is_code(code)
            else None
        )
        if row is None or row.kind not in KINDS:
            raise NotFound("this share link does not exist")
        if row.expires_at is not None and row.expires_at <= self.clock.now():
            raise Gone(f"this share link expired on {row.expires_at:%Y-%m-%d at %H:%M} UTC")
        return _Link(Ref(row.kind, row.object_id))

    def _share_obj(self, row: Any) -> dict[str, Any]:
        ref = Ref(row.kind, row.object_id)
        return {
            "code": row.code,
            "url": f"{self.base}/s/{row.code}",
            "href": f"{self.base}/v1/me/shares/{row.code}",
            "uri": ref.uri,
            "type": ref.kind,
            "id": ref.id,
            "external_urls": {"tonearm": self.page_url(ref.kind, ref.id)},
            "created_at": iso(row.created_at),
            "expires_at": _iso_or_none(row.expires_at),
            "expired": row.expires_at is not None and row.expires_at <= self.clock.now(),
            "clicks": row.clicks,
            "last_clicked_at": _iso_or_none(row.last_clicked_at),
            "description": row.description,
        }


@dataclass(frozen=True, slots=True)
class _Link:
    target: Ref


def _iframe(src: str, width: int, height: int, title: str) -> str:
    return (
        f'<iframe src="{escape(src)}" width="{width}" height="{height}" title="{escape(title)}" '
        'style="border:0;border-radius:12px" allow="autoplay; encrypted-media" loading="lazy"></iframe>'
    )


def _join(*parts: str | None) -> str:
    return " · ".join(p for p in parts if p)


def _count_of(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _songs(n: int) -> str:
    return _count_of(n, "song")


def _followers(n: int) -> str:
    return _count_of(n, "follower")


def _check_expiry(expires_in: int | None) -> None:
    if expires_in is not None and not MIN_EXPIRY_S <= expires_in <= MAX_EXPIRY_S:
        raise BadRequest(
            f"expires_in: must be between {MIN_EXPIRY_S} and {MAX_EXPIRY_S} seconds (one year), "
            "or left out for a link that never expires"
        )


def _description(text: str | None) -> str | None:
    text = (text or "").strip()
    if len(text) > 300:
        raise BadRequest("description: at most 300 characters")
    return text or None
