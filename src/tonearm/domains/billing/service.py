"""Billing: plans, subscriptions, their payments and invoices, renewals, and the gateway's webhooks.

A subscription is paid for by its manager; Duo and Family plans add members (invitations.py).
Everyone in a subscription that is `active` or `past_due` (a failed renewal's grace period) is
premium; `users.product` caches that, and billing keeps it in step (`Work.sync`) in the same
transaction as the change, then, after the commit, clears the caches that hold it and tells
`on_product_change` listeners (offline downloads are revoked that way).

Statuses: `incomplete` (first payment in flight: no access yet; a decline deletes it), `active`,
`past_due` (renewal failed: access continues until `grace_until`, the charge is retried on
`renewal_retry_days`), `expired` (ended at a period's end, or lapsed after the grace period) and
`canceled` (ended at once: refunded, or its manager deleted their account).

Charging is crash-safe the same way everywhere (`_charge_payment`):

1. A `pending` payment row with our idempotency key (and its invoice) is committed first.
2. The gateway is called with that key. A crash here leaves the row pending; running the same
   step again (a retried job, the sweep, a replayed request) calls the gateway with the same key
   and gets the same Charge back, never a second charge.
3. The outcome is recorded by `_apply`, which moves the payment forward only (pending < failed or
   succeeded < refunded) with a guarded UPDATE, and applies its consequences (subscription
   activated or renewed, invoice paid or void) in the same transaction: whoever moves the
   payment, the synchronous path or a webhook, does it, exactly once.

The key says what a payment is for: `subscribe:<user>:<request key>`, `upgrade:<sub>:<invoice>`,
`renew:<sub>:<period start, unix s>:<attempt>`. A refund the gateway reports (an operator's
refund from its dashboard) ends the subscription at once when it paid for the current period.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects import postgresql, sqlite

from tonearm.config import Settings
from tonearm.domains.accounts.service import AccountService
from tonearm.domains.accounts.tables import users
from tonearm.domains.billing import money
from tonearm.domains.billing.tables import (
    invoices,
    payments,
    plan_features,
    plans,
    premium_features,
    subscription_members,
    subscriptions,
    webhook_events,
)
from tonearm.domains.entitlements.service import EntitlementService
from tonearm.kernel.clock import Clock, iso
from tonearm.kernel.db import Database
from tonearm.kernel.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PaymentRequired,
    ServiceUnavailable,
    TooManyRequests,
)
from tonearm.kernel.ids import is_valid_id, new_id
from tonearm.kernel.paging import check_window, page
from tonearm.kernel.ratelimit import RateLimiter
from tonearm.ports.jobs import JobQueue
from tonearm.ports.payments import Card, CardError, Charge, PaymentGateway

log = structlog.get_logger("tonearm.billing")

RENEW_JOB = "billing.renew"
SWEEP_JOB = "billing.sweep"
REFUND_JOB = "billing.refund"

ENTITLED = ("active", "past_due")  # members are premium
HELD = ("active", "past_due", "incomplete")  # a user belongs to at most one of these at a time
# A payment still pending after this (its request or job died mid-charge) is settled by the sweep.
SETTLE_PENDING_AFTER = dt.timedelta(minutes=10)
CARDS_PER_HOUR = 20
_RANK = {"pending": 0, "failed": 1, "succeeded": 1, "refunded": 2}
_EVENT_STATUS = {"charge.succeeded": "succeeded", "charge.failed": "failed", "charge.refunded": "refunded"}
_CLIENT_KEY = re.compile(r"^[\x21-\x7e]{1,64}$")  # printable ASCII, no spaces

ProductCallback = Callable[[str, str], None]


def _day(ts: dt.datetime) -> str:
    return f"{ts.day} {ts:%b %Y}"


def price_obj(amount_minor: int, currency: str) -> dict[str, Any]:
    return {
        "amount_minor": amount_minor,
        "currency": currency,
        "display": money.display(amount_minor, currency),
    }


def _insert_ignore(conn: sa.Connection, table: sa.Table, values: dict[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; whether the row was new."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(**values).on_conflict_do_nothing()
    # RETURNING, not rowcount: drivers report -1 for INSERTs (psycopg 3 does).
    return conn.execute(stmt.returning(*table.primary_key.columns)).first() is not None


class Work:
    """One billing transaction and what must happen once it commits: whose cached product and
    entitlements to drop, and whose product changed (for `on_product_change` listeners)."""

    def __init__(self, conn: sa.Connection, now: dt.datetime, entitlements: EntitlementService) -> None:
        self.conn = conn
        self.now = now
        self._entitlements = entitlements
        self.touched: set[str] = set()
        self.changed: dict[str, str] = {}

    def sync(self, user_ids: Iterable[str], reason: str, detail: str) -> None:
        """Brings `users.product` in step with memberships for these users (premium iff in an
        active or past_due subscription) and logs each change as an entitlement decision."""
        for uid in sorted(set(user_ids)):
            self.touched.add(uid)
            premium = (
                self.conn.execute(
                    sa.select(sa.literal(1))
                    .select_from(
                        subscription_members.join(
                            subscriptions, subscriptions.c.id == subscription_members.c.subscription_id
                        )
                    )
                    .where(subscription_members.c.user_id == uid, subscriptions.c.status.in_(ENTITLED))
                    .limit(1)
                ).first()
                is not None
            )
            product = "premium" if premium else "free"
            done = self.conn.execute(
                sa.update(users).where(users.c.id == uid, users.c.product != product).values(product=product)
            )
            if done.rowcount:
                self.changed[uid] = product
                self._entitlements.decide(uid, "product", premium, reason, detail, conn=self.conn)

    def note(self, user_ids: Iterable[str], reason: str, detail: str, *, allowed: bool = True) -> None:
        """Logs a decision that does not change the product (e.g. premium kept during grace)."""
        for uid in sorted(set(user_ids)):
            self.touched.add(uid)
            self._entitlements.decide(uid, "product", allowed, reason, detail, conn=self.conn)


class BillingService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        gateway: PaymentGateway,
        jobs: JobQueue,
        accounts: AccountService,
        entitlements: EntitlementService,
        limiter: RateLimiter,
        settings: Settings,
    ) -> None:
        from tonearm.domains.billing.invitations import Invitations

        self.db = db
        self.clock = clock
        self.gateway = gateway
        self.jobs = jobs
        self.accounts = accounts
        self.entitlements = entitlements
        self.limiter = limiter
        self.base = settings.public_url.rstrip("/")
        self.grace = dt.timedelta(days=settings.grace_period_days)
        self.retry_days = sorted(settings.renewal_retry_days)
        self._product_listeners: list[ProductCallback] = []
        self.invitations = Invitations(self, invitation_days=settings.invitation_days)

    # Plumbing -----------------------------------------------------------------------------------
    def on_product_change(self, callback: ProductCallback) -> None:
        """`callback(user_id, product)` runs after the commit of every change of a user's
        product ("free"/"premium"); an error in one is logged and does not stop the others."""
        self._product_listeners.append(callback)

    @contextlib.contextmanager
    def work(self) -> Iterator[Work]:
        """A write transaction; on commit, caches are cleared and listeners told."""
        with self.db.write() as conn:
            w = Work(conn, self.clock.now(), self.entitlements)
            yield w
        self.after_commit(w)

    def after_commit(self, w: Work) -> None:
        if w.changed:
            self.accounts.forget_sessions()  # the cached Principal carries `product`
        for uid in w.touched | set(w.changed):
            self.entitlements.invalidate(uid)
        for uid, product in w.changed.items():
            log.info("billing.product_changed", user_id=uid, product=product)
            for callback in self._product_listeners:
                try:
                    callback(uid, product)
                except Exception:
                    log.exception("billing.product_listener_failed", user_id=uid, product=product)

    # Plans ----------------------------------------------------------------------------------------
    def plans(self) -> list[dict[str, Any]]:
        """Every active plan, cheapest first, with its price and features."""
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(plans).where(plans.c.active.is_(True)).order_by(plans.c.price_minor, plans.c.id)
            ).all()
            feats = conn.execute(
                sa.select(plan_features.c.plan_id, premium_features)
                .select_from(
                    plan_features.join(premium_features, premium_features.c.id == plan_features.c.feature_id)
                )
                .order_by(premium_features.c.id)
            ).all()
        by_plan: dict[str, list[dict[str, str]]] = {}
        for f in feats:
            by_plan.setdefault(f.plan_id, []).append(
                {"id": f.id, "name": f.name, "description": f.description}
            )
        return [
            {
                "id": p.id,
                "name": p.name,
                "price": price_obj(p.price_minor, p.currency),
                "interval": p.interval,
                "max_members": p.max_members,
                "features": by_plan.get(p.id, []),
            }
            for p in rows
        ]

    @staticmethod
    def plan_row(conn: sa.Connection, plan_id: str) -> Any:
        return conn.execute(sa.select(plans).where(plans.c.id == plan_id)).first()

    def _paid_plan(self, conn: sa.Connection, plan_id: str) -> Any:
        plan = self.plan_row(conn, plan_id)
        if plan is None or not plan.active:
            raise BadRequest(f"plan_id: there is no plan {plan_id[:40]!r} on offer; GET /v1/plans lists them")
        if plan.price_minor <= 0:
            raise BadRequest(
                f"plan_id: {plan.name} needs no subscription; to go back to it, cancel your subscription"
            )
        money.check_amount(plan.price_minor, "price")
        return plan

    @staticmethod
    def _plan_obj(plan: Any) -> dict[str, Any]:
        return {
            "id": plan.id,
            "name": plan.name,
            "price": price_obj(plan.price_minor, plan.currency),
            "interval": plan.interval,
            "max_members": plan.max_members,
        }

    # Cards (sandbox) ----------------------------------------------------------------------------
    def tokenize_card(
        self, user_id: str, number: str, exp_month: int, exp_year: int, cvc: str
    ) -> dict[str, Any]:
        """The sandbox's stand-in for a gateway's card form. Rate limited per user; the number is
        handed to the gateway and never logged or stored here."""
        if self.gateway.name != "sandbox":
            raise NotFound(
                f"cards are tokenized by the {self.gateway.name} gateway's own script in the browser; "
                "this server never sees card numbers"
            )
        key = f"billing.cards:{user_id}"
        wait = self.limiter.retry_after(key, CARDS_PER_HOUR, 3600)
        if wait > 0:
            raise TooManyRequests(f"too many cards tokenized; try again in {int(wait) + 1} s", int(wait) + 1)
        self.limiter.hit(key)
        try:
            card = self.gateway.tokenize_card(number, exp_month, exp_year, cvc)
        except NotImplementedError as exc:
            raise NotFound("this payment gateway tokenizes cards in the browser") from exc
        return self._card_obj(card) | {"exp_month": card.exp_month, "exp_year": card.exp_year}

    @staticmethod
    def _card_obj(card: Card) -> dict[str, Any]:
        return {"token": card.token, "brand": card.brand, "last4": card.last4}

    def _card(self, token: str) -> Card:
        if not token or len(token) > 100:
            raise BadRequest("payment_token: 1 to 100 characters, as the gateway returned it")
        return self.gateway.card(token)  # CardError (400) for a token it does not know

    # Reading subscriptions ----------------------------------------------------------------------
    @staticmethod
    def held(conn: sa.Connection, user_id: str, statuses: tuple[str, ...] = HELD) -> Any:
        """The subscription the user belongs to (as manager or member), if any."""
        return conn.execute(
            sa.select(
                subscriptions.c.id,
                subscriptions.c.status,
                subscriptions.c.plan_id,
                subscriptions.c.user_id.label("manager_id"),
                subscription_members.c.role,
            )
            .select_from(
                subscription_members.join(
                    subscriptions, subscriptions.c.id == subscription_members.c.subscription_id
                )
            )
            .where(subscription_members.c.user_id == user_id, subscriptions.c.status.in_(statuses))
            .order_by(subscriptions.c.created_at.desc())
            .limit(1)
        ).first()

    @staticmethod
    def lock_subscription(conn: sa.Connection, sub_id: str | None) -> Any:
        if sub_id is None:
            return None
        return conn.execute(
            sa.select(subscriptions).where(subscriptions.c.id == sub_id).with_for_update(key_share=True)
        ).first()

    @staticmethod
    def lock_user(conn: sa.Connection, user_id: str) -> None:
        # Serializes one user's subscribe/join decisions on PostgreSQL (SQLite's writer lock
        # already does). Every lock here is FOR NO KEY UPDATE (`key_share`): it does not wait for
        # the KEY SHARE locks that foreign key checks take on the rows they refer to.
        conn.execute(sa.select(users.c.id).where(users.c.id == user_id).with_for_update(key_share=True))

    @staticmethod
    def member_ids(conn: sa.Connection, sub_id: str) -> list[str]:
        return list(
            conn.execute(
                sa.select(subscription_members.c.user_id).where(
                    subscription_members.c.subscription_id == sub_id
                )
            ).scalars()
        )

    def subscription(self, user_id: str) -> dict[str, Any]:
        """The subscription the user pays for or belongs to (404 when none)."""
        with self.db.read() as conn:
            held = self.held(conn, user_id)
            if held is None:
                raise NotFound("you have no subscription")
            return self.view(conn, held.id, user_id)

    def view(self, conn: sa.Connection, sub_id: str, viewer_id: str) -> dict[str, Any]:
        sub = conn.execute(sa.select(subscriptions).where(subscriptions.c.id == sub_id)).one()
        plan = self.plan_row(conn, sub.plan_id)
        pending = self.plan_row(conn, sub.pending_plan_id) if sub.pending_plan_id else None
        members = conn.execute(
            sa.select(
                subscription_members.c.user_id,
                subscription_members.c.role,
                subscription_members.c.joined_at,
                users.c.display_name,
            )
            .select_from(subscription_members.join(users, users.c.id == subscription_members.c.user_id))
            .where(subscription_members.c.subscription_id == sub_id)
            .order_by(subscription_members.c.role, subscription_members.c.joined_at)  # the manager first
        ).all()
        manager = viewer_id == sub.user_id
        card = (
            {"brand": sub.card_brand, "last4": sub.card_last4}
            if manager and sub.card_last4 is not None
            else None
        )
        return {
            "id": sub.id,
            "plan": self._plan_obj(plan),
            "status": sub.status,
            "role": "manager" if manager else "member",
            "current_period_start": iso(sub.current_period_start),
            "current_period_end": iso(sub.current_period_end),
            "cancel_at_period_end": bool(sub.cancel_at_period_end),
            "pending_plan": self._plan_obj(pending) if pending is not None else None,
            "grace_until": iso(sub.grace_until),
            "next_retry_at": iso(sub.next_retry_at) if manager else None,
            "ended_at": iso(sub.ended_at),
            "card": card,
            "members": [
                {
                    "id": m.user_id,
                    "display_name": m.display_name,
                    "role": m.role,
                    "joined_at": iso(m.joined_at),
                }
                for m in members
            ],
        }

    # Subscribing --------------------------------------------------------------------------------
    def subscribe(
        self, user_id: str, plan_id: str, payment_token: str, *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Starts a subscription and charges its first month now (see the module docstring).
        A decline is a 402 with the gateway's words, and nothing is granted. With an
        `idempotency_key`, asking again returns the first request's outcome without charging."""
        if idempotency_key is not None and not _CLIENT_KEY.match(idempotency_key):
            raise BadRequest("Idempotency-Key: 1 to 64 printable ASCII characters without spaces")
        key = f"subscribe:{user_id}:{idempotency_key or new_id()}"
        with self.db.read() as conn:
            plan = self._paid_plan(conn, plan_id)
        earlier = self._payment_by_key(key)
        pid: str | None = None
        if earlier is None:
            self._settle_incomplete(user_id)  # an earlier attempt left pending finishes first
            card = self._card(payment_token)
            try:
                with self.work() as w:
                    self.lock_user(w.conn, user_id)
                    earlier = self._payment_by_key(key, w.conn)
                    if earlier is None:
                        self._refuse_if_held(w.conn, user_id)
                        pid = self._open_subscription(w, user_id, plan, card, key)
            except sa.exc.IntegrityError:  # the same key at the same moment: that request's payment
                earlier = self._payment_by_key(key)
                if earlier is None:
                    raise
        if pid is None:
            if self._invoice_plan(earlier.invoice_id) not in (None, plan.id):
                raise Conflict("Idempotency-Key: already used for a subscription to another plan")
            pid = str(earlier.id)
        self._charge_payment(pid)
        return self._outcome(user_id, pid)

    def comp(self, user_id: str, plan_id: str, days: int) -> str:
        """An operator's gift: `plan_id` for `days` days with no charge, ending by itself (no card
        to renew with). Refused like a subscription when the user already belongs to a plan."""
        if not 1 <= days <= 3660:
            raise BadRequest("days: 1 to 3660")
        with self.work() as w:
            plan = self._paid_plan(w.conn, plan_id)
            self.lock_user(w.conn, user_id)
            self._refuse_if_held(w.conn, user_id)
            sub_id = new_id()
            w.conn.execute(
                sa.insert(subscriptions).values(
                    id=sub_id,
                    user_id=user_id,
                    plan_id=plan.id,
                    status="active",
                    current_period_start=w.now,
                    current_period_end=w.now + dt.timedelta(days=days),
                    cancel_at_period_end=True,  # nothing to charge: it ends with its period
                    payment_method_token=None,
                    gateway="comp",
                    retry_count=0,
                    created_at=w.now,
                    updated_at=w.now,
                )
            )
            w.conn.execute(
                sa.insert(subscription_members).values(
                    subscription_id=sub_id, user_id=user_id, role="manager", joined_at=w.now
                )
            )
            w.sync([user_id], "comped", f"{plan.name} given by an operator for {days} days")
        return sub_id

    def _refuse_if_held(self, conn: sa.Connection, user_id: str) -> None:
        held = self.held(conn, user_id)
        if held is None:
            return
        name = self.plan_row(conn, held.plan_id).name
        if held.status == "incomplete":
            raise Conflict("a payment for your subscription is already in progress; try again in a minute")
        if held.role == "manager":
            raise Conflict(
                f"you already have {name}; to switch plans, change plan instead (PATCH /v1/me/subscription)"
            )
        raise Conflict(
            f"you are a member of someone else's {name}; leave the family plan first "
            "(DELETE /v1/me/subscription/membership)"
        )

    def _open_subscription(self, w: Work, user_id: str, plan: Any, card: Card, key: str) -> str:
        now = w.now
        end = money.add_months(now, 1)
        sub_id = new_id()
        w.conn.execute(
            sa.insert(subscriptions).values(
                id=sub_id,
                user_id=user_id,
                plan_id=plan.id,
                status="incomplete",
                current_period_start=now,
                current_period_end=end,
                cancel_at_period_end=False,
                payment_method_token=card.token,
                gateway=self.gateway.name,
                card_brand=card.brand,
                card_last4=card.last4,
                retry_count=0,
                created_at=now,
                updated_at=now,
            )
        )
        w.conn.execute(
            sa.insert(subscription_members).values(
                subscription_id=sub_id, user_id=user_id, role="manager", joined_at=now
            )
        )
        description = f"{plan.name}, {_day(now)} to {_day(end)}"
        invoice_id = self._invoice(
            w, user_id, sub_id, plan, now, end, description, [(description, plan.price_minor)]
        )
        return self._payment(w, user_id, sub_id, invoice_id, plan.price_minor, plan.currency, key)

    def _outcome(self, user_id: str, payment_id: str) -> dict[str, Any]:
        p = self._payment_row(payment_id)
        if p.status == "failed":
            raise PaymentRequired(p.failure_reason or "the payment was declined")
        if p.status == "pending":
            raise ServiceUnavailable(
                "the payment gateway did not answer; try again (with the same Idempotency-Key)", 30
            )
        return self.subscription(user_id)

    def _settle_incomplete(self, user_id: str) -> None:
        with self.db.read() as conn:
            pending = (
                conn.execute(
                    sa.select(payments.c.id)
                    .select_from(
                        payments.join(subscriptions, subscriptions.c.id == payments.c.subscription_id)
                    )
                    .where(
                        subscriptions.c.user_id == user_id,
                        subscriptions.c.status == "incomplete",
                        payments.c.status == "pending",
                    )
                )
                .scalars()
                .all()
            )
        for pid in pending:
            self._charge_payment(pid)

    # Changing a subscription --------------------------------------------------------------------
    def update(
        self,
        user_id: str,
        *,
        plan_id: str | None = None,
        cancel_at_period_end: bool | None = None,
        payment_token: str | None = None,
    ) -> dict[str, Any]:
        """The manager changes the card, the plan, or cancellation, in that order. A pricier plan
        starts now, charging the prorated difference for the rest of the period; a cheaper one
        starts at the next renewal (`pending_plan`)."""
        if plan_id is None and cancel_at_period_end is None and payment_token is None:
            raise BadRequest("give plan_id, cancel_at_period_end or payment_token")
        sub_id = self.managed_subscription(user_id)
        if payment_token is not None:
            self._replace_card(sub_id, payment_token)
        if plan_id is not None:
            self._change_plan(user_id, sub_id, plan_id)
        if cancel_at_period_end is not None:
            self._set_cancel(sub_id, cancel_at_period_end)
        with self.db.read() as conn:
            return self.view(conn, sub_id, user_id)

    def cancel(self, user_id: str) -> dict[str, Any]:
        return self.update(user_id, cancel_at_period_end=True)

    def managed_subscription(self, user_id: str) -> str:
        with self.db.read() as conn:
            held = self.held(conn, user_id)
            if held is None:
                raise NotFound("you have no subscription")
            if held.role != "manager":
                manager = conn.execute(
                    sa.select(users.c.display_name).where(users.c.id == held.manager_id)
                ).scalar()
                raise Forbidden(f"only {manager}, who pays for this plan, can change or cancel it")
            if held.status == "incomplete":
                raise Conflict("your first payment is still being processed; try again in a minute")
            return str(held.id)

    def _replace_card(self, sub_id: str, token: str) -> None:
        card = self._card(token)
        self._settle_pending(sub_id)  # a charge in flight finishes on the card it started on
        with self.work() as w:
            sub = self.lock_subscription(w.conn, sub_id)
            if sub is None or sub.status not in ENTITLED:
                raise Conflict("this subscription has ended; subscribe again")
            values: dict[str, Any] = {
                "payment_method_token": card.token,
                "gateway": self.gateway.name,
                "card_brand": card.brand,
                "card_last4": card.last4,
                "updated_at": w.now,
            }
            if sub.status == "past_due":  # retry the unpaid renewal on the new card now
                values["next_retry_at"] = w.now
                self.jobs.enqueue(
                    w.conn, RENEW_JOB, {"subscription_id": sub_id}, dedupe_key=_renew_key(sub_id)
                )
            w.conn.execute(sa.update(subscriptions).where(subscriptions.c.id == sub_id).values(**values))

    def _change_plan(self, user_id: str, sub_id: str, plan_id: str) -> None:
        with self.db.read() as conn:
            new = self._paid_plan(conn, plan_id)
            sub = conn.execute(sa.select(subscriptions).where(subscriptions.c.id == sub_id)).one()
            cur = self.plan_row(conn, sub.plan_id)
        if sub.status != "active":
            raise Conflict("your last renewal payment failed; give a working card (payment_token) first")
        if new.id == cur.id:
            if sub.pending_plan_id is not None:  # staying: the scheduled change is dropped
                with self.work() as w:
                    w.conn.execute(
                        sa.update(subscriptions)
                        .where(subscriptions.c.id == sub_id)
                        .values(pending_plan_id=None, updated_at=w.now)
                    )
            return
        if new.currency != cur.currency:
            raise BadRequest(f"plan_id: {new.name} is billed in {new.currency}, your plan in {cur.currency}")
        if new.price_minor > cur.price_minor:
            self._upgrade(user_id, sub_id, cur, new)
        else:
            self._schedule_downgrade(sub_id, new)

    def _upgrade(self, user_id: str, sub_id: str, cur: Any, new: Any) -> None:
        pid: str | None = None
        with self.work() as w:
            sub = self.lock_subscription(w.conn, sub_id)
            if sub is None or sub.status != "active" or sub.plan_id != cur.id:
                raise Conflict("the subscription changed meanwhile; look at it again and retry")
            if self._pending_payment(w.conn, sub_id) is not None:
                raise Conflict("a payment for this subscription is in progress; try again in a minute")
            self._check_room(w.conn, sub_id, new)
            start, end = sub.current_period_start, sub.current_period_end
            period_s = max(1, int((end - start).total_seconds()))
            elapsed = min(period_s, max(0, int((w.now - start).total_seconds())))
            # Differences of cumulative prorations: used + credit is exactly what was paid.
            credit = money.pieces(cur.price_minor, [elapsed], period_s)[1]
            charge = money.pieces(new.price_minor, [elapsed], period_s)[1]
            lines = [
                (f"Unused time on {cur.name}, {_day(w.now)} to {_day(end)}", -credit),
                (f"{new.name}, {_day(w.now)} to {_day(end)}", charge),
            ]
            invoice_id = self._invoice(
                w, user_id, sub_id, new, w.now, end, f"Change from {cur.name} to {new.name}", lines
            )
            amount = charge - credit
            if amount <= 0:  # the very end of a period: nothing to pay
                self._mark_paid(w, invoice_id, None)
                self._switch_plan(w, sub_id, new.id)
            else:
                pid = self._payment(
                    w, user_id, sub_id, invoice_id, amount, new.currency, f"upgrade:{sub_id}:{invoice_id}"
                )
        if pid is not None:
            self._charge_payment(pid)
            p = self._payment_row(pid)
            if p.status == "failed":
                raise PaymentRequired(p.failure_reason or "the payment was declined")
            if p.status == "pending":
                raise ServiceUnavailable("the payment gateway did not answer; try again in a minute", 30)

    def _switch_plan(self, w: Work, sub_id: str, plan_id: str) -> None:
        w.conn.execute(
            sa.update(subscriptions)
            .where(subscriptions.c.id == sub_id)
            .values(plan_id=plan_id, pending_plan_id=None, updated_at=w.now)
        )
        w.touched.update(self.member_ids(w.conn, sub_id))

    def _check_room(self, conn: sa.Connection, sub_id: str, plan: Any) -> None:
        n = len(self.member_ids(conn, sub_id))
        if n > plan.max_members:
            extra = n - plan.max_members
            raise Conflict(
                f"{plan.name} has room for {plan.max_members} (you included) and your plan has {n}: "
                f"remove {extra} member{'s' if extra > 1 else ''} first"
            )

    def _schedule_downgrade(self, sub_id: str, new: Any) -> None:
        with self.work() as w:
            sub = self.lock_subscription(w.conn, sub_id)
            if sub is None or sub.status != "active":
                raise Conflict("the subscription changed meanwhile; look at it again and retry")
            self._check_room(w.conn, sub_id, new)
            w.conn.execute(
                sa.update(subscriptions)
                .where(subscriptions.c.id == sub_id)
                .values(pending_plan_id=new.id, updated_at=w.now)
            )

    def _set_cancel(self, sub_id: str, cancel: bool) -> None:
        with self.work() as w:
            sub = self.lock_subscription(w.conn, sub_id)
            if sub is None or sub.status not in ENTITLED:
                raise Conflict("this subscription has ended")
            if cancel and sub.status == "past_due":
                # The unpaid period is not owed: it ends now, and the retries stop.
                self._end(w, sub, "expired", "canceled", "canceled while a renewal payment was failing")
                return
            if not cancel and sub.status != "active":
                raise Conflict("only an active subscription can be resumed")
            w.conn.execute(
                sa.update(subscriptions)
                .where(subscriptions.c.id == sub_id)
                .values(cancel_at_period_end=cancel, updated_at=w.now)
            )

    # Members ------------------------------------------------------------------------------------
    def leave(self, user_id: str) -> None:
        """A member leaves the plan they were invited to, and is free at once."""
        with self.work() as w:
            held = self.held(w.conn, user_id)
            if held is None:
                raise NotFound("you are not a member of anyone's plan")
            if held.role == "manager":
                raise Conflict("you pay for this plan; cancel it instead (DELETE /v1/me/subscription)")
            w.conn.execute(
                sa.delete(subscription_members).where(
                    subscription_members.c.subscription_id == held.id,
                    subscription_members.c.user_id == user_id,
                )
            )
            w.sync([user_id], "left_family", "left the plan they were a member of")

    def remove_member(self, manager_id: str, member_id: str) -> None:
        """The manager removes a member, who is free at once."""
        sub_id = self.managed_subscription(manager_id)
        if member_id == manager_id:
            raise BadRequest("you cannot remove yourself; cancel the subscription instead")
        with self.work() as w:
            gone = (
                w.conn.execute(
                    sa.delete(subscription_members)
                    .where(
                        subscription_members.c.subscription_id == sub_id,
                        subscription_members.c.user_id == member_id,
                        subscription_members.c.role == "member",
                    )
                    .returning(subscription_members.c.user_id)
                ).first()
                if is_valid_id(member_id)
                else None
            )
            if gone is None:
                raise NotFound(f"user {member_id[:40]} is not a member of your plan")
            w.sync([member_id], "member_removed", "removed from the plan by its manager")

    # Renewals -----------------------------------------------------------------------------------
    def run_due(self) -> int:
        """The sweep: queues a `billing.renew` job for every subscription with something due now
        (a renewal, a retry, the end of a grace period or of a canceled period, a payment left
        pending by a crash). Cheap (indexed) and safe to run in several processes at once: jobs
        are deduplicated per subscription and `renew` itself is idempotent. Returns how many."""
        now = self.clock.now()
        with self.db.write() as conn:
            due = set(
                conn.execute(
                    sa.select(subscriptions.c.id).where(
                        sa.or_(
                            sa.and_(
                                subscriptions.c.status == "active", subscriptions.c.current_period_end <= now
                            ),
                            sa.and_(
                                subscriptions.c.status == "past_due",
                                sa.or_(
                                    subscriptions.c.next_retry_at <= now, subscriptions.c.grace_until <= now
                                ),
                            ),
                        )
                    )
                ).scalars()
            )
            due.update(
                conn.execute(
                    sa.select(payments.c.subscription_id).where(
                        payments.c.status == "pending",
                        payments.c.subscription_id.is_not(None),
                        payments.c.created_at <= now - SETTLE_PENDING_AFTER,
                    )
                ).scalars()
            )
            for sub_id in sorted(due):
                try:
                    with conn.begin_nested():  # another process queued it at the same moment
                        self.jobs.enqueue(
                            conn, RENEW_JOB, {"subscription_id": sub_id}, dedupe_key=_renew_key(sub_id)
                        )
                except sa.exc.IntegrityError:
                    continue
        if due:
            log.info("billing.sweep", due=len(due))
        return len(due)

    def renew(self, subscription_id: str) -> None:
        """Does what is due for one subscription (the `billing.renew` job): settles a payment
        left pending, then renews, retries, expires or lapses it. Running it twice, or in two
        processes at once, charges at most once per attempt (the keys are deterministic)."""
        for _ in range(3):
            pid, fresh = self._renewal_step(subscription_id)
            if pid is None:
                return
            self._charge_payment(pid)
            if fresh:
                return

    def _renewal_step(self, sub_id: str) -> tuple[str | None, bool]:
        """In one transaction, with the subscription locked: the payment to charge (and whether
        it is a new attempt), after ending the subscription if that is what is due."""
        with self.work() as w:
            sub = self.lock_subscription(w.conn, sub_id)
            if sub is None:
                return None, False
            pending = self._pending_payment(w.conn, sub_id)
            if pending is not None:
                return pending, False
            now = w.now
            if sub.status == "active" and sub.current_period_end <= now:
                if sub.cancel_at_period_end:
                    self._end(
                        w, sub, "expired", "canceled_period_ended", "the canceled subscription's period ended"
                    )
                    return None, False
                return self._renewal_attempt(w, sub, 0), True
            if sub.status == "past_due":
                if sub.grace_until is not None and sub.grace_until <= now:
                    self._end(
                        w,
                        sub,
                        "expired",
                        "lapsed",
                        "the renewal payment kept failing and the grace period ended",
                    )
                    return None, False
                if sub.next_retry_at is not None and sub.next_retry_at <= now:
                    return self._renewal_attempt(w, sub, sub.retry_count), True
            return None, False

    def _renewal_attempt(self, w: Work, sub: Any, attempt: int) -> str | None:
        """The pending payment for renewal attempt `attempt` of the period starting at the
        subscription's current period end, with its invoice (made once, at the first attempt)."""
        start = sub.current_period_end
        key = f"renew:{sub.id}:{int(start.timestamp())}:{attempt}"
        if self._payment_by_key(key, w.conn) is not None:
            return None  # this attempt was made and recorded already
        inv = w.conn.execute(
            sa.select(invoices).where(
                invoices.c.subscription_id == sub.id,
                invoices.c.period_start == start,
                invoices.c.status == "open",
            )
        ).first()
        if inv is None:
            plan = self.plan_row(w.conn, sub.pending_plan_id or sub.plan_id)
            end = _next_period_end(sub.created_at, start)
            description = f"{plan.name}, {_day(start)} to {_day(end)}"
            invoice_id = self._invoice(
                w, sub.user_id, sub.id, plan, start, end, description, [(description, plan.price_minor)]
            )
            amount, currency = plan.price_minor, plan.currency
        else:
            invoice_id, amount, currency = inv.id, inv.amount_minor, inv.currency
        return self._payment(w, sub.user_id, sub.id, invoice_id, amount, currency, key)

    def _end(self, w: Work, sub: Any, status: str, reason: str, detail: str) -> None:
        """Ends a subscription now: open invoices void, everyone in it back to free."""
        w.conn.execute(
            sa.update(subscriptions)
            .where(subscriptions.c.id == sub.id)
            .values(status=status, ended_at=w.now, next_retry_at=None, updated_at=w.now)
        )
        w.conn.execute(
            sa.update(invoices)
            .where(invoices.c.subscription_id == sub.id, invoices.c.status == "open")
            .values(status="void")
        )
        w.sync(self.member_ids(w.conn, sub.id), reason, detail)
        log.info("billing.subscription_ended", subscription_id=sub.id, status=status, reason=reason)

    # Charging -----------------------------------------------------------------------------------
    def _settle_pending(self, sub_id: str) -> None:
        with self.db.read() as conn:
            pid = self._pending_payment(conn, sub_id)
        if pid is not None:
            self._charge_payment(pid)

    @staticmethod
    def _pending_payment(conn: sa.Connection, sub_id: str) -> str | None:
        return conn.execute(
            sa.select(payments.c.id)
            .where(payments.c.subscription_id == sub_id, payments.c.status == "pending")
            .order_by(payments.c.created_at)
            .limit(1)
        ).scalar()

    def _charge_payment(self, payment_id: str) -> None:
        """Calls the gateway for a pending payment with its own idempotency key and records the
        outcome. Safe to call again for the same payment: the gateway answers the same Charge."""
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(
                    payments,
                    subscriptions.c.payment_method_token,
                    invoices.c.description.label("invoice_description"),
                )
                .select_from(
                    payments.outerjoin(
                        subscriptions, subscriptions.c.id == payments.c.subscription_id
                    ).outerjoin(invoices, invoices.c.id == payments.c.invoice_id)
                )
                .where(payments.c.id == payment_id)
            ).first()
        if row is None or row.status != "pending":
            return
        if row.payment_method_token is None:  # the subscription is gone (account deleted)
            failed = Charge(
                "",
                "failed",
                row.amount_minor,
                row.currency,
                row.idempotency_key,
                "no_card",
                "no card on file",
            )
            self._record(payment_id, failed)
            return
        try:
            charge = self.gateway.charge(
                row.payment_method_token,
                money.check_amount(row.amount_minor),
                row.currency,
                idempotency_key=row.idempotency_key,
                description=f"Tonearm: {row.invoice_description or 'Premium'}",
            )
        except CardError as exc:  # the gateway no longer knows the card: nothing was charged
            charge = Charge(
                "", "failed", row.amount_minor, row.currency, row.idempotency_key, "card_error", exc.message
            )
        self._record(payment_id, charge)

    def _record(self, payment_id: str, charge: Charge) -> None:
        with self.work() as w:
            p = w.conn.execute(
                sa.select(payments).where(payments.c.id == payment_id).with_for_update(key_share=True)
            ).first()
            if p is not None:
                self._apply(w, p, charge, charge.status)

    def _apply(self, w: Work, p: Any, charge: Charge, target: str) -> bool:
        """Moves a payment forward to `target` (never back) and applies what that means."""
        if (charge.amount_minor, charge.currency) != (p.amount_minor, p.currency):
            log.warning("billing.charge_mismatch", payment_id=p.id, charge_id=charge.id)
            return False
        cur = p.status
        if _RANK[target] <= _RANK[cur] or (target == "refunded" and cur == "failed"):
            return False
        if cur == "pending":
            step = "failed" if target == "failed" else "succeeded"
            reason = (
                (charge.failure_message or charge.failure_code or "declined") if step == "failed" else None
            )
            moved = w.conn.execute(
                sa.update(payments)
                .where(payments.c.id == p.id, payments.c.status == "pending")
                .values(status=step, gateway_ref=charge.id or None, failure_reason=reason, updated_at=w.now)
            )
            if not moved.rowcount:
                return False
            self._settled(w, p, step, reason)
            cur = step
        if target == "refunded" and cur == "succeeded":
            w.conn.execute(
                sa.update(payments)
                .where(payments.c.id == p.id, payments.c.status == "succeeded")
                .values(status="refunded", gateway_ref=p.gateway_ref or charge.id, updated_at=w.now)
            )
            self._refunded(w, p)
        log.info("billing.payment", payment_id=p.id, status=target, key=p.idempotency_key)
        return True

    def _settled(self, w: Work, p: Any, status: str, reason: str | None) -> None:
        purpose = p.idempotency_key.split(":", 1)[0]
        inv: Any = w.conn.execute(sa.select(invoices).where(invoices.c.id == p.invoice_id)).first()
        sub = self.lock_subscription(w.conn, p.subscription_id)
        if status == "failed":
            if inv is not None and purpose in ("subscribe", "upgrade"):
                self._mark_void(w, inv.id)
            if purpose == "subscribe" and sub is not None and sub.status == "incomplete":
                # Declined: no subscription at all (payment and invoice stay, for the record).
                w.conn.execute(
                    sa.delete(subscription_members).where(subscription_members.c.subscription_id == sub.id)
                )
                w.conn.execute(sa.delete(subscriptions).where(subscriptions.c.id == sub.id))
            if purpose == "renew" and sub is not None and inv is not None:
                self._renewal_failed(w, sub, inv, p.idempotency_key, reason or "declined")
            return
        # Succeeded.
        if inv is not None:
            self._mark_paid(w, inv.id, p.id)
        if purpose == "subscribe" and sub is not None and sub.status == "incomplete":
            w.conn.execute(
                sa.update(subscriptions)
                .where(subscriptions.c.id == sub.id)
                .values(status="active", updated_at=w.now)
            )
            plan = self.plan_row(w.conn, sub.plan_id)
            w.sync(self.member_ids(w.conn, sub.id), "subscribed", f"subscribed to {plan.name}")
            return
        usable = sub is not None and sub.status in ENTITLED and inv is not None
        if usable and purpose == "upgrade" and sub.current_period_end == inv.period_end:
            self._switch_plan(w, sub.id, inv.plan_id)
            return
        if usable and purpose == "renew" and sub.current_period_end == inv.period_start:
            w.conn.execute(
                sa.update(subscriptions)
                .where(subscriptions.c.id == sub.id)
                .values(
                    status="active",
                    plan_id=inv.plan_id,
                    pending_plan_id=None,
                    current_period_start=inv.period_start,
                    current_period_end=inv.period_end,
                    grace_until=None,
                    next_retry_at=None,
                    retry_count=0,
                    updated_at=w.now,
                )
            )
            w.touched.update(self.member_ids(w.conn, sub.id))
            return
        # Money for something that can no longer be given (the subscription ended meanwhile):
        # it goes back.
        log.warning("billing.refunding_unusable_payment", payment_id=p.id, key=p.idempotency_key)
        self.jobs.enqueue(w.conn, REFUND_JOB, {"payment_id": p.id}, dedupe_key=f"{REFUND_JOB}:{p.id}")

    def _renewal_failed(self, w: Work, sub: Any, inv: Any, key: str, reason: str) -> None:
        if sub.status not in ENTITLED or sub.current_period_end != inv.period_start:
            return
        attempt = int(key.rsplit(":", 1)[1])
        start = inv.period_start
        grace_until = sub.grace_until or start + self.grace
        retry = (
            start + dt.timedelta(days=self.retry_days[attempt]) if attempt < len(self.retry_days) else None
        )
        if retry is not None and retry >= grace_until:
            retry = None
        w.conn.execute(
            sa.update(subscriptions)
            .where(subscriptions.c.id == sub.id)
            .values(
                status="past_due",
                grace_until=grace_until,
                next_retry_at=retry,
                retry_count=max(sub.retry_count, attempt + 1),
                updated_at=w.now,
            )
        )
        w.note(
            self.member_ids(w.conn, sub.id),
            "renewal_failed_grace",
            f"renewal payment failed ({reason}); premium continues until "
            f"{iso(grace_until)} while the charge is retried",
        )

    def _refunded(self, w: Work, p: Any) -> None:
        """A refund of the payment for the current period ends the subscription now."""
        inv = w.conn.execute(sa.select(invoices).where(invoices.c.id == p.invoice_id)).first()
        sub = self.lock_subscription(w.conn, p.subscription_id)
        if inv is None or sub is None or sub.status not in ENTITLED:
            return
        if inv.period_end == sub.current_period_end:
            self._end(w, sub, "canceled", "refunded", "the payment for the current period was refunded")

    def refund_payment(self, payment_id: str) -> None:
        """Gives back a succeeded payment in full (the `billing.refund` job)."""
        p = self._payment_row(payment_id, missing_ok=True)
        if p is None or p.status != "succeeded" or not p.gateway_ref:
            return
        charge = self.gateway.refund(p.gateway_ref, idempotency_key=f"refund:{payment_id}")
        self._record(payment_id, charge)

    # Webhooks -----------------------------------------------------------------------------------
    def handle_webhook(self, gateway_name: str, body: bytes, headers: Mapping[str, str]) -> str:
        """Applies one signed gateway event: "applied", "duplicate" (this event id was seen
        before: nothing changes) or "ignored" (an unknown charge, or nothing new to say)."""
        if gateway_name != self.gateway.name:
            raise NotFound(f"no payment gateway named {gateway_name[:40]!r} here")
        event = self.gateway.parse_webhook(body, headers)  # WebhookError (400) if forged or stale
        with self.work() as w:
            fresh = _insert_ignore(
                w.conn,
                webhook_events,
                {
                    "gateway": gateway_name,
                    "event_id": event.id[:100],
                    "type": event.type[:60],
                    "created": event.created,
                    "received_at": w.now,
                },
            )
            if not fresh:
                return "duplicate"
            target = _EVENT_STATUS.get(event.type)
            p = w.conn.execute(
                sa.select(payments)
                .where(
                    payments.c.gateway == gateway_name,
                    sa.or_(
                        payments.c.gateway_ref == event.charge.id,
                        payments.c.idempotency_key == event.charge.idempotency_key,
                    ),
                )
                .with_for_update(key_share=True)
            ).first()
            if target is None or p is None:
                log.info("billing.webhook_ignored", event_id=event.id, type=event.type)
                return "ignored"
            applied = self._apply(w, p, event.charge, target)
        return "applied" if applied else "ignored"

    # Payments and invoices ----------------------------------------------------------------------
    def _payment(
        self, w: Work, user_id: str, sub_id: str, invoice_id: str, amount: int, currency: str, key: str
    ) -> str:
        pid = new_id()
        w.conn.execute(
            sa.insert(payments).values(
                id=pid,
                user_id=user_id,
                subscription_id=sub_id,
                invoice_id=invoice_id,
                amount_minor=money.check_amount(amount),
                currency=money.check_currency(currency),
                status="pending",
                gateway=self.gateway.name,
                idempotency_key=key,
                kind="charge",
                created_at=w.now,
                updated_at=w.now,
            )
        )
        return pid

    def _payment_by_key(self, key: str, conn: sa.Connection | None = None) -> Any:
        stmt = sa.select(payments).where(payments.c.idempotency_key == key)
        if conn is not None:
            return conn.execute(stmt).first()
        with self.db.read() as c:
            return c.execute(stmt).first()

    def _payment_row(self, payment_id: str, *, missing_ok: bool = False) -> Any:
        with self.db.read() as conn:
            row = conn.execute(sa.select(payments).where(payments.c.id == payment_id)).first()
        if row is None and not missing_ok:
            raise NotFound(f"payment {payment_id} not found")
        return row

    def _invoice_plan(self, invoice_id: str | None) -> str | None:
        if invoice_id is None:
            return None
        with self.db.read() as conn:
            return conn.execute(sa.select(invoices.c.plan_id).where(invoices.c.id == invoice_id)).scalar()

    def _invoice(
        self,
        w: Work,
        user_id: str,
        sub_id: str,
        plan: Any,
        start: dt.datetime,
        end: dt.datetime,
        description: str,
        lines: list[tuple[str, int]],
    ) -> str:
        amount = money.check_amount(sum(a for _, a in lines))
        invoice_id = new_id()
        values = {
            "id": invoice_id,
            "user_id": user_id,
            "subscription_id": sub_id,
            "amount_minor": amount,
            "currency": plan.currency,
            "period_start": start,
            "period_end": end,
            "status": "open",
            "created_at": w.now,
            "plan_id": plan.id,
            "description": description[:200],
            "lines": json.dumps([{"description": d, "amount_minor": a} for d, a in lines]),
        }
        prefix = f"TA-{w.now.year}-"
        for attempt in range(5):
            last = w.conn.execute(
                sa.select(invoices.c.number)
                .where(invoices.c.number.like(prefix + "%"))
                .order_by(sa.func.length(invoices.c.number).desc(), invoices.c.number.desc())
                .limit(1)
            ).scalar()
            n = int(last[len(prefix) :]) + 1 if last else 1
            try:
                with w.conn.begin_nested():  # another process took this number: take the next
                    w.conn.execute(sa.insert(invoices).values(**values, number=f"{prefix}{n:06d}"))
                return invoice_id
            except sa.exc.IntegrityError:
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    @staticmethod
    def _mark_paid(w: Work, invoice_id: str, payment_id: str | None) -> None:
        w.conn.execute(
            sa.update(invoices)
            .where(invoices.c.id == invoice_id, invoices.c.status == "open")
            .values(status="paid", paid_at=w.now, payment_id=payment_id)
        )

    @staticmethod
    def _mark_void(w: Work, invoice_id: str) -> None:
        w.conn.execute(
            sa.update(invoices)
            .where(invoices.c.id == invoice_id, invoices.c.status == "open")
            .values(status="void")
        )

    def invoices(self, user_id: str, *, limit: int = 20, offset: int = 0) -> dict[str, Any]:
        """The user's invoices, newest first, as a Spotify paging object."""
        check_window(limit, offset)
        with self.db.read() as conn:
            total = conn.execute(
                sa.select(sa.func.count()).select_from(invoices).where(invoices.c.user_id == user_id)
            ).scalar_one()
            rows = conn.execute(
                sa.select(invoices)
                .where(invoices.c.user_id == user_id)
                .order_by(invoices.c.created_at.desc(), invoices.c.number.desc())
                .limit(limit)
                .offset(offset)
            ).all()
            items = self._invoice_objs(conn, rows)
        return page(f"{self.base}/v1/me/invoices", items, limit=limit, offset=offset, total=total)

    def invoice(self, user_id: str, invoice_id: str) -> dict[str, Any]:
        with self.db.read() as conn:
            row = (
                conn.execute(sa.select(invoices).where(invoices.c.id == invoice_id)).first()
                if is_valid_id(invoice_id)
                else None
            )
            # Another user's invoice answers exactly like a missing one.
            if row is None or row.user_id != user_id:
                raise NotFound(f"invoice {invoice_id[:40]} not found")
            return self._invoice_objs(conn, [row])[0]

    def _invoice_objs(self, conn: sa.Connection, rows: Sequence[Any]) -> list[dict[str, Any]]:
        ids = [r.id for r in rows]
        pays: dict[str, list[dict[str, Any]]] = {}
        if ids:
            for p in conn.execute(
                sa.select(payments).where(payments.c.invoice_id.in_(ids)).order_by(payments.c.created_at)
            ):
                pays.setdefault(p.invoice_id, []).append(
                    {
                        "id": p.id,
                        "status": p.status,
                        "amount_minor": p.amount_minor,
                        "currency": p.currency,
                        "failure_reason": p.failure_reason,
                        "created_at": iso(p.created_at),
                    }
                )
        names = {p.id: p.name for p in conn.execute(sa.select(plans.c.id, plans.c.name))}
        return [
            {
                "id": r.id,
                "number": r.number,
                "href": f"{self.base}/v1/me/invoices/{r.id}",
                "status": r.status,
                "amount_minor": r.amount_minor,
                "currency": r.currency,
                "amount": money.display(r.amount_minor, r.currency),
                "period_start": iso(r.period_start),
                "period_end": iso(r.period_end),
                "plan": {"id": r.plan_id, "name": names.get(r.plan_id)} if r.plan_id else None,
                "description": r.description,
                "lines": [
                    line | {"amount": money.display(line["amount_minor"], r.currency)}
                    for line in json.loads(r.lines or "[]")
                ],
                "created_at": iso(r.created_at),
                "paid_at": iso(r.paid_at),
                "payments": pays.get(r.id, []),
            }
            for r in rows
        ]

    # Account deletion ---------------------------------------------------------------------------
    def before_account_deleted(self, conn: sa.Connection, user_id: str) -> Callable[[], None]:
        """Privacy's hook, in its deletion transaction: a manager's subscriptions end now and
        their members go back to free (the cascade then removes the subscription); a member's
        row simply goes with the cascade. Returns what to do once that transaction commits."""
        w = Work(conn, self.clock.now(), self.entitlements)
        managed = conn.execute(
            sa.select(subscriptions).where(
                subscriptions.c.user_id == user_id, subscriptions.c.status.in_(HELD)
            )
        ).all()
        for sub in managed:
            others = [m for m in self.member_ids(conn, sub.id) if m != user_id]
            conn.execute(
                sa.update(subscriptions)
                .where(subscriptions.c.id == sub.id)
                .values(status="canceled", ended_at=w.now, next_retry_at=None, updated_at=w.now)
            )
            conn.execute(
                sa.delete(subscription_members).where(
                    subscription_members.c.subscription_id == sub.id,
                    subscription_members.c.user_id != user_id,
                )
            )
            w.sync(others, "manager_deleted_account", "the plan's manager deleted their account")
        w.touched.add(user_id)
        return lambda: self.after_commit(w)


def _renew_key(sub_id: str) -> str:
    return f"{RENEW_JOB}:{sub_id}"


def _next_period_end(anchor: dt.datetime, start: dt.datetime) -> dt.datetime:
    """The end of the monthly period starting at `start`, counted from the subscription's
    `anchor` (its start) so that the day of the month does not drift (see money.py)."""
    end = money.add_months(anchor, money.months_between(anchor, start) + 1)
    return end if end > start else money.add_months(start, 1)
