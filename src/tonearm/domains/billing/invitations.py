"""Duo and Family plans: the manager invites people by link or by e-mail, and they join.

An invitation is a random code in a link (`<public_url>/join/<code>`); only its sha256 is stored,
so the database cannot hand out working links. An invitation may be bound to one e-mail address:
then only the account with that address can accept it, and it shows up for that account in
`GET /v1/me/invitations` (there is no e-mail sending; the manager may also pass the link on).

Places: a plan's `max_members` counts the manager. Inviting is refused when members plus pending
invitations fill the plan (so every link handed out can be used); accepting is refused when the
plan is full, counting the cheaper plan too when a downgrade is scheduled. A user belongs to at
most one active subscription: someone already premium (their own plan or another family's)
cannot join until they leave it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from tonearm.domains.accounts.tables import users
from tonearm.domains.billing.tables import family_invitations, subscription_members, subscriptions
from tonearm.kernel.clock import iso
from tonearm.kernel.errors import BadRequest, Conflict, Forbidden, NotFound
from tonearm.kernel.ids import is_valid_id, new_id

if TYPE_CHECKING:
    from tonearm.domains.billing.service import BillingService, Work

MAX_CODE_LENGTH = 64


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _clean_email(email: str) -> str:
    email = email.strip().lower()
    local, at, domain = email.partition("@")
    if not at or not local or "." not in domain or len(email) > 254 or any(ch.isspace() for ch in email):
        raise BadRequest("email: not a valid e-mail address")
    return email


class Invitations:
    def __init__(self, billing: BillingService, *, invitation_days: int) -> None:
        self.billing = billing
        self.ttl = dt.timedelta(days=invitation_days)

    # The manager's side ---------------------------------------------------------------------------
    def create(self, manager_id: str, email: str | None = None) -> dict[str, Any]:
        """A new invitation to the manager's plan; the answer is the only time the link is shown."""
        sub_id = self.billing.managed_subscription(manager_id)
        bound = _clean_email(email) if email is not None else None
        code = secrets.token_urlsafe(24)
        with self.billing.work() as w:
            sub = self.billing.lock_subscription(w.conn, sub_id)
            if sub is None or sub.status not in ("active", "past_due"):
                raise Conflict("this subscription has ended")
            plan, limit = self._limit(w.conn, sub)
            if plan.max_members <= 1:
                raise Conflict(f"{plan.name} is for one person; change to Duo or Family to invite others")
            members = len(self.billing.member_ids(w.conn, sub_id))
            pending = self._pending(w.conn, sub_id, w.now)
            if members + len(pending) >= limit:
                raise Conflict(
                    f"all {limit} places on your {plan.name} are taken or invited; revoke an invitation "
                    "or remove a member first"
                )
            if bound is not None:
                mine = w.conn.execute(sa.select(users.c.email).where(users.c.id == manager_id)).scalar()
                if bound == mine:
                    raise BadRequest("email: that is your own address")
                if any(p.email == bound for p in pending):
                    raise Conflict(f"{bound} has a pending invitation already")
            invitation_id = new_id()
            w.conn.execute(
                sa.insert(family_invitations).values(
                    id=invitation_id,
                    subscription_id=sub_id,
                    code_hash=_hash(code),
                    email=bound,
                    created_at=w.now,
                    expires_at=w.now + self.ttl,
                )
            )
            row = w.conn.execute(
                sa.select(family_invitations).where(family_invitations.c.id == invitation_id)
            ).one()
        return self._obj(row) | {"code": code, "url": f"{self.billing.base}/join/{code}"}

    def pending(self, manager_id: str) -> dict[str, Any]:
        """The manager's invitations not yet accepted, revoked or expired."""
        sub_id = self.billing.managed_subscription(manager_id)
        with self.billing.db.read() as conn:
            rows = self._pending(conn, sub_id, self.billing.clock.now())
        return {"items": [self._obj(r) for r in rows]}

    def revoke(self, manager_id: str, invitation_id: str) -> None:
        sub_id = self.billing.managed_subscription(manager_id)
        with self.billing.work() as w:
            row = (
                w.conn.execute(
                    sa.select(family_invitations)
                    .where(family_invitations.c.id == invitation_id)
                    .with_for_update(key_share=True)
                ).first()
                if is_valid_id(invitation_id)
                else None
            )
            if row is None or row.subscription_id != sub_id:
                raise NotFound(f"invitation {invitation_id[:40]} not found")
            if row.accepted_at is not None:
                raise Conflict("this invitation was accepted already; remove the member instead")
            if row.revoked_at is None:
                w.conn.execute(
                    sa.update(family_invitations)
                    .where(family_invitations.c.id == invitation_id)
                    .values(revoked_at=w.now)
                )

    @staticmethod
    def _pending(conn: sa.Connection, sub_id: str, now: dt.datetime) -> list[Any]:
        return list(
            conn.execute(
                sa.select(family_invitations)
                .where(
                    family_invitations.c.subscription_id == sub_id,
                    family_invitations.c.accepted_at.is_(None),
                    family_invitations.c.revoked_at.is_(None),
                    family_invitations.c.expires_at > now,
                )
                .order_by(family_invitations.c.created_at)
            ).all()
        )

    def _limit(self, conn: sa.Connection, sub: Any) -> tuple[Any, int]:
        """The plan, and how many people it may hold (the cheaper plan's limit when one is
        scheduled to start at the next renewal)."""
        plan = self.billing.plan_row(conn, sub.plan_id)
        limit = plan.max_members
        if sub.pending_plan_id:
            limit = min(limit, self.billing.plan_row(conn, sub.pending_plan_id).max_members)
        return plan, int(limit)

    # The invitee's side ---------------------------------------------------------------------------
    def preview(self, code: str) -> dict[str, Any]:
        """What the link is for, before signing in to accept it (no e-mail address shown)."""
        with self.billing.db.read() as conn:
            row = self._by_code(conn, code)
            info = self._context(conn, row)
        return {
            "plan": info["plan"],
            "manager": info["manager"],
            "status": self._status(row, info["sub_status"]),
            "expires_at": iso(row.expires_at),
            "email_bound": row.email is not None,
        }

    def mine(self, user_id: str) -> dict[str, Any]:
        """Pending invitations addressed to the user's e-mail address."""
        now = self.billing.clock.now()
        with self.billing.db.read() as conn:
            email = conn.execute(sa.select(users.c.email).where(users.c.id == user_id)).scalar()
            rows = conn.execute(
                sa.select(family_invitations)
                .select_from(
                    family_invitations.join(
                        subscriptions, subscriptions.c.id == family_invitations.c.subscription_id
                    )
                )
                .where(
                    family_invitations.c.email == email,
                    family_invitations.c.accepted_at.is_(None),
                    family_invitations.c.revoked_at.is_(None),
                    family_invitations.c.expires_at > now,
                    subscriptions.c.status.in_(("active", "past_due")),
                )
                .order_by(family_invitations.c.created_at.desc())
            ).all()
            items = []
            for r in rows:
                info = self._context(conn, r)
                items.append(
                    {
                        "id": r.id,
                        "plan": info["plan"],
                        "manager": info["manager"],
                        "expires_at": iso(r.expires_at),
                        "accept": f"{self.billing.base}/v1/me/invitations/{r.id}/accept",
                    }
                )
        return {"items": items}

    def accept(self, user_id: str, code: str) -> dict[str, Any]:
        """Joins the plan the link is for; the user is premium at once."""
        with self.billing.db.read() as conn:
            invitation_id = self._by_code(conn, code).id
        return self._accept(user_id, invitation_id, by_link=True)

    def accept_mine(self, user_id: str, invitation_id: str) -> dict[str, Any]:
        """Accepts an invitation addressed to the user's e-mail address, by its id."""
        return self._accept(user_id, invitation_id, by_link=False)

    def _accept(self, user_id: str, invitation_id: str, *, by_link: bool) -> dict[str, Any]:
        with self.billing.work() as w:
            inv = (
                w.conn.execute(
                    sa.select(family_invitations).where(family_invitations.c.id == invitation_id)
                ).first()
                if is_valid_id(invitation_id)
                else None
            )
            email = w.conn.execute(sa.select(users.c.email).where(users.c.id == user_id)).scalar()
            if inv is None or (not by_link and inv.email != email):
                raise NotFound(f"invitation {invitation_id[:40]} not found")
            # Lock order: the subscription, then the user (as payments do).
            sub = self.billing.lock_subscription(w.conn, inv.subscription_id)
            self.billing.lock_user(w.conn, user_id)
            self._check(w, inv, sub, user_id, email)
            taken = w.conn.execute(
                sa.update(family_invitations)
                .where(
                    family_invitations.c.id == inv.id,
                    family_invitations.c.accepted_at.is_(None),
                    family_invitations.c.revoked_at.is_(None),
                )
                .values(accepted_at=w.now, accepted_by=user_id)
            )
            if not taken.rowcount:
                raise Conflict("this invitation has been used already")
            w.conn.execute(
                sa.insert(subscription_members).values(
                    subscription_id=sub.id, user_id=user_id, role="member", joined_at=w.now
                )
            )
            plan = self.billing.plan_row(w.conn, sub.plan_id)
            w.sync([user_id], "joined_family", f"joined {plan.name} by invitation")
            return self.billing.view(w.conn, sub.id, user_id)

    def _check(self, w: Work, inv: Any, sub: Any, user_id: str, email: str | None) -> None:
        """Refuses, in plain words, every reason this user may not accept this invitation now."""
        manager = w.conn.execute(sa.select(users.c.display_name).where(users.c.id == sub.user_id)).scalar()
        if inv.revoked_at is not None:
            raise Conflict(f"this invitation was revoked by {manager}")
        if inv.accepted_at is not None:
            raise Conflict("this invitation has been used already")
        if sub.status not in ("active", "past_due"):
            raise Conflict("the plan this invitation is for has ended")
        if inv.expires_at <= w.now:
            raise Conflict(f"this invitation expired on {iso(inv.expires_at)}; ask {manager} for a new one")
        if inv.email is not None and inv.email != email:
            raise Forbidden("this invitation is for another e-mail address")
        if sub.user_id == user_id:
            raise Conflict("you manage this plan already; share the link with the person you invited")
        held = self.billing.held(w.conn, user_id)
        if held is not None:
            what = "your own Premium subscription" if held.role == "manager" else "another Premium plan"
            raise Conflict(
                f"you already belong to {what}; cancel or leave it before joining {manager}'s plan"
            )
        plan, limit = self._limit(w.conn, sub)
        members = len(self.billing.member_ids(w.conn, sub.id))
        if members >= limit:
            raise Conflict(f"{manager}'s {plan.name} is full ({members} of {limit} places taken)")

    def _by_code(self, conn: sa.Connection, code: str) -> Any:
        row = (
            conn.execute(
                sa.select(family_invitations).where(family_invitations.c.code_hash == _hash(code))
            ).first()
            if 0 < len(code) <= MAX_CODE_LENGTH
            else None
        )
        if row is None:
            raise NotFound("invitation not found; check the link")
        return row

    def _context(self, conn: sa.Connection, inv: Any) -> dict[str, Any]:
        sub = conn.execute(sa.select(subscriptions).where(subscriptions.c.id == inv.subscription_id)).one()
        plan = self.billing.plan_row(conn, sub.plan_id)
        manager = conn.execute(sa.select(users.c.display_name).where(users.c.id == sub.user_id)).scalar()
        return {
            "plan": {"id": plan.id, "name": plan.name},
            "manager": {"display_name": manager},
            "sub_status": sub.status,
        }

    def _status(self, inv: Any, sub_status: str) -> str:
        if inv.accepted_at is not None:
            return "accepted"
        if inv.revoked_at is not None:
            return "revoked"
        if sub_status not in ("active", "past_due"):
            return "ended"
        if inv.expires_at <= self.billing.clock.now():
            return "expired"
        return "valid"

    def _obj(self, row: Any) -> dict[str, Any]:
        return {
            "id": row.id,
            "email": row.email,
            "created_at": iso(row.created_at),
            "expires_at": iso(row.expires_at),
        }
