"""The server-side player: one play queue per listener, in the Spotify Web API's shapes.

`PUT /v1/me/player/play` sets the queue from track URIs (up to MAX_URIS) or a context (an album,
a playlist or an artist's top tracks; up to MAX_QUEUE tracks); the queue row keeps the play
order, the current position, whether it plays, and the progress at the last change (the state
shows that plus the time since, capped at the track's length). Moving on:

* `POST /v1/me/player/next` is a *skip*: for a listener without `unlimited_skips` it uses one of
  the hour's skips, and is refused (403 `skip_limit`) when none is left. With
  `?reason=trackdone` the player says the current track played to its end: that is not a skip
  and uses none (repeat=track plays it again) — if the queue's clock agrees that it played to
  within TRACKDONE_SLACK_MS of its end; an earlier one is a skip. Both answer 204, as Spotify does; `GET
  /v1/me/player` shows the new state.
* While an audio ad plays (ads.py) both are refused (403 `ad_playing`).
* `POST /v1/me/player/previous` is never limited.
* Past the last track: with repeat=context (or track, for an explicit next) back to the first,
  else playback stops on the last one.

Shuffle on puts the tracks after the current one in random order; shuffle off restores the
context's order (the album, playlist or artist is read again); a queue made from `uris` keeps
its shuffled order. `POST /v1/me/player/queue` adds a track to the end of the queue (Spotify
plays queued tracks next; here the queue is one list). Device ids are kept as given.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from tonearm.domains.catalog.service import CatalogService, check_id
from tonearm.domains.entitlements.service import EntitlementService
from tonearm.domains.library.playlists import PlaylistService
from tonearm.domains.player.schemas import PlayRequest
from tonearm.domains.player.tables import bookmarks, player_queues, saved_queues
from tonearm.kernel.clock import Clock
from tonearm.kernel.db import Database
from tonearm.kernel.errors import BadRequest, NotFound
from tonearm.kernel.ids import is_valid_id, uri

MAX_URIS = 1000  # tracks per `PUT /v1/me/player/play` with `uris`
MAX_QUEUE = 10_000  # tracks in a queue (a context is cut there; a playlist holds at most this)
TRACKDONE_SLACK_MS = 10_000  # a "trackdone" this close to the end is believed (buffering, clocks)
QUEUE_SHOWN = 50  # upcoming tracks `GET /v1/me/player/queue` lists
MAX_COMMENT = 500  # characters of a bookmark's comment
MAX_CLIENT = 100  # characters of the app name a saved queue keeps
REPEAT_STATES = ("off", "track", "context")
CONTEXT_KINDS = ("album", "playlist", "artist")
_SCHEMES = ("tonearm", "spotify")


@dataclass(frozen=True, slots=True)
class Queue:
    track_ids: list[str]
    position: int
    context_uri: str | None
    progress_ms: int
    is_playing: bool
    shuffle: bool
    repeat: str
    device_id: str | None
    updated_at: dt.datetime

    @property
    def current(self) -> str | None:
        return self.track_ids[self.position] if 0 <= self.position < len(self.track_ids) else None


@dataclass(frozen=True, slots=True)
class SavedQueue:
    """The queue a Subsonic app saved (savePlayQueue) for another app to carry on from."""

    track_ids: list[str]
    current_index: int | None
    position_ms: int
    changed_at: dt.datetime
    changed_by: str


@dataclass(frozen=True, slots=True)
class Bookmark:
    track_id: str
    position_ms: int
    comment: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


def no_playback() -> NotFound:
    return NotFound(
        "nothing is playing: start playback with PUT /v1/me/player/play", reason="no_active_playback"
    )


def parse_uri(value: object, field: str, kinds: tuple[str, ...]) -> tuple[str, str]:
    """(kind, id) of a `tonearm:<kind>:<id>` (or `spotify:`) URI of one of `kinds`."""
    parts = value.split(":") if isinstance(value, str) else []
    if len(parts) != 3 or parts[0] not in _SCHEMES or parts[1] not in kinds:
        shown = value[:60] if isinstance(value, str) else value
        raise BadRequest(f"{field}: {shown!r} is not a URI like tonearm:{'|'.join(kinds)}:<id>")
    return parts[1], check_id(parts[2], parts[1])


class PlayerService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        catalog: CatalogService,
        playlists: PlaylistService,
        entitlements: EntitlementService,
    ) -> None:
        self.db = db
        self.clock = clock
        self.catalog = catalog
        self.playlists = playlists
        self.entitlements = entitlements
        self._put_stmt: dict[str, sa.Executable] = {}

    # Reading ----------------------------------------------------------------------------------
    def _read(self, conn: sa.Connection, user_id: str, *, lock: bool = False) -> Queue | None:
        query = sa.select(player_queues).where(player_queues.c.user_id == user_id)
        if lock:
            query = query.with_for_update()  # PostgreSQL; SQLite's writer lock covers it
        r = conn.execute(query).first()
        if r is None:
            return None
        return Queue(
            list(orjson.loads(r.track_ids)),
            r.position,
            r.context_uri,
            r.progress_ms,
            bool(r.is_playing),
            bool(r.shuffle),
            r.repeat,
            r.device_id,
            r.updated_at,
        )

    def _queue(self, user_id: str) -> Queue | None:
        with self.db.read() as conn:
            return self._read(conn, user_id)

    def _live_progress(self, q: Queue, now: dt.datetime, duration_ms: int | None) -> int:
        progress = q.progress_ms
        if q.is_playing:
            progress += max(0, int((now - q.updated_at).total_seconds() * 1000))
        return min(progress, duration_ms) if duration_ms else progress

    def state(self, user_id: str) -> dict[str, Any] | None:
        """`GET /v1/me/player`: Spotify's playback state, or None when nothing is queued."""
        q = self._queue(user_id)
        if q is None or q.current is None:
            return None
        now = self.clock.now()
        item = self.catalog.tracks([q.current], user_id)[0]
        duration = int(item["duration_ms"] or 0) if item else None
        disallows: dict[str, bool] = {"resuming" if q.is_playing else "pausing": True}
        if not self.entitlements.skips_left(user_id):
            disallows["skipping_next"] = True
        return {
            "device": {
                "id": q.device_id,
                "is_active": True,
                "is_private_session": False,
                "is_restricted": False,
                "name": "Tonearm",
                "type": "Computer",
                "volume_percent": None,
                "supports_volume": False,
            },
            "repeat_state": q.repeat,
            "shuffle_state": q.shuffle,
            "context": self._context_obj(q.context_uri),
            "timestamp": int(q.updated_at.timestamp() * 1000),
            "progress_ms": self._live_progress(q, now, duration),
            "is_playing": q.is_playing,
            "item": item,
            "currently_playing_type": "track",
            "actions": {"disallows": disallows},
        }

    def currently_playing(self, user_id: str) -> dict[str, Any] | None:
        state = self.state(user_id)
        if state is None:
            return None
        for key in ("device", "repeat_state", "shuffle_state"):
            state.pop(key)
        return state

    def queue(self, user_id: str) -> dict[str, Any]:
        """`GET /v1/me/player/queue`: the current track and up to QUEUE_SHOWN that follow."""
        q = self._queue(user_id)
        if q is None or q.current is None:
            return {"currently_playing": None, "queue": []}
        upcoming = q.track_ids[q.position + 1 : q.position + 1 + QUEUE_SHOWN]
        if q.repeat == "context":  # the queue goes round
            upcoming += q.track_ids[: min(q.position + 1, QUEUE_SHOWN - len(upcoming))]
        found = self.catalog.tracks([q.current, *upcoming], user_id)
        return {"currently_playing": found[0], "queue": [t for t in found[1:] if t is not None]}

    def _context_obj(self, context_uri: str | None) -> dict[str, Any] | None:
        if context_uri is None:
            return None
        _, kind, id_ = context_uri.split(":")
        base = self.catalog.base
        return {
            "type": kind,
            "uri": context_uri,
            "href": f"{base}/v1/{kind}s/{id_}",
            "external_urls": {"tonearm": f"{base}/{kind}/{id_}"},
        }

    # Starting ---------------------------------------------------------------------------------
    def play(self, user_id: str, body: PlayRequest | None, device_id: str | None = None) -> None:
        """Sets the queue from `uris` or `context_uri` (at `offset`, from `position_ms`), or,
        with neither, resumes."""
        if device_id is not None:
            check_id(device_id, "device")
        if body is None or (body.uris is None and body.context_uri is None):
            if body is not None and (body.offset is not None or body.position_ms is not None):
                raise BadRequest("offset and position_ms need uris or context_uri")
            self._change(user_id, lambda q, now: {"is_playing": True, **self._device(device_id)})
            return
        if body.uris is not None and body.context_uri is not None:
            raise BadRequest("give either uris or context_uri, not both")
        context_uri = None
        if body.uris is not None:
            ids = self._track_uris(body.uris, user_id)
            entries: list[str | None] = list(ids)
        else:
            assert body.context_uri is not None
            kind, cid = parse_uri(body.context_uri, "context_uri", CONTEXT_KINDS)
            context_uri = uri(kind, cid)
            entries = self._context(kind, cid, user_id)
            ads = self.entitlements.ad_tracks([e for e in entries if e is not None])
            entries = [None if e in ads else e for e in entries]
        start = self._start(entries, body)
        ids = [e for e in entries if e is not None]
        if not ids:
            raise NotFound(f"{context_uri} has no tracks you can play")
        position = sum(1 for e in entries[:start] if e is not None)
        progress = body.position_ms or 0
        if progress:
            duration = self.catalog.track(ids[position], user_id)["duration_ms"] or 0
            if progress > duration:
                raise BadRequest(f"position_ms: {progress} is past the end of the track ({duration} ms)")
        now = self.clock.now()
        with self.db.write() as conn:
            old = self._read(conn, user_id, lock=True)
            shuffle = old.shuffle if old is not None else False
            if shuffle:
                ids = ids[: position + 1] + _shuffled(ids[position + 1 :])
            self._put(
                conn,
                user_id,
                {
                    "track_ids": orjson.dumps(ids).decode(),
                    "position": position,
                    "context_uri": context_uri,
                    "progress_ms": progress,
                    "is_playing": True,
                    "shuffle": shuffle,
                    "repeat": old.repeat if old is not None else "off",
                    "device_id": device_id or (old.device_id if old is not None else None),
                    "updated_at": now,
                },
            )

    def _start(self, entries: list[str | None], body: PlayRequest) -> int:
        """The index in `entries` to start at: `offset.position`, or where `offset.uri` is, then
        the first playable track from there."""
        offset = body.offset
        start = 0
        if offset is not None:
            if offset.position is not None and offset.uri is not None:
                raise BadRequest("offset: give position or uri, not both")
            if offset.position is not None:
                if offset.position >= len(entries):
                    raise BadRequest(
                        f"offset.position: {offset.position} is past the end ({len(entries)} tracks)"
                    )
                start = offset.position
            elif offset.uri is not None:
                _, tid = parse_uri(offset.uri, "offset.uri", ("track",))
                if tid not in entries:
                    raise BadRequest(f"offset.uri: track {tid} is not in what you asked to play")
                start = entries.index(tid)
        while start < len(entries) and entries[start] is None:
            start += 1
        if start == len(entries) and any(e is not None for e in entries):
            raise BadRequest("offset: no track you can play at or after it")
        return start

    def _track_uris(self, uris: list[str], user_id: str) -> list[str]:
        if not 1 <= len(uris) <= MAX_URIS:
            raise BadRequest(f"uris: give between 1 and {MAX_URIS} track URIs, not {len(uris)}")
        bad = [u for u in uris if not _is_track_uri(u)]
        if bad:
            shown = ", ".join(repr(u[:60]) for u in bad[:10])
            raise BadRequest(f"uris: not track URIs like tonearm:track:<id>: {shown}")
        ids = [u.split(":")[2] for u in uris]
        self._check_tracks(ids, user_id)
        return ids

    def _check_tracks(self, ids: list[str], user_id: str) -> None:
        unique = list(dict.fromkeys(ids))
        found = self.catalog.tracks_json(unique, user_id)
        missing = [t for t, j in zip(unique, found, strict=True) if j is None]
        if missing:
            more = f" and {len(missing) - 20} more" if len(missing) > 20 else ""
            raise NotFound(f"tracks not found: {', '.join(missing[:20])}{more}")
        ads = self.entitlements.ad_tracks(unique)
        if ads:
            raise BadRequest(f"audio ads are not music to queue: {', '.join(sorted(ads)[:20])}")

    def _context(self, kind: str, cid: str, user_id: str) -> list[str | None]:
        """The context's tracks in order, None where one cannot be played by this listener."""
        out: list[str | None] = []
        if kind == "album":
            offset = 0
            while len(out) < MAX_QUEUE:
                page = self.catalog.album_tracks(cid, user_id, limit=50, offset=offset)
                out += [t["id"] for t in page["items"]]
                offset += 50
                if page["next"] is None:
                    break
        elif kind == "playlist":
            offset = 0
            while len(out) < MAX_QUEUE:
                page = self.playlists.items(cid, user_id, limit=100, offset=offset)
                # Items hold each track as pre-rendered JSON; one round trip reads the ids.
                items = orjson.loads(orjson.dumps(page["items"]))
                out += [it["track"]["id"] if it["track"] else None for it in items]
                offset += 100
                if page["next"] is None:
                    break
        else:
            out = [t["id"] for t in self.catalog.artist_top_tracks(cid, user_id)]
        return out[:MAX_QUEUE]

    # Moving -----------------------------------------------------------------------------------
    def next(self, user_id: str, *, trackdone: bool = False) -> None:
        """A skip (limited by the plan), or with `trackdone` the move after a track ended."""
        q = self._queue(user_id)
        if q is None or q.current is None:
            raise no_playback()
        if trackdone:
            # Believed only when the track has (nearly) played out by the queue's own clock; an
            # early "trackdone" is a skip, so it cannot be used to get round the skip limit.
            duration = self._duration(q, user_id)
            heard = self._live_progress(q, self.clock.now(), duration)
            if duration and heard < duration - TRACKDONE_SLACK_MS:
                trackdone = False
        if trackdone:
            self.entitlements.check_no_ad(user_id)
        else:
            self.entitlements.use_skip(user_id, q.current)
        self._change(user_id, lambda q, now: _advance(q, trackdone))

    def previous(self, user_id: str) -> None:
        def back(q: Queue, now: dt.datetime) -> dict[str, Any]:
            if q.position > 0:
                position = q.position - 1
            elif q.repeat == "context":
                position = len(q.track_ids) - 1
            else:
                position = 0  # the first track starts again
            return {"position": position, "progress_ms": 0, "is_playing": True}

        self._change(user_id, back)

    def pause(self, user_id: str) -> None:
        q = self._queue(user_id)
        duration = self._duration(q, user_id)

        def stop(q: Queue, now: dt.datetime) -> dict[str, Any]:
            return {"is_playing": False, "progress_ms": self._live_progress(q, now, duration)}

        self._change(user_id, stop)

    def seek(self, user_id: str, position_ms: int) -> None:
        if position_ms < 0:
            raise BadRequest("position_ms: must not be negative")
        duration = self._duration(self._queue(user_id), user_id)
        if duration is not None and position_ms > duration:
            raise BadRequest(f"position_ms: {position_ms} is past the end of the track ({duration} ms)")
        self._change(user_id, lambda q, now: {"progress_ms": position_ms})

    def repeat(self, user_id: str, state: str) -> None:
        if state not in REPEAT_STATES:
            raise BadRequest(f"state: must be one of {', '.join(REPEAT_STATES)}, not {state[:20]!r}")
        self._change(user_id, lambda q, now: {"repeat": state})

    def shuffle(self, user_id: str, state: str) -> None:
        if state not in ("true", "false"):
            raise BadRequest(f"state: must be true or false, not {state[:20]!r}")
        on = state == "true"
        q = self._queue(user_id)
        if q is None or q.current is None:
            raise no_playback()
        order: list[str] | None = None
        if not on and q.shuffle and q.context_uri is not None:
            _, kind, cid = q.context_uri.split(":")
            order = [t for t in self._context(kind, cid, user_id) if t is not None]

        def toggle(q: Queue, now: dt.datetime) -> dict[str, Any]:
            if on == q.shuffle:
                return {}
            values: dict[str, Any] = {"shuffle": on}
            ids = q.track_ids
            if on:
                ids = ids[: q.position + 1] + _shuffled(ids[q.position + 1 :])
                values["track_ids"] = orjson.dumps(ids).decode()
            elif order and q.current in order:
                values["track_ids"] = orjson.dumps(order).decode()
                values["position"] = order.index(q.current) if q.current is not None else 0
            return values

        self._change(user_id, toggle)

    def add(self, user_id: str, track_uri: str) -> None:
        """Adds a track to the end of the queue (making a paused queue when there is none)."""
        _, tid = parse_uri(track_uri, "uri", ("track",))
        self._check_tracks([tid], user_id)
        now = self.clock.now()
        with self.db.write() as conn:
            q = self._read(conn, user_id, lock=True)
            if q is None or not q.track_ids:
                self._put(
                    conn,
                    user_id,
                    {
                        "track_ids": orjson.dumps([tid]).decode(),
                        "position": 0,
                        "context_uri": None,
                        "progress_ms": 0,
                        "is_playing": False,
                        "shuffle": q.shuffle if q else False,
                        "repeat": q.repeat if q else "off",
                        "device_id": q.device_id if q else None,
                        "updated_at": now,
                    },
                )
                return
            if len(q.track_ids) >= MAX_QUEUE:
                raise BadRequest(f"the queue is full ({MAX_QUEUE} tracks)")
            conn.execute(
                sa.update(player_queues)
                .where(player_queues.c.user_id == user_id)
                .values(track_ids=orjson.dumps([*q.track_ids, tid]).decode(), updated_at=now)
            )

    # Writing ----------------------------------------------------------------------------------
    def _change(self, user_id: str, fn: Callable[[Queue, dt.datetime], dict[str, Any]]) -> None:
        """Applies `fn(queue, now) -> changed columns` to the listener's locked queue row. The
        progress is re-based on `now` so the live progress stays right."""
        now = self.clock.now()
        with self.db.write() as conn:
            q = self._read(conn, user_id, lock=True)
            if q is None or q.current is None:
                raise no_playback()
            values = fn(q, now)
            if not values:
                return
            if "progress_ms" not in values and q.is_playing:
                values["progress_ms"] = self._live_progress(q, now, None)
            conn.execute(
                sa.update(player_queues)
                .where(player_queues.c.user_id == user_id)
                .values(**values, updated_at=now)
            )

    def _put(self, conn: sa.Connection, user_id: str, values: dict[str, Any]) -> None:
        name = conn.dialect.name
        stmt = self._put_stmt.get(name)
        if stmt is None:
            dialect = postgresql if name == "postgresql" else sqlite
            cols = [c.name for c in player_queues.c if c.name != "user_id"]
            ins = dialect.insert(player_queues).values(
                user_id=sa.bindparam("user_id"), **{c: sa.bindparam(c) for c in cols}
            )
            stmt = self._put_stmt[name] = ins.on_conflict_do_update(
                index_elements=[player_queues.c.user_id], set_={c: ins.excluded[c] for c in cols}
            )
        conn.execute(stmt, {"user_id": user_id, **values})

    def _duration(self, q: Queue | None, user_id: str) -> int | None:
        if q is None or q.current is None:
            raise no_playback()
        try:
            return int(self.catalog.track(q.current, user_id)["duration_ms"] or 0) or None
        except NotFound:
            return None

    @staticmethod
    def _device(device_id: str | None) -> dict[str, Any]:
        return {"device_id": device_id} if device_id is not None else {}

    # The queue Subsonic apps save ---------------------------------------------------------------
    # Apart from the server-side player's queue above: an app saves what it plays on its own, and
    # another app (or the same one later) reads it back; nothing here moves on by itself.
    def save_queue(
        self,
        user_id: str,
        track_ids: list[str],
        current_index: int | None,
        position_ms: int,
        client: str,
    ) -> None:
        """Keeps the app's queue (duplicates allowed), the current index and the position in that
        track; an empty queue clears it. Every track must be one the listener may see."""
        if not track_ids:
            with self.db.write() as conn:
                conn.execute(sa.delete(saved_queues).where(saved_queues.c.user_id == user_id))
            return
        if len(track_ids) > MAX_QUEUE:
            raise BadRequest(f"id: a saved queue holds at most {MAX_QUEUE} tracks, not {len(track_ids)}")
        if current_index is None or not 0 <= current_index < len(track_ids):
            raise BadRequest(f"current: must be an index of the queue, 0 to {len(track_ids) - 1}")
        if position_ms < 0:
            raise BadRequest("position: must not be negative")
        self._check_tracks(track_ids, user_id)
        values = {
            "track_ids": orjson.dumps(track_ids).decode(),
            "current_index": current_index,
            "position_ms": position_ms,
            "changed_at": self.clock.now(),
            "changed_by": client[:MAX_CLIENT] or "unknown",
        }
        with self.db.write() as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            stmt = dialect.insert(saved_queues).values(user_id=user_id, **values)
            conn.execute(stmt.on_conflict_do_update(index_elements=[saved_queues.c.user_id], set_=values))

    def saved_queue(self, user_id: str) -> SavedQueue | None:
        with self.db.read() as conn:
            r = conn.execute(sa.select(saved_queues).where(saved_queues.c.user_id == user_id)).first()
        if r is None:
            return None
        return SavedQueue(
            list(orjson.loads(r.track_ids)), r.current_index, r.position_ms, r.changed_at, r.changed_by
        )

    # Bookmarks ----------------------------------------------------------------------------------
    def set_bookmark(self, user_id: str, track_id: str, position_ms: int, comment: str | None) -> None:
        """Where the listener stopped in a track (one bookmark per track: a new one replaces it)."""
        if position_ms < 0:
            raise BadRequest("position: must not be negative")
        if comment is not None and len(comment) > MAX_COMMENT:
            raise BadRequest(f"comment: at most {MAX_COMMENT} characters, not {len(comment)}")
        if self.catalog.tracks_json([track_id], user_id)[0] is None:
            raise NotFound(f"track {track_id} not found")
        now = self.clock.now()
        with self.db.write() as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            stmt = dialect.insert(bookmarks).values(
                user_id=user_id,
                track_id=track_id,
                position_ms=position_ms,
                comment=comment or None,
                created_at=now,
                updated_at=now,
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[bookmarks.c.user_id, bookmarks.c.track_id],
                    set_={"position_ms": position_ms, "comment": comment or None, "updated_at": now},
                )
            )

    def bookmarks(self, user_id: str) -> list[Bookmark]:
        """The listener's bookmarks, the newest change first."""
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(bookmarks)
                .where(bookmarks.c.user_id == user_id)
                .order_by(bookmarks.c.updated_at.desc(), bookmarks.c.track_id)
            ).all()
        return [Bookmark(r.track_id, r.position_ms, r.comment, r.created_at, r.updated_at) for r in rows]

    def delete_bookmark(self, user_id: str, track_id: str) -> None:
        with self.db.write() as conn:
            gone = conn.execute(
                sa.delete(bookmarks).where(bookmarks.c.user_id == user_id, bookmarks.c.track_id == track_id)
            ).rowcount
        if not gone:
            raise NotFound(f"no bookmark for track {track_id[:22]}")


def _advance(q: Queue, trackdone: bool) -> dict[str, Any]:
    if trackdone and q.repeat == "track":
        return {"progress_ms": 0, "is_playing": True}
    if q.position + 1 < len(q.track_ids):
        return {"position": q.position + 1, "progress_ms": 0, "is_playing": True}
    if q.repeat == "context" or (q.repeat == "track" and not trackdone):
        return {"position": 0, "progress_ms": 0, "is_playing": True}
    return {"progress_ms": 0, "is_playing": False}  # the end: stop on the last track


def _shuffled(ids: list[str]) -> list[str]:
    out = list(ids)
    random.shuffle(out)
    return out


def _is_track_uri(value: object) -> bool:
    if not isinstance(value, str):
        return False
    parts = value.split(":")
    return len(parts) == 3 and parts[0] in _SCHEMES and parts[1] == "track" and is_valid_id(parts[2])
