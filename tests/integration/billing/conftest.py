"""Billing through the API with the sandbox gateway, on SQLite and PostgreSQL, with a clock the
tests move by hand (a month of renewals runs in milliseconds).

The app's clock is frozen (at noon on 31 January 2026, to see month ends clamp), but PyJWT checks
access tokens against the real time; so, like a client that refreshes its token, each request
carries a token minted now for the listener's (real, live) session.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.helpers import make_settings
from tonearm.adapters.payments.sandbox import SandboxGateway
from tonearm.bootstrap import Container, bootstrap
from tonearm.domains.billing.tables import payments, sandbox_charges
from tonearm.domains.entitlements.tables import entitlement_log
from tonearm.http.app import create_app
from tonearm.kernel.clock import FrozenClock
from tonearm.workers.tables import jobs

START = dt.datetime(2026, 1, 31, 12, tzinfo=dt.UTC)
PASSWORD = "correct horse"
VISA = "4242424242424242"
MASTERCARD = "5555555555554444"
DECLINED = "4000000000000002"
NO_FUNDS = "4000000000009995"
FLAKY = "4000000000000119"


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def container(tmp_path: Path, db_url: str, clock: FrozenClock) -> Iterator[Container]:
    c = bootstrap(make_settings(tmp_path, db_url, search_indexer=False), clock=clock)
    yield c
    c.close()


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container, start_workers=False)) as tc:
        yield tc


@dataclass
class Listener:
    c: Container
    user_id: str
    email: str
    claims: dict[str, Any]

    @property
    def headers(self) -> dict[str, str]:
        now = int(time.time())
        token = jwt.encode(
            self.claims | {"iat": now, "exp": now + 600}, self.c.settings.secret_key, algorithm="HS256"
        )
        return {"Authorization": f"Bearer {token}"}


class World:
    """The test's view of one server: listeners, cards, the clock and the worker."""

    def __init__(self, c: Container, client: TestClient, clock: FrozenClock) -> None:
        self.c = c
        self.client = client
        self.clock = clock
        assert isinstance(c.gateway, SandboxGateway)
        self.sandbox: SandboxGateway = c.gateway

    def listener(self, name: str) -> Listener:
        email = f"{name.lower()}@example.com"
        r = self.client.post(
            "/v1/users",
            json={"email": email, "password": PASSWORD, "display_name": name, "birth_date": "1990-05-01"},
        )
        assert r.status_code == 201, r.text
        t = self.client.post(
            "/api/token", data={"grant_type": "password", "username": email, "password": PASSWORD}
        )
        assert t.status_code == 200, t.text
        claims = jwt.decode(t.json()["access_token"], options={"verify_signature": False})
        return Listener(self.c, r.json()["id"], email, claims)

    # HTTP shortcuts --------------------------------------------------------------------------------
    def get(self, who: Listener, path: str, **kw: Any) -> Any:
        return self.client.get(path, headers=who.headers, **kw)

    def post(self, who: Listener, path: str, **kw: Any) -> Any:
        headers = who.headers | kw.pop("headers", {})
        return self.client.post(path, headers=headers, **kw)

    def patch(self, who: Listener, path: str, **kw: Any) -> Any:
        return self.client.patch(path, headers=who.headers, **kw)

    def delete(self, who: Listener, path: str, **kw: Any) -> Any:
        return self.client.request("DELETE", path, headers=who.headers, **kw)

    def card(self, who: Listener, number: str = VISA) -> str:
        r = self.post(
            who,
            "/v1/billing/sandbox/cards",
            json={"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"},
        )
        assert r.status_code == 201, r.text
        token: str = r.json()["token"]
        return token

    def subscribe(
        self,
        who: Listener,
        plan: str = "premium_individual",
        token: str | None = None,
        key: str | None = None,
    ) -> Any:
        headers = {"Idempotency-Key": key} if key else {}
        return self.post(
            who,
            "/v1/me/subscription",
            json={"plan_id": plan, "payment_token": token or self.card(who)},
            headers=headers,
        )

    def product(self, who: Listener) -> str:
        r = self.get(who, "/v1/me")
        assert r.status_code == 200, r.text
        product: str = r.json()["product"]
        return product

    def subscription(self, who: Listener) -> dict[str, Any]:
        r = self.get(who, "/v1/me/subscription")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def invoices(self, who: Listener) -> list[dict[str, Any]]:
        r = self.get(who, "/v1/me/invoices", params={"limit": 50})
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    def invite(self, manager: Listener, email: str | None = None) -> dict[str, Any]:
        r = self.post(manager, "/v1/me/subscription/invitations", json={"email": email} if email else {})
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    # Time and work ---------------------------------------------------------------------------------
    def at(self, when: dt.datetime) -> None:
        """Moves the clock forward to `when`, once what is queued now has run (webhooks are
        delivered within seconds; held back a month, they would be refused as replays)."""
        assert when >= self.clock.now()
        self.drain()
        self.clock.advance((when - self.clock.now()).total_seconds())

    def drain(self) -> int:
        """Runs every due job: webhook deliveries, renewals, refunds."""
        return self.c.worker().drain()

    def sweep(self) -> None:
        """What the scheduler does every billing_sweep_s, then the workers."""
        self.drain()  # deliver what is already queued before looking for what is due
        self.c.billing.run_due()
        self.drain()

    # What happened, read from the database ----------------------------------------------------------
    def charges(self) -> list[Any]:
        """The sandbox gateway's own books: every charge it really made."""
        with self.c.db.read() as conn:
            return list(conn.execute(sa.select(sandbox_charges).order_by(sandbox_charges.c.created_at)).all())

    def payments(self, who: Listener) -> list[Any]:
        with self.c.db.read() as conn:
            return list(
                conn.execute(
                    sa.select(payments)
                    .where(payments.c.user_id == who.user_id)
                    .order_by(payments.c.created_at)
                ).all()
            )

    def decisions(self, who: Listener, action: str = "product") -> list[tuple[bool, str]]:
        with self.c.db.read() as conn:
            rows = conn.execute(
                sa.select(entitlement_log.c.allowed, entitlement_log.c.reason)
                .where(entitlement_log.c.user_id == who.user_id, entitlement_log.c.action == action)
                .order_by(entitlement_log.c.at, entitlement_log.c.id)
            ).all()
        return [(bool(r.allowed), r.reason) for r in rows]

    def queued_webhooks(self) -> list[dict[str, Any]]:
        """Webhook deliveries waiting in the queue: the body, and headers signed as the delivery
        job would sign them now."""
        import json

        with self.c.db.read() as conn:
            rows = conn.execute(
                sa.select(jobs.c.payload)
                .where(jobs.c.kind == "sandbox.webhook", jobs.c.status == "queued")
                .order_by(jobs.c.id)
            ).scalars()
            bodies = [json.loads(p)["body"] for p in rows]
        now = int(self.clock.now().timestamp())
        return [{"body": b, "headers": self.sandbox.sign(b.encode(), now)} for b in bodies]


@pytest.fixture
def world(container: Container, client: TestClient, clock: FrozenClock) -> World:
    return World(container, client, clock)
