"""Entitlements: what a listener's plan lets them do, as data.

A plan's features live in `plan_features` (seeded by migration 0002, editable by operators), so
"Premium Duo has offline downloads" is a row, not an `if`. A listener's features are those of the
plan of the subscription they belong to (as manager or member) while it is active or in its grace
period, else those of the `free` plan. They are read once and cached per process for a few
seconds; billing calls `invalidate` when a subscription changes, so this process sees the change
at once and others within the cache's lifetime.

Every decision is logged (structlog `entitlement.decision`) with a machine-readable reason; the
ones a listener may ask support about (refusals, ads, capped quality) are also kept in
`entitlement_log`, which the listener and admins can read. See docs/premium.md.

What the plan enforces in playback, here and in ads.py:

* quality: `for_user(...).quality` caps the grant (free 160 kb/s; `high_quality` 320 kb/s and
  lossless originals); a format above it is refused (403, reason `premium_required`).
* skips: without `unlimited_skips`, `free_skips_per_hour` per rolling hour, counted in `skips`
  (rows with `at` > now - 1 h), so every process agrees. `POST /v1/me/player/next` and each new
  `skip` player event use one; the next one is refused (403, reason `skip_limit`, `next_skip_at`,
  Retry-After). 403 and not 429: it is the plan saying no, not the server asking to slow down;
  retrying does not help before `next_skip_at`. Check and insert run in one transaction that
  first locks the listener's `ad_state` row (an UPSERT, which takes the row lock on PostgreSQL;
  SQLite's writer lock serializes anyway), so concurrent skips at the limit let at most one
  more through. Listeners with `unlimited_skips` cost no write.
* ads: see ads.py.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
import structlog
from sqlalchemy.dialects import postgresql, sqlite

from tonearm.domains.accounts.service import AccountService
from tonearm.domains.billing.tables import plan_features, plans, subscription_members, subscriptions
from tonearm.domains.entitlements.ads import AdService
from tonearm.domains.entitlements.refusals import Refused, clock_time, iso_up, wait_words
from tonearm.domains.entitlements.tables import ad_state, ads, entitlement_log, skips
from tonearm.domains.entitlements.writebehind import WriteBehind
from tonearm.domains.streaming.service import (
    FREE_MAX_KBPS,
    PREMIUM_MAX_KBPS,
    StreamingService,
    parse_rendition_name,
)
from tonearm.domains.streaming.service import Entitlements as StreamQuality
from tonearm.kernel.cache import TTLCache
from tonearm.kernel.clock import Clock, iso
from tonearm.kernel.db import Database
from tonearm.kernel.errors import BadRequest
from tonearm.kernel.ids import new_id

log = structlog.get_logger("tonearm.entitlements")

# Subscription states in which its members have its plan's features (past_due = grace period).
ENTITLED_STATUSES = ("active", "past_due")
FREE_PLAN = "free"
FEATURES = ("ad_free", "unlimited_skips", "high_quality", "offline", "personalised")
SKIP_WINDOW = dt.timedelta(hours=1)
_LOG = sa.insert(entitlement_log)


@dataclass(frozen=True, slots=True)
class Entitlements:
    """One listener's features, from their plan's rows in `plan_features`."""

    user_id: str
    plan_id: str
    features: frozenset[str]
    subscription_id: str | None = None
    plan_name: str = ""

    @property
    def product(self) -> str:
        """Spotify's `product` field: premium when on any paid plan."""
        return "free" if self.subscription_id is None else "premium"

    @property
    def ad_free(self) -> bool:
        return "ad_free" in self.features

    @property
    def unlimited_skips(self) -> bool:
        return "unlimited_skips" in self.features

    @property
    def high_quality(self) -> bool:
        return "high_quality" in self.features

    @property
    def offline(self) -> bool:
        return "offline" in self.features

    @property
    def quality(self) -> StreamQuality:
        """What the playback grant may hand out: 160 kb/s, or 320 kb/s and lossless originals."""
        if self.high_quality:
            return StreamQuality(PREMIUM_MAX_KBPS, True)
        return StreamQuality(FREE_MAX_KBPS, False)


@dataclass(frozen=True, slots=True)
class Decision:
    at: dt.datetime
    action: str
    allowed: bool
    reason: str
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {
            "at": iso(self.at),
            "action": self.action,
            "allowed": self.allowed,
            "reason": self.reason,
            "detail": self.detail,
        }


class EntitlementService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        streaming: StreamingService,
        accounts: AccountService,
        free_skips_per_hour: int = 6,
        ads_every_tracks: int = 3,
        max_devices: int = 5,
        max_downloads_per_device: int = 10000,
        licence_days: int = 30,
        cache_ttl_s: float = 5.0,
        cache_size: int = 100_000,
    ):
        self.db = db
        self.clock = clock
        self.streaming = streaming
        self.free_skips_per_hour = free_skips_per_hour
        self.ads_every_tracks = ads_every_tracks
        self.max_devices = max_devices
        self.max_downloads_per_device = max_downloads_per_device
        self.licence_days = licence_days
        self._cache: TTLCache[str, Entitlements] = TTLCache(cache_size, cache_ttl_s)
        # What the grant path decides is written behind it (see ads.py and writebehind.py).
        self.writes = WriteBehind(db)
        self.ads = AdService(
            db, clock, streaming, accounts, self.decide, self.writes, every_tracks=ads_every_tracks
        )
        self._lock_stmt: dict[str, sa.Executable] = {}

    # Features -----------------------------------------------------------------------------------
    def for_user(self, user_id: str) -> Entitlements:
        """The listener's entitlements: a cache hit (a dictionary lookup) on the hot path, else
        one indexed query."""
        hit = self._cache.get(user_id)
        if hit is None:
            hit = self._load(user_id)
            self._cache.put(user_id, hit)
        return hit

    def invalidate(self, user_id: str | None = None) -> None:
        """Forget cached entitlements (of one user, or everyone's)."""
        if user_id is None:
            self._cache.clear()
        else:
            self._cache.invalidate(user_id)

    def _load(self, user_id: str) -> Entitlements:
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(subscriptions.c.id, subscriptions.c.plan_id)
                .select_from(
                    subscription_members.join(
                        subscriptions, subscriptions.c.id == subscription_members.c.subscription_id
                    )
                )
                .where(
                    subscription_members.c.user_id == user_id,
                    subscriptions.c.status.in_(ENTITLED_STATUSES),
                )
                .order_by(subscriptions.c.created_at.desc())
                .limit(1)
            ).first()
            plan_id = row.plan_id if row is not None else FREE_PLAN
            found = conn.execute(
                sa.select(plans.c.name, plan_features.c.feature_id)
                .select_from(plans.outerjoin(plan_features, plan_features.c.plan_id == plans.c.id))
                .where(plans.c.id == plan_id)
            ).all()
            features = frozenset(f.feature_id for f in found if f.feature_id is not None)
            name = found[0].name if found else plan_id
            return Entitlements(user_id, plan_id, features, row.id if row is not None else None, name)

    # The decision log -----------------------------------------------------------------------
    def decide(
        self,
        user_id: str,
        action: str,
        allowed: bool,
        reason: str,
        detail: str,
        *,
        keep: bool = True,
        conn: sa.Connection | None = None,
        later: bool = False,
    ) -> None:
        """Logs one entitlement decision; with `keep`, also stores it for support (in `conn`'s
        transaction when given, so it commits or rolls back with what it explains; with `later`,
        queued for the write-behind, as the grant path does: readers flush first)."""
        log.info(
            "entitlement.decision",
            user_id=user_id,
            action=action,
            allowed=allowed,
            reason=reason,
            detail=detail,
        )
        if not keep:
            return
        values = {
            "id": new_id(),
            "user_id": user_id,
            "at": self.clock.now(),
            "action": action,
            "allowed": allowed,
            "reason": reason,
            "detail": detail[:300],
        }
        if conn is not None:
            conn.execute(_LOG, values)
            return
        if later:
            self.writes.room()
            self.writes.decision(values)
            return
        with self.db.write() as c:
            c.execute(_LOG, values)

    def decisions(self, user_id: str, limit: int = 50) -> list[Decision]:
        """The listener's stored decisions, newest first."""
        self.flush()
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(
                    entitlement_log.c.at,
                    entitlement_log.c.action,
                    entitlement_log.c.allowed,
                    entitlement_log.c.reason,
                    entitlement_log.c.detail,
                )
                .where(entitlement_log.c.user_id == user_id)
                .order_by(entitlement_log.c.at.desc(), entitlement_log.c.id.desc())
                .limit(limit)
            ).all()
        return [Decision(r.at, r.action, r.allowed, r.reason, r.detail) for r in rows]

    # Ads ----------------------------------------------------------------------------------------
    def ad_tracks(self, track_ids: list[str]) -> set[str]:
        """Which of these tracks are audio ads (not for saving, playlists or downloads)."""
        found: set[str] = set()
        with self.db.read() as conn:
            for i in range(0, len(track_ids), 500):
                found.update(
                    conn.execute(sa.select(ads.c.track_id).where(ads.c.track_id.in_(track_ids[i : i + 500])))
                    .scalars()
                    .all()
                )
        return found

    # Playback -----------------------------------------------------------------------------------
    def check_format(self, ent: Entitlements, fmt: str | None) -> None:
        """Refuses (403 premium_required, logged) a `format` above what the plan streams."""
        if not fmt:
            return
        spec = parse_rendition_name(fmt)
        quality = ent.quality
        if spec is None or quality.allows(spec.bitrate_kbps):
            return  # (`original` is explained by the grant itself)
        what = "lossless" if spec.bitrate_kbps == 0 else f"{spec.bitrate_kbps} kb/s"
        refusal = Refused(
            f"format {fmt} ({what}) is above what your plan streams (up to {quality.max_kbps} kb/s): "
            "it needs Premium. Leave format out to get the best your plan allows.",
            action="quality",
            reason="premium_required",
            detail=f"asked for {fmt} ({what}); plan {ent.plan_id} streams up to {quality.max_kbps} kb/s",
            max_kbps=quality.max_kbps,
        )
        self.decide(ent.user_id, refusal.action, False, refusal.reason, refusal.detail, later=True)
        raise refusal

    def grant(self, track_id: str, ent: Entitlements, *, fmt: str | None = None) -> bytes:
        """The playback grant (JSON bytes) with the listener's plan applied: quality capped, and
        without `ad_free` the track counted and, when one is due, `ad` added (see ads.py). No
        database write: what it decides is queued (the write-behind)."""
        self.check_format(ent, fmt)
        body = self.streaming.grant(track_id, ent.user_id, ent.quality, fmt=fmt)
        if ent.ad_free:
            return body
        ad = self.ads.before_track(ent.user_id, track_id)
        if ad is None:
            return body
        return body[:-1] + b',"ad":' + orjson.dumps(ad) + b"}"  # the grant is a cached JSON object

    # Skips --------------------------------------------------------------------------------------
    def use_skip(self, user_id: str, track_id: str | None) -> None:
        """What `POST /v1/me/player/next` asks first: refuses (403 ad_playing) while an ad plays,
        then uses one skip or refuses (403 skip_limit). Refusals are logged; a listener with
        `ad_free` and `unlimited_skips` costs no database work."""
        ent = self.for_user(user_id)
        limited = not ent.unlimited_skips
        if ent.ad_free and not limited:
            return
        now = self.clock.now()
        try:
            if not ent.ad_free:
                pending = self.ads.pending(user_id, now)  # the ledger's (see ads.py)
                if pending is not None:
                    raise self.ads.playing(pending, now, "next", "skipping waits")
            if limited:
                with self.db.write() as conn:
                    self._lock(conn, user_id)
                    refusal = self._take_skip(conn, user_id, track_id, now)
                    if refusal is not None:
                        raise refusal
        except Refused as r:
            self.decide(user_id, r.action, False, r.reason, r.detail)
            raise

    def unskippable(self, track_id: str) -> dict[str, object] | None:
        """For player events: a `skip` of an ad track is refused (ads cannot be skipped)."""
        if not self.ads.is_ad_track(track_id):
            return None
        return {"reason": "ad_unskippable", "message": "ads can't be skipped"}

    def count_skip(self, conn: sa.Connection, user_id: str, track_id: str) -> dict[str, object] | None:
        """For player events, in the transaction that stores a new `skip` event: uses one skip,
        or returns the refusal (reason skip_limit, message, next_skip_at) for `rejected`; the
        refusal is logged in that transaction."""
        if self.for_user(user_id).unlimited_skips:
            return None
        now = self.clock.now()
        self._lock(conn, user_id)
        refusal = self._take_skip(conn, user_id, track_id, now)
        if refusal is None:
            return None
        self.decide(user_id, refusal.action, False, refusal.reason, refusal.detail, conn=conn)
        return refusal.as_rejection()

    def _lock(self, conn: sa.Connection, user_id: str) -> None:
        """Locks the listener's ad_state row (creating it) until the transaction ends.
        Serializes one listener's skips across processes on PostgreSQL."""
        name = conn.dialect.name
        stmt = self._lock_stmt.get(name)
        if stmt is None:
            dialect = postgresql if name == "postgresql" else sqlite
            ins = dialect.insert(ad_state).values(user_id=sa.bindparam("u"), tracks_since_ad=0)
            stmt = self._lock_stmt[name] = ins.on_conflict_do_update(
                index_elements=[ad_state.c.user_id],
                set_={"tracks_since_ad": ad_state.c.tracks_since_ad},
            )
        conn.execute(stmt, {"u": user_id})

    def _recent_skips(self, conn: sa.Connection, user_id: str, now: dt.datetime) -> list[dt.datetime]:
        return list(
            conn.execute(
                sa.select(skips.c.at)
                .where(skips.c.user_id == user_id, skips.c.at > now - SKIP_WINDOW)
                .order_by(skips.c.at)
            ).scalars()
        )

    def _take_skip(
        self, conn: sa.Connection, user_id: str, track_id: str | None, now: dt.datetime
    ) -> Refused | None:
        recent = self._recent_skips(conn, user_id, now)
        limit = self.free_skips_per_hour
        if len(recent) >= limit:
            return self._skip_refusal(recent, now)
        conn.execute(sa.insert(skips).values(id=new_id(), user_id=user_id, at=now, track_id=track_id))
        # Skips older than the window count for nothing: keep the listener's rows few.
        conn.execute(sa.delete(skips).where(skips.c.user_id == user_id, skips.c.at <= now - SKIP_WINDOW))
        return None

    def _next_skip_at(self, recent: list[dt.datetime]) -> dt.datetime | None:
        """When a skip is free again: once all but limit - 1 of the window's skips have aged out."""
        limit = self.free_skips_per_hour
        if len(recent) < limit:
            return None
        if limit == 0:
            return None  # never, on this plan
        return recent[len(recent) - limit] + SKIP_WINDOW

    def _skip_refusal(self, recent: list[dt.datetime], now: dt.datetime) -> Refused:
        limit = self.free_skips_per_hour
        at = self._next_skip_at(recent)
        if at is None:
            return Refused(
                "Your plan has no skips. Premium has unlimited skips.",
                action="skip",
                reason="skip_limit",
                detail="skip refused: the plan has no skips (free_skips_per_hour is 0)",
                next_skip_at=None,
            )
        seconds, words = wait_words(now, at)
        return Refused(
            f"You've used your {limit} skips for this hour. Your next skip is available at "
            f"{clock_time(at)} (in {words}). Premium has unlimited skips.",
            action="skip",
            reason="skip_limit",
            detail=f"skip refused: {len(recent)} of {limit} skips used in the last hour; next {iso_up(at)}",
            retry_after_s=seconds,
            next_skip_at=iso_up(at),
        )

    # The summary --------------------------------------------------------------------------------
    def summary(self, user_id: str) -> dict[str, Any]:
        """`GET /v1/me/entitlements`: the plan, its features and where the listener stands."""
        ent = self.for_user(user_id)
        now = self.clock.now()
        quality = ent.quality
        recent: list[dt.datetime] = []
        if not ent.unlimited_skips:
            with self.db.read() as conn:
                recent = self._recent_skips(conn, user_id, now)
        since = None if ent.ad_free else self.ads.tracks_since_ad(user_id)  # the ledger's
        if ent.unlimited_skips:
            skips_obj: dict[str, Any] = {
                "limit": None,
                "used": 0,
                "remaining": None,
                "window_s": int(SKIP_WINDOW.total_seconds()),
                "next_skip_at": None,
            }
        else:
            limit = self.free_skips_per_hour
            at = self._next_skip_at(recent)
            skips_obj = {
                "limit": limit,
                "used": len(recent),
                "remaining": max(0, limit - len(recent)),
                "window_s": int(SKIP_WINDOW.total_seconds()),
                "next_skip_at": iso_up(at) if at is not None else None,
            }
        return {
            "product": ent.product,
            "plan": {"id": ent.plan_id, "name": ent.plan_name},
            "features": {f: f in ent.features for f in FEATURES},
            "quality": {"max_kbps": quality.max_kbps, "lossless": quality.lossless},
            "skips": skips_obj,
            # The ad plays before the track that brings the count to every_tracks: this many
            # tracks first play without one.
            "ads": None
            if since is None
            else {
                "every_tracks": self.ads_every_tracks,
                "tracks_until_next_ad": max(0, self.ads_every_tracks - 1 - since),
            },
            "offline": {
                "allowed": ent.offline,
                "max_devices": self.max_devices,
                "max_downloads_per_device": self.max_downloads_per_device,
                "licence_days": self.licence_days,
            },
        }

    def user_decisions(self, user_id: str, limit: int) -> list[dict[str, Any]]:
        if not 1 <= limit <= 100:
            raise BadRequest("limit: must be between 1 and 100")
        return [d.to_json() for d in self.decisions(user_id, limit)]

    def check_no_ad(self, user_id: str) -> None:
        """Raises (403 ad_playing, logged) while an ad plays for this listener; reads only (for
        moving on when a track has ended, which uses no skip): the ledger's, see ads.py."""
        if self.for_user(user_id).ad_free:
            return
        now = self.clock.now()
        pending = self.ads.pending(user_id, now)
        if pending is not None:
            r = self.ads.playing(pending, now, "next", "skipping waits")
            self.decide(user_id, r.action, False, r.reason, r.detail)
            raise r

    def skips_left(self, user_id: str) -> bool:
        """Whether a skip now would be allowed (for the player's `actions.disallows`)."""
        if self.for_user(user_id).unlimited_skips:
            return True
        with self.db.read() as conn:
            return len(self._recent_skips(conn, user_id, self.clock.now())) < self.free_skips_per_hour

    # The write-behind -----------------------------------------------------------------------------
    def flush(self) -> None:
        """Writes what the grant path queued (ad counters, impressions, decisions) now."""
        self.writes.flush()

    def close(self) -> None:
        """Stops the write-behind's thread, writing what is queued."""
        self.writes.close()
