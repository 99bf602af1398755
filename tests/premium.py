"""Test helper: put a user on a paid plan directly in the database (for tests of what premium
unlocks; the billing tests subscribe through the API and the sandbox gateway instead)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from tonearm.bootstrap import Container
from tonearm.domains.accounts.tables import users
from tonearm.domains.billing.tables import subscription_members, subscriptions
from tonearm.kernel.ids import new_id


def make_premium(c: Container, user_id: str, plan_id: str = "premium_individual") -> str:
    """Gives `user_id` an active subscription to `plan_id` for 30 days; returns its id."""
    now = c.clock.now()
    sub_id = new_id()
    with c.db.write() as conn:
        conn.execute(
            sa.insert(subscriptions).values(
                id=sub_id,
                user_id=user_id,
                plan_id=plan_id,
                status="active",
                current_period_start=now,
                current_period_end=now + dt.timedelta(days=30),
                created_at=now,
                updated_at=now,
            )
        )
        conn.execute(
            sa.insert(subscription_members).values(
                subscription_id=sub_id, user_id=user_id, role="manager", joined_at=now
            )
        )
        conn.execute(sa.update(users).where(users.c.id == user_id).values(product="premium"))
    c.entitlements.invalidate(user_id)
    c.accounts.forget_sessions()
    return sub_id


def make_free(c: Container, user_id: str) -> None:
    """Ends every subscription `user_id` belongs to (as if it lapsed), without billing's hooks."""
    with c.db.write() as conn:
        subs = sa.select(subscription_members.c.subscription_id).where(
            subscription_members.c.user_id == user_id
        )
        conn.execute(sa.update(subscriptions).where(subscriptions.c.id.in_(subs)).values(status="expired"))
        conn.execute(sa.update(users).where(users.c.id == user_id).values(product="free"))
    c.entitlements.invalidate(user_id)
    c.accounts.forget_sessions()
