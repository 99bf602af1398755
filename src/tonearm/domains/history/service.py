"""Player events in; plays, listening history and quality-of-experience figures out.

Events are idempotent: each carries a client-made id, unique per user, and a retried batch adds
nothing. Events of one listening (`playback_id`) add up on a `playbacks` row; when the listener
has heard 30 seconds (Spotify's rule; the whole track if it is shorter) the playback is counted,
once, as a play, and in the same transaction added to the listener's `listening_scores` (see
scores.py), which the top lists read. Start-up latency and rebuffering feed /metrics per rendition.

Reads, in the Spotify Web API's shapes: recently played (cursor paging over `plays`), top
tracks and artists (`listening_scores` in index order) and a yearly summary (stats.py). Each
leaves out tracks the listener may no longer see.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode

import orjson
import sqlalchemy as sa
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.dialects import postgresql, sqlite

from tonearm.domains.catalog.service import CatalogService
from tonearm.domains.catalog.tables import artists, genres, track_artists, track_genres, tracks
from tonearm.domains.history import stats
from tonearm.domains.history.schemas import PlayerEvent
from tonearm.domains.history.scores import MEDIUM_WINDOW, SHORT_WINDOW, score_rows
from tonearm.domains.history.tables import listening_scores, now_playing, play_events, playbacks, plays
from tonearm.kernel.clock import Clock
from tonearm.kernel.db import Database, UTCDateTime
from tonearm.kernel.errors import BadRequest, NotFound
from tonearm.kernel.ids import is_valid_id, uri
from tonearm.kernel.paging import check_window, page

PLAY_THRESHOLD_MS = 30_000
MAX_AGE = dt.timedelta(days=30)  # older events are refused, not silently dated
MAX_SKEW = dt.timedelta(minutes=5)  # clocks drift; the future beyond this is a client bug

_RENDITION_RE = re.compile(r"^(original|flac|(aac|opus|mp3)_\d{2,3})$")
STARTUP = Histogram(
    "tonearm_playback_startup_seconds",
    "Time from pressing play to first sound, as players report it",
    ["rendition"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
)
PLAYED = Counter("tonearm_playback_played_seconds_total", "Audio heard", ["rendition"])
REBUFFER = Counter("tonearm_playback_rebuffer_seconds_total", "Time stalled while playing", ["rendition"])
REBUFFER_RATIO = Gauge(
    "tonearm_playback_rebuffer_ratio", "Stalled time / (heard + stalled time), this process", ["rendition"]
)
EVENTS = Counter("tonearm_player_events_total", "Player events accepted", ["type"])
PLAYS = Counter("tonearm_plays_counted_total", "Playbacks that reached 30 s and counted as plays")


@dataclass
class _Playback:
    track_id: str
    exists: bool
    ms_played: int = 0
    startup_ms: int | None = None
    rebuffer_ms: int = 0
    rebuffers: int = 0
    counted: bool = False
    rendition: str | None = None
    context_uri: str | None = None
    started_at: dt.datetime | None = None
    counted_at: dt.datetime | None = None
    played_delta: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ImportedPlay:
    """A play counted elsewhere, for `HistoryService.import_plays`: when it was heard (aware
    datetime; any age), for how long, and from where (a context URI, or None)."""

    track_id: str
    played_at: dt.datetime
    ms_played: int
    context_uri: str | None = None


@dataclass(frozen=True, slots=True)
class ListenResult:
    """What `HistoryService.add_listens` did with a batch: plays added, and listens left out as
    the same listening already stored (by another app, or the same one retrying)."""

    added: int
    duplicates: int


@dataclass(frozen=True, slots=True)
class NowPlaying:
    """What a listener's app last said it is playing (`set_now_playing`)."""

    track_id: str
    client: str
    started_at: dt.datetime


class SkipGate(Protocol):
    """What the listener's plan says about `skip` events (entitlements implements it; wired in
    bootstrap). Each returns None to let the skip through, or the members of its `rejected`
    entry: a machine-readable `reason` (skip_limit, ad_unskippable), a `message` and what else
    the client needs (`next_skip_at`)."""

    def unskippable(self, track_id: str) -> dict[str, object] | None:
        """MUST refuse skips of what cannot be skipped (audio ads), whoever asks."""
        ...

    def count_skip(self, conn: sa.Connection, user_id: str, track_id: str) -> dict[str, object] | None:
        """MUST be called in the transaction storing a new skip event (not a retried one): uses
        one of the listener's skips or refuses it."""
        ...


class HistoryService:
    def __init__(
        self, db: Database, catalog: CatalogService, clock: Clock, *, skips: SkipGate | None = None
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.clock = clock
        self.skips = skips
        self._played_s: dict[str, float] = defaultdict(float)
        self._stalled_s: dict[str, float] = defaultdict(float)
        self._summaries: stats.ListenerCache[dict[str, Any]] = stats.ListenerCache(ttl_s=60)
        # A top list's total costs a visibility check per item listened to (thousands): kept a
        # little while, as clients page through a list within seconds.
        self._totals: stats.ListenerCache[int] = stats.ListenerCache(ttl_s=30)

    def record(self, user_id: str, events: list[PlayerEvent]) -> dict[str, Any]:
        """Stores a batch; returns how many were new, already known, and refused (with why)."""
        now = self.clock.now()
        rejected: list[dict[str, object]] = []
        good: list[PlayerEvent] = []
        seen: set[str] = set()
        durations: dict[str, int] = {}
        for e in events:
            unskippable = self.skips.unskippable(e.track_id) if e.type == "skip" and self.skips else None
            if unskippable is not None:
                rejected.append({"id": e.id, **unskippable})
                continue
            reason = self._refuse(e, user_id, now, durations)
            if reason is None and e.id in seen:
                reason = "the same event id appears twice in this batch"
            if reason:
                rejected.append({"id": e.id, "reason": reason})
            else:
                seen.add(e.id)
                good.append(e)
        refused: list[dict[str, object]] = []
        try:
            fresh, counted = self._store(user_id, good, now, durations, refused)
        except sa.exc.IntegrityError:
            # The same batch arrived twice at once; the retry sees the winner's rows as duplicates.
            refused.clear()
            fresh, counted = self._store(user_id, good, now, durations, refused)
        return {
            "accepted": len(fresh),
            "duplicates": len(good) - len(fresh) - len(refused),
            "rejected": rejected + refused,
            "plays_counted": counted,
        }

    def _refuse(
        self, e: PlayerEvent, user_id: str, now: dt.datetime, durations: dict[str, int]
    ) -> str | None:
        ts = e.client_time()
        if ts > now + MAX_SKEW:
            return "timestamp is in the future (check the device clock)"
        if ts < now - MAX_AGE:
            return "timestamp is more than 30 days old"
        if e.track_id not in durations:
            try:
                durations[e.track_id] = int(self.catalog.track(e.track_id, user_id)["duration_ms"] or 0)
            except NotFound:
                return f"track {e.track_id} not found"
        return None

    def _store(
        self,
        user_id: str,
        events: list[PlayerEvent],
        now: dt.datetime,
        durations: dict[str, int],
        refused: list[dict[str, object]],
    ) -> tuple[list[PlayerEvent], int]:
        if not events:
            return [], 0
        with self.db.write() as conn:
            known = set(
                conn.execute(
                    sa.select(play_events.c.client_event_id).where(
                        play_events.c.user_id == user_id,
                        play_events.c.client_event_id.in_([e.id for e in events]),
                    )
                ).scalars()
            )
            fresh = sorted((e for e in events if e.id not in known), key=lambda e: e.client_time())
            if self.skips is not None:
                # A new skip uses one of the listener's skips, here so a retried batch uses none;
                # a refused one is left out and the rest of the batch kept.
                for e in [e for e in fresh if e.type == "skip"]:
                    why = self.skips.count_skip(conn, user_id, e.track_id)
                    if why is not None:
                        refused.append({"id": e.id, **why})
                        fresh.remove(e)
            if not fresh:
                return [], 0
            conn.execute(
                sa.insert(play_events),
                [
                    {
                        "user_id": user_id,
                        "track_id": e.track_id,
                        "client_event_id": e.id,
                        "event_type": e.type,
                        "position_ms": e.position_ms,
                        "rendition": e.rendition,
                        "context_uri": e.context_uri,
                        "client_ts": e.client_time(),
                        "server_ts": now,
                    }
                    for e in fresh
                ],
            )
            sessions = self._load_playbacks(conn, user_id, {e.playback_id for e in fresh})
            for e in fresh:
                pb = sessions.get(e.playback_id)
                if pb is None:
                    pb = sessions[e.playback_id] = _Playback(e.track_id, exists=False)
                if pb.track_id == e.track_id:  # a playback id reused for another track is ignored
                    self._apply(pb, e, durations.get(e.track_id, 0))
            counted = self._save_playbacks(conn, user_id, sessions, now)
        if counted:  # after the commit: what is computed from here on sees the new plays
            self._summaries.forget(user_id)
            self._totals.forget(user_id)
        self._observe(fresh, sessions)
        return fresh, counted

    def _load_playbacks(self, conn: sa.Connection, user_id: str, ids: set[str]) -> dict[str, _Playback]:
        rows = conn.execute(
            sa.select(playbacks).where(playbacks.c.user_id == user_id, playbacks.c.id.in_(ids))
        ).all()
        return {
            r.id: _Playback(
                r.track_id,
                exists=True,
                ms_played=r.ms_played,
                startup_ms=r.startup_ms,
                rebuffer_ms=r.rebuffer_ms,
                rebuffers=r.rebuffers,
                counted=r.counted,
                rendition=r.rendition,
                context_uri=r.context_uri,
                started_at=r.started_at,
            )
            for r in rows
        }

    def _apply(self, pb: _Playback, e: PlayerEvent, duration: int) -> None:
        ts = e.client_time()
        pb.started_at = min(pb.started_at, ts) if pb.started_at else ts
        pb.rendition = e.rendition or pb.rendition
        pb.context_uri = e.context_uri or pb.context_uri
        if e.type == "start" and e.startup_ms is not None:
            pb.startup_ms = e.startup_ms
        if e.type == "rebuffer":
            pb.rebuffers += 1
            pb.rebuffer_ms += e.duration_ms or 0
        # Heard time: what the player says it played; failing that, how far the playhead got
        # (right unless the listener seeked forward, which clients should report via ms_played).
        heard = e.ms_played
        if heard is None and e.type in ("progress", "pause", "skip", "end"):
            heard = e.position_ms
        if heard is not None and heard > pb.ms_played:
            key = pb.rendition or "unknown"
            pb.played_delta[key] = pb.played_delta.get(key, 0) + heard - pb.ms_played
            pb.ms_played = heard
        if not pb.counted:
            threshold = min(PLAY_THRESHOLD_MS, max(1000, duration - 1000)) if duration else PLAY_THRESHOLD_MS
            if pb.ms_played >= threshold:
                pb.counted = True
                pb.counted_at = ts

    def _save_playbacks(
        self, conn: sa.Connection, user_id: str, sessions: dict[str, _Playback], now: dt.datetime
    ) -> int:
        counted = 0
        per_track: dict[str, int] = defaultdict(int)
        new_plays: list[tuple[str, dt.datetime, int]] = []
        for pid, pb in sessions.items():
            values = {
                "rendition": pb.rendition,
                "context_uri": pb.context_uri,
                "updated_at": now,
                "ms_played": pb.ms_played,
                "startup_ms": pb.startup_ms,
                "rebuffer_ms": pb.rebuffer_ms,
                "rebuffers": pb.rebuffers,
                "counted": pb.counted,
            }
            if pb.exists:
                conn.execute(
                    sa.update(playbacks)
                    .where(playbacks.c.user_id == user_id, playbacks.c.id == pid)
                    .values(**values)
                )
            else:
                conn.execute(
                    sa.insert(playbacks).values(
                        user_id=user_id,
                        id=pid,
                        track_id=pb.track_id,
                        started_at=pb.started_at or now,
                        **values,
                    )
                )
            if pb.counted_at is not None:  # counted by this batch: exactly once per playback
                counted += 1
                per_track[pb.track_id] += 1
                new_plays.append((pb.track_id, pb.counted_at, pb.ms_played))
                conn.execute(
                    sa.insert(plays).values(
                        user_id=user_id,
                        track_id=pb.track_id,
                        played_at=pb.counted_at,
                        ms_played=pb.ms_played,
                        context_uri=pb.context_uri,
                    )
                )
        if per_track:
            self.catalog.add_plays(conn, per_track)
            _add_scores(conn, user_id, new_plays)
        return counted

    def _observe(self, fresh: list[PlayerEvent], sessions: dict[str, _Playback]) -> None:
        for e in fresh:
            EVENTS.labels(e.type).inc()
            label = _label(e.rendition)
            if e.type == "start" and e.startup_ms is not None:
                STARTUP.labels(label).observe(e.startup_ms / 1000)
            if e.type == "rebuffer" and e.duration_ms:
                REBUFFER.labels(label).inc(e.duration_ms / 1000)
                self._stalled_s[label] += e.duration_ms / 1000
        for pb in sessions.values():
            if pb.counted_at is not None:
                PLAYS.inc()
            for rendition, ms in pb.played_delta.items():
                label = _label(rendition)
                PLAYED.labels(label).inc(ms / 1000)
                self._played_s[label] += ms / 1000
        for label in set(self._played_s) | set(self._stalled_s):
            total = self._played_s[label] + self._stalled_s[label]
            REBUFFER_RATIO.labels(label).set(self._stalled_s[label] / total if total else 0.0)

    # Imported listening ------------------------------------------------------------------------
    def import_plays(self, user_id: str, rows: Iterable[ImportedPlay]) -> int:
        """Adds plays heard elsewhere or earlier (another service's history, a data set): see
        `import_plays_of`, for one listener. Returns how many plays were added."""
        return self.import_plays_of({user_id: rows})

    def import_plays_of(self, rows_by_user: Mapping[str, Iterable[ImportedPlay]]) -> int:
        """Adds already-counted plays of any age (the 30-day limit on player events does not
        apply), for many listeners, in one transaction: the `plays` rows, the listeners'
        `listening_scores` for each track and its artists (the same sums as when the player's
        events count a play) and the tracks' play counts. Returns how many plays were added.

        Re-importing is safe: a play is known by (listener, track, played_at), and one already
        stored, or given twice, is added once. A play counted live is stored at the moment 30 s
        had been heard, an imported one usually at its start, so the two are not matched: leave
        out of an import what this server has counted itself. Refuses the whole batch (BadRequest,
        NotFound) if a track is missing, a time is in the future or a duration is negative."""
        now = self.clock.now()
        wanted: dict[str, list[ImportedPlay]] = {}
        for user_id, rows in rows_by_user.items():
            batch = list(rows)
            for r in batch:
                if r.played_at.tzinfo is None or r.played_at > now + MAX_SKEW:
                    raise BadRequest(f"played_at: {r.played_at.isoformat()} is not a past time with a zone")
                if r.ms_played < 0:
                    raise BadRequest(f"ms_played: must not be negative, not {r.ms_played}")
            if batch:  # in time order: what the scores add up in, and the plays' ids follow
                wanted.setdefault(user_id, []).extend(batch)
                wanted[user_id].sort(key=lambda r: (r.played_at, r.track_id, r.ms_played))
        if not wanted:
            return 0
        track_ids = sorted({r.track_id for batch in wanted.values() for r in batch})
        added = 0
        with self.db.write() as conn:
            found: set[str] = set()
            for i in range(0, len(track_ids), 500):
                found.update(conn.execute(_EXISTING_TRACKS, {"ids": track_ids[i : i + 500]}).scalars())
            missing = [t for t in track_ids if t not in found]
            if missing:
                raise NotFound(f"track {missing[0]} not found")
            per_track: dict[str, int] = defaultdict(int)
            for user_id, batch in wanted.items():
                known = {
                    (t, at)
                    for t, at in conn.execute(
                        _KNOWN_PLAYS,
                        {"u": user_id, "start": batch[0].played_at, "end": batch[-1].played_at},
                    )
                }
                seen: set[tuple[str, dt.datetime]] = set()
                fresh = []
                for r in batch:
                    key = (r.track_id, r.played_at.astimezone(dt.UTC))
                    if key not in known and key not in seen:
                        seen.add(key)
                        fresh.append(r)
                if not fresh:
                    continue
                self._insert_plays(conn, user_id, fresh)
                for r in fresh:
                    per_track[r.track_id] += 1
                added += len(fresh)
            if per_track:
                self.catalog.add_plays(conn, dict(sorted(per_track.items())))
        for user_id in wanted:  # after the commit, as in record()
            self._summaries.forget(user_id)
            self._totals.forget(user_id)
        return added

    # Listens reported by apps ------------------------------------------------------------------
    def add_listens(self, user_id: str, listens: Sequence[ImportedPlay]) -> ListenResult:
        """Plays an app reports after the fact (a Subsonic `scrobble`, a ListenBrainz listen):
        counted like imported plays (`plays`, `listening_scores`, the tracks' play counts, in one
        transaction), except that a listen overlapping a play already stored is left out.

        One listening reaches the server by several roads: the web player counts it itself (at
        the moment 30 s had been heard), a scrobbler watching that player sends it again as a
        listen (dated when it started), a Subsonic app reports it with `reportPlayback` and then
        scrobbles it. So a listen of a track whose `played_at` is less than the track's length
        (at least 30 s) away from a stored play of the same track by the same listener, or from
        an earlier listen of the batch, is the same listening: a duplicate. Back-to-back repeats
        are a track's length apart and still count. Refuses the whole batch like `import_plays`
        (NotFound for a missing track, BadRequest for a time in the future)."""
        now = self.clock.now()
        batch = sorted(listens, key=lambda r: (r.played_at, r.track_id))
        for r in batch:
            if r.played_at.tzinfo is None or r.played_at > now + MAX_SKEW:
                raise BadRequest(f"played_at: {r.played_at.isoformat()} is not a past time with a zone")
            if r.ms_played < 0:
                raise BadRequest(f"ms_played: must not be negative, not {r.ms_played}")
        if not batch:
            return ListenResult(0, 0)
        track_ids = sorted({r.track_id for r in batch})
        with self.db.write() as conn:
            length: dict[str, int] = {}
            for i in range(0, len(track_ids), 500):
                for tid, ms in conn.execute(
                    sa.select(tracks.c.id, tracks.c.duration_ms).where(
                        tracks.c.id.in_(track_ids[i : i + 500])
                    )
                ):
                    length[tid] = max(int(ms or 0), PLAY_THRESHOLD_MS)
            missing = [t for t in track_ids if t not in length]
            if missing:
                raise NotFound(f"track {missing[0]} not found")
            widest = dt.timedelta(milliseconds=max(length.values()))
            stored: dict[str, list[dt.datetime]] = defaultdict(list)
            for i in range(0, len(track_ids), 500):
                for tid, at in conn.execute(
                    sa.select(plays.c.track_id, plays.c.played_at).where(
                        plays.c.user_id == user_id,
                        plays.c.track_id.in_(track_ids[i : i + 500]),
                        plays.c.played_at > batch[0].played_at - widest,
                        plays.c.played_at < batch[-1].played_at + widest,
                    )
                ):
                    stored[tid].append(at)
            fresh: list[ImportedPlay] = []
            for r in batch:
                window = dt.timedelta(milliseconds=length[r.track_id])
                at = r.played_at.astimezone(dt.UTC)
                if any(abs(at - other) < window for other in stored[r.track_id]):
                    continue
                stored[r.track_id].append(at)
                fresh.append(r)
            if fresh:
                self._insert_plays(conn, user_id, fresh)
                per_track: dict[str, int] = defaultdict(int)
                for r in fresh:
                    per_track[r.track_id] += 1
                self.catalog.add_plays(conn, dict(sorted(per_track.items())))
        if fresh:  # after the commit, as in record()
            self._summaries.forget(user_id)
            self._totals.forget(user_id)
        return ListenResult(len(fresh), len(batch) - len(fresh))

    @staticmethod
    def _insert_plays(conn: sa.Connection, user_id: str, rows: Sequence[ImportedPlay]) -> None:
        conn.execute(
            sa.insert(plays),
            [
                {
                    "user_id": user_id,
                    "track_id": r.track_id,
                    "played_at": r.played_at,
                    "ms_played": r.ms_played,
                    "context_uri": r.context_uri,
                }
                for r in rows
            ],
        )
        _add_scores(conn, user_id, [(r.track_id, r.played_at, r.ms_played) for r in rows])

    def latest_playback(self, user_id: str, track_id: str, prefix: str, since: dt.datetime) -> str | None:
        """The id of the listener's playback of this track, among those whose id starts with
        `prefix` (one app's), most recently updated at or after `since`; None if there is none.
        Lets an app that reports a playhead without a playback id go on with its listening."""
        with self.db.read() as conn:
            found = conn.execute(
                sa.select(playbacks.c.id)
                .where(
                    playbacks.c.user_id == user_id,
                    playbacks.c.track_id == track_id,
                    playbacks.c.id.startswith(prefix, autoescape=True),
                    playbacks.c.updated_at >= since,
                )
                .order_by(playbacks.c.updated_at.desc(), playbacks.c.id.desc())
                .limit(1)
            ).scalar()
        return str(found) if found is not None else None

    # Now playing -------------------------------------------------------------------------------
    def set_now_playing(self, user_id: str, track_id: str, client: str, started_at: dt.datetime) -> None:
        """Records what the listener's app is playing (one entry per listener: the latest wins).
        The caller has checked that the listener may see the track."""
        values = {"track_id": track_id, "client": client[:100], "started_at": started_at}
        with self.db.write() as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            stmt = dialect.insert(now_playing).values(user_id=user_id, **values)
            conn.execute(stmt.on_conflict_do_update(index_elements=[now_playing.c.user_id], set_=values))

    def now_playing_of(self, user_id: str) -> NowPlaying | None:
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(now_playing.c.track_id, now_playing.c.client, now_playing.c.started_at).where(
                    now_playing.c.user_id == user_id
                )
            ).first()
        return NowPlaying(row.track_id, row.client, row.started_at) if row is not None else None

    def clear_now_playing(self, user_id: str, track_id: str | None = None) -> None:
        """Forgets what the listener is playing (only if it is `track_id`, when given)."""
        stmt = sa.delete(now_playing).where(now_playing.c.user_id == user_id)
        if track_id is not None:
            stmt = stmt.where(now_playing.c.track_id == track_id)
        with self.db.write() as conn:
            conn.execute(stmt)

    # Recently played ---------------------------------------------------------------------------
    def recently_played(
        self, user_id: str, *, limit: int = 20, before: str | None = None, after: str | None = None
    ) -> dict[str, Any]:
        """The listener's plays, newest first, in Spotify's cursor-paging shape.

        `before` / `after` take a Unix time in milliseconds (Spotify's form) or a cursor from a
        previous answer, `<ms>:<play id>`, which also orders plays heard in the same millisecond.
        `after` pages forward in time: it answers the plays just after the cursor (still newest
        first), and its `next` goes on forward. Without either, or with `before`, `next` goes back.
        """
        if not 1 <= limit <= MAX_RECENT:
            raise BadRequest(f"limit: must be between 1 and {MAX_RECENT}")
        if before is not None and after is not None:
            raise BadRequest("before, after: give one of them, not both")
        params: dict[str, Any] = {"u": user_id, "n": limit + 1}
        if after is not None:
            stmt = _RECENT_AFTER
            params["at"], params["pid"] = _parse_cursor(after, "after", _NO_PLAY_AFTER)
        elif before is not None:
            stmt = _RECENT_BEFORE
            params["at"], params["pid"] = _parse_cursor(before, "before", _NO_PLAY_BEFORE)
        else:
            stmt = _RECENT
        with self.db.read() as conn:
            rows = list(conn.execute(stmt, params))
        more = len(rows) > limit
        rows = rows[:limit]
        if after is not None:
            rows.reverse()  # read oldest first from the cursor; answered newest first
        objs = self.catalog.tracks_json([r.track_id for r in rows], user_id)
        base = f"{self.catalog.base}/v1/me/player/recently-played"
        items = [
            {
                "track": orjson.Fragment(obj),
                "played_at": _iso_ms(r.played_at),
                "context": self._context(r.context_uri),
            }
            for r, obj in zip(rows, objs, strict=True)
            if obj is not None
        ]
        cursors = {"after": _cursor(rows[0]), "before": _cursor(rows[-1])} if rows else None
        direction, given = ("after", after) if after is not None else ("before", before)
        nxt = None
        if more and cursors is not None:
            nxt = f"{base}?{urlencode({'limit': limit, direction: cursors[direction]})}"
        here = {"limit": limit} | ({direction: given} if given is not None else {})
        return {
            "items": items,
            "next": nxt,
            "cursors": cursors,
            "limit": limit,
            "href": f"{base}?{urlencode(here)}",
        }

    def _context(self, context_uri: str | None) -> dict[str, Any] | None:
        """Spotify's context object for the album, artist or playlist a play came from; None for
        anything else (clients may send what they like there)."""
        parts = (context_uri or "").split(":")
        if len(parts) != 3 or parts[0] not in ("tonearm", "spotify") or parts[1] not in _CONTEXTS:
            return None
        kind, id_ = parts[1], parts[2]
        if not is_valid_id(id_):
            return None
        base = self.catalog.base
        return {
            "type": kind,
            "uri": uri(kind, id_),
            "href": f"{base}/v1/{kind}s/{id_}",
            "external_urls": {"tonearm": f"{base}/{kind}/{id_}"},
        }

    # Top tracks and artists ----------------------------------------------------------------------
    def top(
        self, user_id: str, type_: str, *, time_range: str = "medium_term", limit: int = 20, offset: int = 0
    ) -> dict[str, Any]:
        """Spotify's paging object of full track or artist objects, most listened first:
        `short_term` ranks by the 14-day-half-life score among items played in the last 4 weeks,
        `medium_term` by the 90-day one within 6 months, `long_term` by all-time plays."""
        kind = _TOP_TYPES.get(type_)
        if kind is None:
            raise BadRequest(f"type: must be artists or tracks, not {type_[:40]!r}")
        if time_range not in _WINDOWS:
            raise BadRequest(
                f"time_range: must be short_term, medium_term or long_term, not {time_range[:40]!r}"
            )
        check_window(limit, offset)
        rows_stmt, count_stmt = _TOP[(kind, time_range)]
        window = _WINDOWS[time_range]
        params: dict[str, Any] = {"u": user_id, "n": limit, "o": offset}
        if window is not None:
            params["since"] = self.clock.now() - window
        with self.db.read() as conn:
            ids = list(conn.execute(rows_stmt, params).scalars())
            if 0 < len(ids) < limit or (not ids and not offset):  # the last page says how many
                total = offset + len(ids)
            else:
                key = self._totals.key(user_id, kind, time_range)
                cached = self._totals.get(key)
                if cached is None:
                    cached = int(conn.execute(count_stmt, params).scalar_one())
                    self._totals.put(key, cached)
                total = cached
        objs = self.catalog.tracks_json(ids, user_id) if kind == "track" else self.catalog.artists_json(ids)
        items = [orjson.Fragment(o) for o in objs if o is not None]
        return page(
            f"{self.catalog.base}/v1/me/top/{type_}",
            items,
            limit=limit,
            offset=offset,
            total=total,
            time_range=time_range,
        )

    # The yearly summary --------------------------------------------------------------------------
    def year_summary(self, user_id: str, year: str, tz: str | None = None) -> dict[str, Any]:
        """Minutes and plays, distinct tracks and artists, the top 5 tracks, artists and genres,
        and plays by hour of day and by month in the time zone `tz` (IANA name; default UTC).
        Totals count every play of the year; the top tracks leave out tracks the listener may
        no longer see."""
        zone = stats.parse_tz(tz)
        y = stats.parse_year(year, self.clock.now().astimezone(zone))  # New Year comes first east
        key = self._summaries.key(user_id, y, zone.key)
        cached = self._summaries.get(key)
        if cached is not None:
            return cached
        tally = stats.YearTally(zone)
        start = dt.datetime(y, 1, 1, tzinfo=zone)
        end = dt.datetime(y + 1, 1, 1, tzinfo=zone)
        with self.db.read() as conn:
            tally.add_all(conn.execute(_YEAR_PLAYS, {"u": user_id, "start": start, "end": end}))
            track_ids = sorted(tally.tracks)
            artist_links = _links(conn, _TRACK_ARTIST_LINKS, track_ids)
            genre_links = _links(conn, _TRACK_GENRE_LINKS, track_ids)
        by_artist = tally.roll_up(artist_links)
        by_genre = tally.roll_up(genre_links)
        top_tracks = _first_visible(
            stats.ranked(tally.tracks), lambda ids: self.catalog.tracks_json(ids, user_id)
        )
        top_artists = _first_visible(stats.ranked(by_artist), self.catalog.artists_json)
        summary = {
            "year": y,
            "time_zone": zone.key,
            "plays": tally.total.plays,
            "minutes_played": tally.total.ms // 60_000,
            "ms_played": tally.total.ms,
            "distinct_tracks": len(tally.tracks),
            "distinct_artists": len(by_artist),
            "top_tracks": [tally.tracks[i].json() | {"track": o} for i, o in top_tracks],
            "top_artists": [by_artist[i].json() | {"artist": o} for i, o in top_artists],
            "top_genres": [{"name": g} | by_genre[g].json() for g in stats.ranked(by_genre)[: stats.TOP_N]],
            "by_hour": [{"hour": h} | t.json() for h, t in enumerate(tally.hours)],
            "by_month": [{"month": m + 1} | t.json() for m, t in enumerate(tally.months)],
        }
        self._summaries.put(key, summary)
        return summary


MAX_RECENT = 50
_CONTEXTS = ("album", "artist", "playlist")
_TOP_TYPES = {"tracks": "track", "artists": "artist"}
_WINDOWS: dict[str, dt.timedelta | None] = {
    "short_term": SHORT_WINDOW,
    "medium_term": MEDIUM_WINDOW,
    "long_term": None,
}
_UNIX = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MS = dt.timedelta(milliseconds=1)
_MAX_MS = (dt.datetime(9999, 12, 31, tzinfo=dt.UTC) - _UNIX) // _MS
_CURSOR_RE = re.compile(r"^([0-9]{1,15})(?::([0-9]{1,18}))?$")
# Play ids for a cursor without one: `before=ms` means strictly before that instant (no play id
# is below 0), `after=ms` strictly after it (none is above 2**62).
_NO_PLAY_BEFORE = 0
_NO_PLAY_AFTER = 2**62


def _parse_cursor(value: str, name: str, no_play: int) -> tuple[dt.datetime, int]:
    m = _CURSOR_RE.match(value)
    if m is None or int(m.group(1)) > _MAX_MS:
        raise BadRequest(
            f"{name}: {value[:40]!r} is not a Unix time in milliseconds (or a cursor from a previous answer)"
        )
    at = _UNIX + int(m.group(1)) * _MS
    return at, int(m.group(2)) if m.group(2) else no_play


def _cursor(row: Any) -> str:
    return f"{(row.played_at - _UNIX) // _MS}:{row.id}"


def _iso_ms(ts: dt.datetime) -> str:
    """Spotify's `played_at`: ISO 8601 UTC with milliseconds."""
    return ts.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# Statements built once (building a SELECT costs about what SQLite takes to run it).
_U = sa.bindparam("u", type_=sa.String())
_N = sa.bindparam("n", type_=sa.Integer())
_O = sa.bindparam("o", type_=sa.Integer())
_AT = sa.bindparam("at", type_=UTCDateTime())
_PID = sa.bindparam("pid", type_=sa.BigInteger())
_SINCE = sa.bindparam("since", type_=UTCDateTime())
_VISIBLE = sa.and_(
    tracks.c.status == "ready", sa.or_(tracks.c.visibility == "public", tracks.c.owner_user_id == _U)
)
_PLAYS_SEEN = (
    sa.select(plays.c.id, plays.c.track_id, plays.c.played_at, plays.c.context_uri)
    .join(tracks, tracks.c.id == plays.c.track_id)
    .where(plays.c.user_id == _U, _VISIBLE)
)
# A cursor names a play; where it is (its exact time) comes from the play itself, so plays within
# one millisecond keep their order. A play gone since (or another user's) leaves the cursor's
# millisecond as the position.
_CURSOR_AT = sa.func.coalesce(
    sa.select(plays.c.played_at).where(plays.c.id == _PID, plays.c.user_id == _U).scalar_subquery(),
    _AT,
)
_RECENT = _PLAYS_SEEN.order_by(plays.c.played_at.desc(), plays.c.id.desc()).limit(_N)
_RECENT_BEFORE = (
    _PLAYS_SEEN.where(
        plays.c.played_at <= _CURSOR_AT,
        sa.or_(plays.c.played_at < _CURSOR_AT, plays.c.id < _PID),
    )
    .order_by(plays.c.played_at.desc(), plays.c.id.desc())
    .limit(_N)
)
_RECENT_AFTER = (
    _PLAYS_SEEN.where(
        plays.c.played_at >= _CURSOR_AT,
        sa.or_(plays.c.played_at > _CURSOR_AT, plays.c.id > _PID),
    )
    .order_by(plays.c.played_at, plays.c.id)
    .limit(_N)
)


def _top_statements(kind: str, time_range: str) -> tuple[sa.Select[Any], sa.Select[Any]]:
    """The page and the count of one top list: index order, tie broken by item id."""
    ls = listening_scores
    order = {"short_term": ls.c.short, "medium_term": ls.c.medium, "long_term": ls.c.plays}[time_range]
    conds: list[sa.ColumnElement[bool]] = [ls.c.user_id == _U, ls.c.kind == kind]
    if _WINDOWS[time_range] is not None:
        conds.append(ls.c.last_played_at >= _SINCE)
    if kind == "track":  # the listener's view of each track, as everywhere
        src = ls.join(tracks, tracks.c.id == ls.c.item_id)
        conds.append(_VISIBLE)
    else:
        src = ls.join(artists, artists.c.id == ls.c.item_id)
    rows = (
        sa.select(ls.c.item_id)
        .select_from(src)
        .where(*conds)
        .order_by(order.desc(), ls.c.item_id.desc())
        .limit(_N)
        .offset(_O)
    )
    return rows, sa.select(sa.func.count()).select_from(src).where(*conds)


_TOP = {(k, r): _top_statements(k, r) for k in ("track", "artist") for r in _WINDOWS}

_YEAR_PLAYS = sa.select(plays.c.track_id, plays.c.played_at, plays.c.ms_played).where(
    plays.c.user_id == _U,
    plays.c.played_at >= sa.bindparam("start", type_=UTCDateTime()),
    plays.c.played_at < sa.bindparam("end", type_=UTCDateTime()),
)
_IDS: sa.BindParameter[list[str]] = sa.bindparam("ids", expanding=True)
_KNOWN_PLAYS = sa.select(plays.c.track_id, plays.c.played_at).where(
    plays.c.user_id == _U,
    plays.c.played_at >= sa.bindparam("start", type_=UTCDateTime()),
    plays.c.played_at <= sa.bindparam("end", type_=UTCDateTime()),
)
_EXISTING_TRACKS = sa.select(tracks.c.id).where(tracks.c.id.in_(_IDS))
_TRACK_ARTIST_LINKS = sa.select(track_artists.c.track_id, track_artists.c.artist_id).where(
    track_artists.c.track_id.in_(_IDS)
)
_TRACK_GENRE_LINKS = (
    sa.select(track_genres.c.track_id, genres.c.name)
    .join(genres, genres.c.id == track_genres.c.genre_id)
    .where(track_genres.c.track_id.in_(_IDS))
)


def _links(conn: sa.Connection, stmt: sa.Select[Any], track_ids: Sequence[str]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for i in range(0, len(track_ids), 500):
        out.extend((a, b) for a, b in conn.execute(stmt, {"ids": track_ids[i : i + 500]}))
    return out


def _first_visible(
    ranked_ids: list[str], load: Callable[[Sequence[str]], list[bytes | None]]
) -> list[tuple[str, orjson.Fragment]]:
    """The first TOP_N ids whose object the listener may see, loading a few at a time."""
    out: list[tuple[str, orjson.Fragment]] = []
    for i in range(0, len(ranked_ids), stats.TOP_N * 2):
        chunk = ranked_ids[i : i + stats.TOP_N * 2]
        out.extend((id_, orjson.Fragment(o)) for id_, o in zip(chunk, load(chunk), strict=True) if o)
        if len(out) >= stats.TOP_N:
            break
    return out[: stats.TOP_N]


def _add_scores(conn: sa.Connection, user_id: str, new_plays: list[tuple[str, dt.datetime, int]]) -> None:
    """Adds plays to the listener's scores for their tracks and the tracks' artists (see
    scores.py), one upsert per row touched, in the caller's transaction."""
    artists_of: dict[str, list[str]] = defaultdict(list)
    for track_id, artist_id in _links(conn, _TRACK_ARTIST_LINKS, sorted({t for t, _, _ in new_plays})):
        artists_of[track_id].append(artist_id)
    rows = score_rows(user_id, new_plays, artists_of)
    ls = listening_scores
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(ls)
    new = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=[ls.c.user_id, ls.c.kind, ls.c.item_id],
        set_={
            "plays": ls.c.plays + new.plays,
            "ms_played": ls.c.ms_played + new.ms_played,
            "short": ls.c.short + new.short,
            "medium": ls.c.medium + new.medium,
            "last_played_at": sa.case(
                (new.last_played_at > ls.c.last_played_at, new.last_played_at),
                else_=ls.c.last_played_at,
            ),
        },
    )
    # In key order, so two transactions adding to the same rows cannot deadlock.
    conn.execute(stmt, [rows[k] for k in sorted(rows)])


def _label(rendition: str | None) -> str:
    """Metric labels stay a small fixed set whatever clients send."""
    if rendition is None or rendition == "unknown":
        return "unknown"
    return rendition if _RENDITION_RE.match(rendition) else "other"
