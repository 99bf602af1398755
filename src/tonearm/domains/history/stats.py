"""The yearly listening summary (`GET /v1/me/stats/{year}`): tallies made from one year of plays.

`YearTally` adds plays up in one pass (totals, per track, and per hour and month in the
listener's time zone); the service turns its per-track counts into artists and genres with the
catalog's links, and into objects. Summaries are cached per (user, year, time zone) in a
`ListenerCache`: a play counted in this process drops that user's entries at once, other
processes' plays show within the TTL.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tonearm.kernel.cache import TTLCache
from tonearm.kernel.errors import BadRequest

FIRST_YEAR = 2000
TOP_N = 5
V = TypeVar("V")
_TZ_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$")


def parse_year(value: str, now: dt.datetime) -> int:
    if not value.isascii() or not value.isdigit() or len(value) != 4:
        raise BadRequest(f"year: {value[:20]!r} is not a year (four digits, e.g. {now.year})")
    year = int(value)
    if not FIRST_YEAR <= year <= now.year:
        raise BadRequest(f"year: must be between {FIRST_YEAR} and {now.year}")
    return year


def parse_tz(value: str | None) -> ZoneInfo:
    """An IANA time zone such as `Europe/Paris` (default UTC)."""
    if value is None or value == "":
        return ZoneInfo("UTC")
    if len(value) > 64 or not _TZ_RE.match(value):
        raise BadRequest(f"tz: {value[:64]!r} is not an IANA time zone name such as Europe/Paris")
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise BadRequest(f"tz: unknown time zone {value!r} (use an IANA name such as Europe/Paris)") from exc


@dataclass
class Tally:
    plays: int = 0
    ms: int = 0

    def add_tally(self, other: Tally) -> None:
        self.plays += other.plays
        self.ms += other.ms

    def json(self) -> dict[str, int]:
        return {"plays": self.plays, "minutes_played": self.ms // 60_000}


class YearTally:
    """One year of one listener's plays, added up in their time zone."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self.total = Tally()
        self.tracks: dict[str, Tally] = {}
        self.hours = [Tally() for _ in range(24)]
        self.months = [Tally() for _ in range(12)]

    def add_all(self, plays: Iterable[Sequence[Any]]) -> None:
        """Adds (track id, played at, ms heard) rows; one pass, tens of thousands a year."""
        zone, tracks, hours, months = self.zone, self.tracks, self.hours, self.months
        for track_id, played_at, ms_played in plays:
            local = played_at.astimezone(zone)
            tally = tracks.get(track_id)
            if tally is None:
                tally = tracks[track_id] = Tally()
            tally.plays += 1
            tally.ms += ms_played
            hour, month = hours[local.hour], months[local.month - 1]
            hour.plays += 1
            hour.ms += ms_played
            month.plays += 1
            month.ms += ms_played
        self.total = Tally(sum(t.plays for t in tracks.values()), sum(t.ms for t in tracks.values()))

    def roll_up(self, links: list[tuple[str, str]]) -> dict[str, Tally]:
        """Per-track tallies summed per linked key ((track id, artist id or genre) pairs): a track
        with two artists counts for both."""
        out: dict[str, Tally] = defaultdict(Tally)
        for track_id, key in links:
            tally = self.tracks.get(track_id)
            if tally is not None:
                out[key].add_tally(tally)
        return out


def ranked(tallies: dict[str, Tally]) -> list[str]:
    """Keys by plays, then time heard, then key (a stable order for ties)."""
    return sorted(tallies, key=lambda k: (-tallies[k].plays, -tallies[k].ms, k))


class ListenerCache(Generic[V]):
    """Values computed from one listener's plays, by (user, ...). A play counted in this process
    drops the user's entries at once (a new generation); other processes' plays show within the
    TTL."""

    def __init__(self, ttl_s: float, maxsize: int = 5000) -> None:
        self._cache: TTLCache[tuple[Hashable, ...], V] = TTLCache(maxsize, ttl_s)
        self._generation: dict[str, int] = {}
        self._lock = threading.Lock()

    def key(self, user_id: str, *rest: Hashable) -> tuple[Hashable, ...]:
        """Take the key before computing: a play counted meanwhile makes the result a miss."""
        with self._lock:
            return (user_id, self._generation.get(user_id, 0), *rest)

    def get(self, key: tuple[Hashable, ...]) -> V | None:
        return self._cache.get(key)

    def put(self, key: tuple[Hashable, ...], value: V) -> None:
        self._cache.put(key, value)

    def forget(self, user_id: str) -> None:
        with self._lock:
            self._generation[user_id] = self._generation.get(user_id, 0) + 1
            if len(self._generation) > 100_000:  # bounded: forgetting everything costs recomputes
                self._generation.clear()
                self._cache.clear()
