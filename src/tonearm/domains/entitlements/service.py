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
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import structlog

from tonearm.domains.billing.tables import plan_features, plans, subscription_members, subscriptions
from tonearm.domains.entitlements.tables import ads, entitlement_log
from tonearm.domains.streaming.service import FREE_MAX_KBPS, PREMIUM_MAX_KBPS
from tonearm.domains.streaming.service import Entitlements as StreamQuality
from tonearm.kernel.cache import TTLCache
from tonearm.kernel.clock import Clock, iso
from tonearm.kernel.db import Database
from tonearm.kernel.ids import new_id

log = structlog.get_logger("tonearm.entitlements")

# Subscription states in which its members have its plan's features (past_due = grace period).
ENTITLED_STATUSES = ("active", "past_due")
FREE_PLAN = "free"
FEATURES = ("ad_free", "unlimited_skips", "high_quality", "offline", "personalised")


@dataclass(frozen=True, slots=True)
class Entitlements:
    """One listener's features, from their plan's rows in `plan_features`."""

    user_id: str
    plan_id: str
    features: frozenset[str]
    subscription_id: str | None = None

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
    def __init__(self, db: Database, clock: Clock, *, cache_ttl_s: float = 5.0, cache_size: int = 100_000):
        self.db = db
        self.clock = clock
        self._cache: TTLCache[str, Entitlements] = TTLCache(cache_size, cache_ttl_s)

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
            features = conn.execute(
                sa.select(plan_features.c.feature_id)
                .select_from(plan_features.join(plans, plans.c.id == plan_features.c.plan_id))
                .where(plan_features.c.plan_id == plan_id)
            ).scalars()
            return Entitlements(user_id, plan_id, frozenset(features), row.id if row is not None else None)

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
    ) -> None:
        """Logs one entitlement decision; with `keep`, also stores it for support (in `conn`'s
        transaction when given, so it commits or rolls back with what it explains)."""
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
            conn.execute(sa.insert(entitlement_log).values(**values))
            return
        with self.db.write() as c:
            c.execute(sa.insert(entitlement_log).values(**values))

    def decisions(self, user_id: str, limit: int = 50) -> list[Decision]:
        """The listener's stored decisions, newest first."""
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
