"""Player events in, plays and quality-of-experience figures out.

Events are idempotent: each carries a client-made id, unique per user, and a retried batch adds
nothing. Events of one listening (`playback_id`) add up on a `playbacks` row; when the listener
has heard 30 seconds (Spotify's rule; the whole track if it is shorter) the playback is counted,
once, as a play. Start-up latency and rebuffering feed /metrics per rendition.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from prometheus_client import Counter, Gauge, Histogram

from tonearm.domains.catalog.service import CatalogService
from tonearm.domains.history.schemas import PlayerEvent
from tonearm.domains.history.tables import play_events, playbacks, plays
from tonearm.kernel.clock import Clock
from tonearm.kernel.db import Database
from tonearm.kernel.errors import NotFound

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


class HistoryService:
    def __init__(self, db: Database, catalog: CatalogService, clock: Clock) -> None:
        self.db = db
        self.catalog = catalog
        self.clock = clock
        self._played_s: dict[str, float] = defaultdict(float)
        self._stalled_s: dict[str, float] = defaultdict(float)

    def record(self, user_id: str, events: list[PlayerEvent]) -> dict[str, Any]:
        """Stores a batch; returns how many were new, already known, and refused (with why)."""
        now = self.clock.now()
        rejected: list[dict[str, str]] = []
        good: list[PlayerEvent] = []
        seen: set[str] = set()
        durations: dict[str, int] = {}
        for e in events:
            reason = self._refuse(e, user_id, now, durations)
            if reason is None and e.id in seen:
                reason = "the same event id appears twice in this batch"
            if reason:
                rejected.append({"id": e.id, "reason": reason})
            else:
                seen.add(e.id)
                good.append(e)
        try:
            fresh, counted = self._store(user_id, good, now, durations)
        except sa.exc.IntegrityError:
            # The same batch arrived twice at once; the retry sees the winner's rows as duplicates.
            fresh, counted = self._store(user_id, good, now, durations)
        return {
            "accepted": len(fresh),
            "duplicates": len(good) - len(fresh),
            "rejected": rejected,
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
        self, user_id: str, events: list[PlayerEvent], now: dt.datetime, durations: dict[str, int]
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


def _label(rendition: str | None) -> str:
    """Metric labels stay a small fixed set whatever clients send."""
    if rendition is None or rendition == "unknown":
        return "unknown"
    return rendition if _RENDITION_RE.match(rendition) else "other"
