"""Audio ads: what admins run, and when a listener without `ad_free` hears one.

An ad is a track an admin uploaded (usually private) plus a name, an advertiser and a click URL.
Every playback grant to a listener without `ad_free` counts one track (`tracks_since_ad`); when
the count reaches `ads_every_tracks` and an ad is running, the grant carries `ad`, which the
player MUST play before the track: an impression is recorded and the count starts again. Of the
running ads, a listener gets the one they heard least recently (never heard first), ties broken
at random.

Ads cannot be skipped. Until the impression is completed (`POST /v1/me/ads/{id}/complete`) or
its duration has passed since it was served, `POST /v1/me/player/next` and grants for any track
but the one the ad precedes are refused (403, reason `ad_playing`, with when it ends). A grant
asked again for that same track gets the same impression again and is not counted as a new
track. Completion is believed only once the ad could have played (served_at + duration, less
COMPLETE_EARLY_S for clocks and rounding), so it cannot be used to jump over the ad.

Listeners never see ad tracks as music: they are private uploads (404 to everyone else), and
`StreamingService.ad_grant` signs their audio for the listener regardless of visibility.

The database is off the grant's path (it runs on every play). Each process keeps a ledger of
the listeners it has seen (an LRU of LEDGER_SIZE, each kept LEDGER_TTL_S): their count, when they
last heard an ad, the ad they may be hearing now (impression, ad, the track it precedes, whether
completed) and when they heard each ad. A listener is loaded from the database the first time
this process sees them (one read of `ad_state` and their latest impressions: the only database
work of a grant, on a cold miss); every decision above is then made in memory, and its rows
(`ad_state` with the absolute values, the impression, the `entitlement_log` row) are queued for
writebehind.py, which writes them within about half a second. Impression ids are made here, so
the grant returns them at once. Whatever reads those tables flushes the queue first (the admins'
ad figures, completion, the decision log), so this process always reads what it decided.

With several processes (web workers, servers), each keeps the counts of the listeners it serves:
a listener whose grants land on two processes has their count split between them (and written
back by each), so ads come a little less often; the ad_playing guard holds in the process that
served the ad (another one learns of it only if it loads the listener afterwards). A crash loses
at most the last ~0.5 s of counts, impressions and logged decisions. That is the trade for
keeping the database off every play. Skips are not on the grant's path and stay exact (see
service.py).
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from tonearm.domains.accounts.service import AccountService
from tonearm.domains.catalog.service import check_id
from tonearm.domains.entitlements.refusals import Refused, clock_time, iso_up, wait_words
from tonearm.domains.entitlements.tables import ad_impressions, ad_state, ads
from tonearm.domains.entitlements.writebehind import WriteBehind
from tonearm.domains.streaming.service import StreamingService
from tonearm.kernel.cache import TTLCache
from tonearm.kernel.clock import Clock, iso
from tonearm.kernel.db import Database
from tonearm.kernel.errors import BadRequest, Conflict, NotFound
from tonearm.kernel.ids import is_valid_id, new_id, uri

MAX_AD_MS = 120_000  # longer audio is refused as an ad
COMPLETE_EARLY_S = 2.0  # a completion this much before the ad's end is believed (clock skew, rounding)
MAX_NAME = 200
MAX_URL = 500
LEDGER_SIZE = 100_000  # listeners whose ad state a process keeps in memory
LEDGER_TTL_S = 6 * 3600.0
_STRIPES = 64  # locks: one listener's grants are decided one at a time, others' in parallel

Decide = Callable[..., None]

# A listener's first sight in this process, built once.
_U: sa.BindParameter[str] = sa.bindparam("u")
_STATE = sa.select(ad_state.c.tracks_since_ad, ad_state.c.last_ad_at).where(ad_state.c.user_id == _U)
_HEARD = (
    sa.select(ad_impressions.c.ad_id, sa.func.max(ad_impressions.c.served_at))
    .where(ad_impressions.c.user_id == _U)
    .group_by(ad_impressions.c.ad_id)
)
_LATEST = (
    sa.select(
        ad_impressions.c.id,
        ad_impressions.c.ad_id,
        ad_impressions.c.before_track_id,
        ad_impressions.c.served_at,
        ad_impressions.c.completed_at,
    )
    .where(ad_impressions.c.user_id == _U)
    .order_by(ad_impressions.c.served_at.desc())
    .limit(1)
)


@dataclass(frozen=True, slots=True)
class Ad:
    id: str
    track_id: str
    name: str
    advertiser: str
    click_url: str | None
    active: bool
    created_at: dt.datetime
    duration_ms: int = MAX_AD_MS  # of its audio (the longest an ad may be, if unknown)


@dataclass(frozen=True, slots=True)
class Pending:
    """An ad served to a listener that has neither been completed nor run its length."""

    impression_id: str
    ad: Ad
    before_track_id: str | None
    ends_at: dt.datetime


@dataclass(slots=True)
class _Served:
    """An impression, as the ledger knows it."""

    impression_id: str
    ad_id: str
    before_track_id: str | None
    served_at: dt.datetime
    completed: bool = False


@dataclass(slots=True)
class _Listener:
    """One listener in this process's ledger (changed only under their stripe's lock)."""

    tracks_since_ad: int = 0
    last_ad_at: dt.datetime | None = None
    latest: _Served | None = None  # the last impression, while it may still be playing
    heard: dict[str, dt.datetime] = field(default_factory=dict)  # ad id -> last served


def _ad(r: Any, duration_ms: int = MAX_AD_MS) -> Ad:
    return Ad(r.id, r.track_id, r.name, r.advertiser, r.click_url, bool(r.active), r.created_at, duration_ms)


def check_click_url(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(value) > MAX_URL:
        raise BadRequest(f"click_url: must be an http:// or https:// URL of at most {MAX_URL} characters")
    return value


def _text(value: str, field: str) -> str:
    value = " ".join(value.split())
    if not 1 <= len(value) <= MAX_NAME:
        raise BadRequest(f"{field}: must be 1 to {MAX_NAME} characters")
    return value


class AdService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        streaming: StreamingService,
        accounts: AccountService,
        decide: Decide,
        writes: WriteBehind,
        *,
        every_tracks: int,
        cache_ttl_s: float = 5.0,
        ledger_size: int = LEDGER_SIZE,
        ledger_ttl_s: float = LEDGER_TTL_S,
    ) -> None:
        self.db = db
        self.clock = clock
        self.streaming = streaming
        self.accounts = accounts
        self.decide = decide
        self.writes = writes
        self.every_tracks = every_tracks
        # Every ad (a handful of rows), so "no ad is running" costs no query on the grant path.
        # Changes made here clear it at once; other processes see them within the TTL.
        self._all: TTLCache[str, tuple[Ad, ...]] = TTLCache(1, cache_ttl_s)
        self._ledger: TTLCache[str, _Listener] = TTLCache(ledger_size, ledger_ttl_s)
        self._stripes = tuple(threading.Lock() for _ in range(_STRIPES))

    # Admin ------------------------------------------------------------------------------------
    def create(self, track_id: str, name: str, advertiser: str, click_url: str | None) -> dict[str, Any]:
        """A new running ad; its audio must be a ready track uploaded by an admin, at most MAX_AD_MS."""
        check_id(track_id, "track")
        name, advertiser = _text(name, "name"), _text(advertiser, "advertiser")
        click_url = check_click_url(click_url)
        try:
            info = self.streaming.info(track_id)
        except NotFound as exc:
            raise NotFound(
                f"track {track_id} not found or not ready: upload the ad's audio like any track and "
                "wait until it is ready"
            ) from exc
        owner = self.accounts.get_user(info.owner) if info.owner else None
        if owner is None or owner.role != "admin":
            raise BadRequest(
                f"track_id: track {track_id} was not uploaded by an admin; ads use admins' own uploads"
            )
        if info.duration_ms > MAX_AD_MS:
            raise BadRequest(
                f"track_id: an ad lasts at most {MAX_AD_MS // 1000} s; track {track_id} lasts "
                f"{info.duration_ms / 1000:.0f} s"
            )
        ad_id = new_id()
        with self.db.write() as conn:
            conn.execute(
                sa.insert(ads).values(
                    id=ad_id,
                    track_id=track_id,
                    name=name,
                    advertiser=advertiser,
                    click_url=click_url,
                    active=True,
                    created_at=self.clock.now(),
                )
            )
        self._all.clear()
        return self.get(ad_id)

    def listing(self) -> list[dict[str, Any]]:
        """Every ad, newest first, with how often it was served and played to the end."""
        return self._report(None)

    def get(self, ad_id: str) -> dict[str, Any]:
        check_id(ad_id, "ad")
        found = self._report(ad_id)
        if not found:
            raise NotFound(f"ad {ad_id} not found")
        return found[0]

    def update(self, ad_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        check_id(ad_id, "ad")
        values: dict[str, Any] = {}
        if "name" in changes:
            values["name"] = _text(changes["name"], "name")
        if "advertiser" in changes:
            values["advertiser"] = _text(changes["advertiser"], "advertiser")
        if "click_url" in changes:
            values["click_url"] = check_click_url(changes["click_url"])
        if "active" in changes:
            values["active"] = bool(changes["active"])
        with self.db.write() as conn:
            if values:
                done = conn.execute(sa.update(ads).where(ads.c.id == ad_id).values(**values))
                found = done.rowcount == 1
            else:
                found = conn.execute(sa.select(ads.c.id).where(ads.c.id == ad_id)).first() is not None
        if not found:
            raise NotFound(f"ad {ad_id} not found")
        self._all.clear()
        return self.get(ad_id)

    def delete(self, ad_id: str) -> None:
        """Removes the ad and its impressions (deactivate it instead to keep its figures)."""
        check_id(ad_id, "ad")
        self.writes.flush()  # its queued impressions go with it
        with self.db.write() as conn:
            gone = conn.execute(sa.delete(ads).where(ads.c.id == ad_id)).rowcount
        if gone != 1:
            raise NotFound(f"ad {ad_id} not found")
        self._all.clear()

    def _report(self, ad_id: str | None) -> list[dict[str, Any]]:
        query = (
            sa.select(
                ads,
                sa.func.count(ad_impressions.c.id).label("impressions"),
                sa.func.count(ad_impressions.c.completed_at).label("completions"),
            )
            .select_from(ads.outerjoin(ad_impressions, ad_impressions.c.ad_id == ads.c.id))
            .group_by(*ads.c)
            .order_by(ads.c.created_at.desc(), ads.c.id)
        )
        if ad_id is not None:
            query = query.where(ads.c.id == ad_id)
        self.writes.flush()  # impressions served in this process are counted
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        out = []
        for r in rows:
            try:
                duration: int | None = self.streaming.info(r.track_id).duration_ms
            except NotFound:
                duration = None  # its track is no longer ready: never served
            out.append(
                {
                    "id": r.id,
                    "track": {"id": r.track_id, "uri": uri("track", r.track_id), "duration_ms": duration},
                    "name": r.name,
                    "advertiser": r.advertiser,
                    "click_url": r.click_url,
                    "active": bool(r.active),
                    "created_at": iso(r.created_at),
                    "impressions": int(r.impressions),
                    "completions": int(r.completions),
                }
            )
        return out

    def all_ads(self) -> tuple[Ad, ...]:
        """Every ad (running or not) with its audio's length, cached for a few seconds."""
        hit = self._all.get("all")
        if hit is None:
            with self.db.read() as conn:
                rows = conn.execute(sa.select(ads).order_by(ads.c.created_at)).all()
            hit = tuple(_ad(r, self._duration(r.track_id)) for r in rows)
            self._all.put("all", hit)
        return hit

    def _duration(self, track_id: str) -> int:
        try:
            return self.streaming.info(track_id).duration_ms
        except NotFound:
            return 0  # its audio is gone: it cannot be served, or be playing

    def longest_ms(self) -> int:
        """How long after an ad was served one may still be playing: the longest ad's length (the
        longest allowed while this process knows of none: another may have just made one)."""
        return max((a.duration_ms for a in self.all_ads()), default=0) or MAX_AD_MS

    def is_ad_track(self, track_id: str) -> bool:
        return any(a.track_id == track_id for a in self.all_ads())

    # The ledger ----------------------------------------------------------------------------------
    def _stripe(self, user_id: str) -> threading.Lock:
        return self._stripes[hash(user_id) % _STRIPES]

    def _listener(self, user_id: str) -> _Listener:
        """The listener's entry (under their stripe's lock), loaded on first sight. What this
        process queued for them is written first, should their entry have been evicted meanwhile."""
        who = self._ledger.get(user_id)
        if who is None:
            if self.writes.holds(user_id):
                self.writes.flush()
            who = self._load(user_id)
            self._ledger.put(user_id, who)
        return who

    def _load(self, user_id: str) -> _Listener:
        """One read: the counter, and when an ad was served, the listener's impressions."""
        with self.db.read() as conn:
            row = conn.execute(_STATE, {"u": user_id}).first()
            if row is None or row.last_ad_at is None:
                return _Listener(int(row.tracks_since_ad) if row is not None else 0)
            who = _Listener(int(row.tracks_since_ad), row.last_ad_at)
            who.heard = dict(conn.execute(_HEARD, {"u": user_id}).all())
            # An ad served longer ago than the longest ad lasts cannot be playing, now or later.
            if self.clock.now() < row.last_ad_at + dt.timedelta(milliseconds=self.longest_ms()):
                r = conn.execute(_LATEST, {"u": user_id}).first()
                if r is not None:
                    who.latest = _Served(
                        r.id, r.ad_id, r.before_track_id, r.served_at, r.completed_at is not None
                    )
        return who

    def _pending(self, who: _Listener, now: dt.datetime) -> Pending | None:
        s = who.latest
        if s is None or s.completed:
            return None
        ad = next((a for a in self.all_ads() if a.id == s.ad_id), None)
        if ad is None:
            return None  # deleted
        ends = s.served_at + dt.timedelta(milliseconds=ad.duration_ms)
        return Pending(s.impression_id, ad, s.before_track_id, ends) if now < ends else None

    # The grant path ---------------------------------------------------------------------------
    def before_track(self, user_id: str, track_id: str) -> dict[str, Any] | None:
        """Counts a track started by a listener without `ad_free`; returns the ad to play first
        when one is due (or still playing before this very track), else None. Raises Refused
        (ad_playing) for another track while an ad plays.

        Decided from the ledger; the rows are queued (no database work but a cold miss's read)."""
        now = self.clock.now()
        self.writes.room()
        with self._stripe(user_id):
            who = self._listener(user_id)
            pending = self._pending(who, now)
            if pending is None:
                count = who.tracks_since_ad + 1
                running = [a for a in self.all_ads() if a.active]
                if count >= self.every_tracks and running:
                    ad = self._serve(who, user_id, track_id, running, now)
                    if ad is not None:
                        return ad
                # (with no ad running the count goes on: the first one is heard at once)
                who.tracks_since_ad = count
                self.writes.state(user_id, count)
                return None
            # Not a new track: the same one asked for again (a new grant, a reload) gets the same
            # ad; another is refused until the ad has played.
            if pending.before_track_id == track_id:
                return self._ad_obj(pending.ad, pending.impression_id, user_id)
            refusal = self.playing(pending, now, f"track {track_id}", "other tracks wait")
        self.decide(user_id, refusal.action, False, refusal.reason, refusal.detail, later=True)
        raise refusal

    def _serve(
        self, who: _Listener, user_id: str, track_id: str, running: list[Ad], now: dt.datetime
    ) -> dict[str, Any] | None:
        if len(running) > 1:
            never = dt.datetime.min.replace(tzinfo=dt.UTC)
            running.sort(key=lambda a: (who.heard.get(a.id) or never, random.random()))  # noqa: S311 (fairness, not secrets)
        for ad in running:
            try:
                obj = self._ad_obj(ad, new_id(), user_id)
            except NotFound:
                continue  # its track is gone or not ready
            impression_id = obj["impression_id"]
            who.tracks_since_ad, who.last_ad_at = 0, now
            who.latest = _Served(impression_id, ad.id, track_id, now)
            who.heard[ad.id] = now
            self.writes.impression(
                {
                    "id": impression_id,
                    "ad_id": ad.id,
                    "user_id": user_id,
                    "before_track_id": track_id,
                    "served_at": now,
                    "completed_at": None,
                }
            )
            self.writes.state(user_id, 0, now)
            detail = f"ad {ad.id} ({ad.name}) before track {track_id}"
            self.decide(user_id, "ad", True, "ad_served", detail, later=True)
            return obj
        return None

    def _ad_obj(self, ad: Ad, impression_id: str, user_id: str) -> dict[str, Any]:
        grant = self.streaming.ad_grant(ad.track_id, user_id)
        return {
            "id": ad.id,
            "impression_id": impression_id,
            "name": ad.name,
            "advertiser": ad.advertiser,
            "click_url": ad.click_url,
            "duration_ms": grant["track"]["duration_ms"],
            "skippable": False,
            "complete_url": f"{self.streaming.base}/v1/me/ads/{impression_id}/complete",
            "expires_at": grant["expires_at"],
            "loudness": grant["loudness"],
            "hls": grant["hls"],
            "renditions": grant["renditions"],
        }

    # Is an ad playing? ------------------------------------------------------------------------
    def pending(self, user_id: str, now: dt.datetime) -> Pending | None:
        """The ad this listener is hearing now, if any (from the ledger)."""
        with self._stripe(user_id):
            return self._pending(self._listener(user_id), now)

    def tracks_since_ad(self, user_id: str) -> int:
        with self._stripe(user_id):
            return self._listener(user_id).tracks_since_ad

    def playing(self, pending: Pending, now: dt.datetime, what: str, waits: str) -> Refused:
        seconds, words = wait_words(now, pending.ends_at)
        return Refused(
            f"An ad is playing until {clock_time(pending.ends_at, seconds=True)} (in {words}). Ads can't be "
            f"skipped: {waits} until it has played. Premium has no ads.",
            action="ad",
            reason="ad_playing",
            detail=f"{what} refused while ad {pending.ad.id} plays (impression {pending.impression_id})",
            retry_after_s=seconds,
            ad_ends_at=iso_up(pending.ends_at),
            impression_id=pending.impression_id,
        )

    # Completion ---------------------------------------------------------------------------------
    def complete(self, user_id: str, impression_id: str) -> None:
        """Marks the listener's own impression as played to the end (idempotent)."""
        if not is_valid_id(impression_id):
            raise NotFound(f"ad impression {impression_id[:40]} not found")
        now = self.clock.now()
        self.writes.flush()  # it may still be queued
        with self.db.write() as conn:
            r = conn.execute(
                sa.select(ad_impressions.c.served_at, ad_impressions.c.completed_at, ads.c.track_id)
                .join(ads, ads.c.id == ad_impressions.c.ad_id)
                .where(ad_impressions.c.id == impression_id, ad_impressions.c.user_id == user_id)
            ).first()
            if r is None:
                raise NotFound(f"ad impression {impression_id} not found")
            if r.completed_at is not None:
                self._completed(user_id, impression_id)
                return
            try:
                duration = self.streaming.info(r.track_id).duration_ms
            except NotFound:
                duration = 0
            played = (now - r.served_at).total_seconds()
            if played < duration / 1000 - COMPLETE_EARLY_S:
                raise Conflict(
                    f"this ad lasts {duration / 1000:.0f} s and was served {played:.0f} s ago: report "
                    "completion once it has played to the end"
                )
            conn.execute(
                sa.update(ad_impressions).where(ad_impressions.c.id == impression_id).values(completed_at=now)
            )
        self._completed(user_id, impression_id)

    def _completed(self, user_id: str, impression_id: str) -> None:
        with self._stripe(user_id):
            who = self._ledger.get(user_id)
            if who is not None and who.latest is not None and who.latest.impression_id == impression_id:
                who.latest.completed = True
