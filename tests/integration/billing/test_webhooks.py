"""The gateway's signed webhooks: forged, tampered and replayed deliveries are refused; duplicates
and stale news change nothing; and a payment left pending by a crash between charging and
recording is completed by the webhook, exactly once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from tests.integration.billing.conftest import World, utc
from tonearm.domains.billing.tables import payments, subscriptions, webhook_events
from tonearm.ports.payments import Card, Charge, PaymentGateway, WebhookEvent
from tonearm.workers.tables import jobs

PATH = "/v1/billing/webhooks/sandbox"


def deliver(world: World, body: bytes, headers: Mapping[str, str]) -> Any:
    return world.client.post(PATH, content=body, headers=dict(headers))


def event(world: World, type_: str, charge: dict[str, Any], *, event_id: str) -> tuple[bytes, dict[str, str]]:
    """A webhook as the gateway would sign it now."""
    body = orjson.dumps(
        {
            "id": event_id,
            "type": type_,
            "created": int(world.clock.now().timestamp()),
            "data": {"charge": charge},
        }
    )
    return body, world.sandbox.sign(body, int(world.clock.now().timestamp()))


def charge_of(world: World, status: str) -> dict[str, Any]:
    """The sandbox's one charge, as a webhook's `data.charge`, with `status`."""
    [c] = world.charges()
    return {
        "id": c.id,
        "status": status,
        "amount_minor": c.amount_minor,
        "currency": c.currency,
        "idempotency_key": c.idempotency_key,
        "failure_code": None,
        "failure_message": None,
        "retryable": False,
    }


def test_forged_tampered_replayed_and_misaddressed_webhooks_are_refused(world: World) -> None:
    ada = world.listener("Ada")
    assert world.subscribe(ada).status_code == 201
    [queued] = world.queued_webhooks()
    body, headers = queued["body"].encode(), queued["headers"]

    forged = {"Tonearm-Signature": f"t={int(world.clock.now().timestamp())},v1={'0' * 64}"}
    r = deliver(world, body, forged)
    assert (
        r.status_code == 400 and r.json()["error"]["message"] == "webhook signature does not match the body"
    )
    tampered = body.replace(b'"amount_minor":1199', b'"amount_minor":1')
    assert tampered != body
    assert deliver(world, tampered, headers).status_code == 400
    assert deliver(world, body, {}).status_code == 400  # unsigned

    old = world.sandbox.sign(body, int(world.clock.now().timestamp()) - 3600)
    r = deliver(world, body, old)
    assert r.status_code == 400 and "replay" in r.json()["error"]["message"]

    r = world.client.post("/v1/billing/webhooks/stripe", content=body, headers=headers)
    assert r.status_code == 404
    r = world.client.post(PATH, content=b"x" * (65 * 1024), headers=headers)
    assert r.status_code == 413

    # The genuine one is accepted (the payment was already recorded: nothing new), once.
    assert deliver(world, body, headers).json() == {"status": "ignored"}
    assert deliver(world, body, headers).json() == {"status": "duplicate"}
    world.drain()  # the queued delivery of the same event is a duplicate too
    with world.c.db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(webhook_events)).scalar_one() == 1
    assert [p.status for p in world.payments(ada)] == ["succeeded"]


def test_a_refund_ends_premium_and_late_or_contrary_news_never_moves_a_payment_back(world: World) -> None:
    ada = world.listener("Ada")
    assert world.subscribe(ada).status_code == 201
    world.drain()
    charge = charge_of(world, "succeeded")

    # An operator refunds in the gateway's dashboard; its webhook arrives before a late copy of
    # the success.
    world.clock.advance(1)  # (decisions are listed by time)
    world.sandbox.refund(charge["id"], idempotency_key="dashboard-refund-1")
    [refund] = world.queued_webhooks()
    assert deliver(world, refund["body"].encode(), refund["headers"]).json() == {"status": "applied"}
    assert [p.status for p in world.payments(ada)] == ["refunded"]
    assert world.product(ada) == "free"
    assert world.decisions(ada)[-1] == (False, "refunded")
    with world.c.db.read() as conn:
        assert conn.execute(sa.select(subscriptions.c.status)).scalar_one() == "canceled"

    late = event(world, "charge.succeeded", charge, event_id="evt_late_success")
    assert deliver(world, *late).json() == {"status": "ignored"}
    contrary = event(world, "charge.failed", charge_of(world, "failed"), event_id="evt_f")
    assert deliver(world, *contrary).json() == {"status": "ignored"}
    assert [p.status for p in world.payments(ada)] == ["refunded"]
    assert world.product(ada) == "free"
    world.drain()
    assert world.product(ada) == "free"


def test_a_failure_reported_after_a_success_is_ignored(world: World) -> None:
    ada = world.listener("Ada")
    assert world.subscribe(ada).status_code == 201
    failed = charge_of(world, "failed") | {
        "failure_code": "card_declined",
        "failure_message": "Your card was declined.",
    }
    assert deliver(world, *event(world, "charge.failed", failed, event_id="evt_contrary")).json() == {
        "status": "ignored"
    }
    assert [p.status for p in world.payments(ada)] == ["succeeded"]
    assert world.product(ada) == "premium"


def test_an_event_for_a_charge_we_do_not_know_is_stored_and_ignored(world: World) -> None:
    stranger = {
        "id": "ch_unknown",
        "status": "succeeded",
        "amount_minor": 500,
        "currency": "USD",
        "idempotency_key": "not-ours",
        "failure_code": None,
        "failure_message": None,
        "retryable": False,
    }
    assert deliver(world, *event(world, "charge.succeeded", stranger, event_id="evt_x")).json() == {
        "status": "ignored"
    }
    with world.c.db.read() as conn:
        assert conn.execute(sa.select(webhook_events.c.event_id)).scalars().all() == ["evt_x"]
        assert conn.execute(sa.select(sa.func.count()).select_from(payments)).scalar_one() == 0


class Crash(Exception):
    """The process died here."""


class CrashAfterCharging:
    """The real sandbox gateway, but the caller dies right after its charge went through (before
    it could record the outcome): what a power cut or OOM kill at the worst moment does."""

    def __init__(self, inner: PaymentGateway) -> None:
        self.inner = inner
        self.name = inner.name

    def tokenize_card(self, number: str, exp_month: int, exp_year: int, cvc: str) -> Card:
        return self.inner.tokenize_card(number, exp_month, exp_year, cvc)

    def card(self, token: str) -> Card:
        return self.inner.card(token)

    def charge(
        self, token: str, amount_minor: int, currency: str, *, idempotency_key: str, description: str
    ) -> Charge:
        self.inner.charge(
            token, amount_minor, currency, idempotency_key=idempotency_key, description=description
        )
        raise Crash

    def refund(self, charge_id: str, *, idempotency_key: str) -> Charge:
        return self.inner.refund(charge_id, idempotency_key=idempotency_key)

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        return self.inner.parse_webhook(body, headers)


def test_a_crash_between_charging_and_recording_is_completed_by_the_webhook_once(world: World) -> None:
    ada = world.listener("Ada")
    token = world.card(ada)
    billing = world.c.billing
    real = billing.gateway
    billing.gateway = CrashAfterCharging(real)
    with pytest.raises(Crash):
        billing.subscribe(ada.user_id, "premium_individual", token, idempotency_key="checkout-7")
    billing.gateway = real
    [p] = world.payments(ada)
    assert p.status == "pending"  # committed before the gateway was called
    assert world.product(ada) == "free"
    assert [c.status for c in world.charges()] == ["succeeded"]  # the money did move

    world.drain()  # the gateway's webhook arrives
    assert world.product(ada) == "premium"
    sub = world.subscription(ada)
    assert sub["status"] == "active"
    [inv] = world.invoices(ada)
    assert inv["status"] == "paid"

    # The client retries its request: the same outcome, no second charge, no second grant.
    r = world.subscribe(ada, token=token, key="checkout-7")
    assert r.status_code == 201 and r.json()["id"] == sub["id"]
    world.c.billing.run_due()
    world.drain()
    assert len(world.charges()) == 1 and len(world.payments(ada)) == 1
    assert world.decisions(ada) == [(True, "subscribed")]


def test_a_crash_in_a_renewal_is_repaired_by_rerunning_it_or_by_the_webhook(world: World) -> None:
    ada = world.listener("Ada")
    assert world.subscribe(ada).status_code == 201
    world.drain()
    billing = world.c.billing
    sub_id = world.subscription(ada)["id"]
    world.at(utc(2026, 2, 28, 12))

    real = billing.gateway
    billing.gateway = CrashAfterCharging(real)
    with pytest.raises(Crash):
        billing.renew(sub_id)
    billing.gateway = real
    assert [p.status for p in world.payments(ada)] == ["succeeded", "pending"]
    billing.renew(sub_id)  # the job is retried: the same key, the gateway's same answer
    billing.renew(sub_id)
    assert [p.status for p in world.payments(ada)] == ["succeeded", "succeeded"]
    world.drain()  # and the webhooks (one per real charge) change nothing more
    assert len(world.charges()) == 2
    sub = world.subscription(ada)
    assert sub["current_period_end"] == "2026-03-31T12:00:00Z"
    assert [i["status"] for i in world.invoices(ada)] == ["paid", "paid"]


def test_webhook_deliveries_run_as_jobs_signed_when_sent(world: World) -> None:
    ada = world.listener("Ada")
    assert world.subscribe(ada).status_code == 201
    [queued] = world.queued_webhooks()
    world.clock.advance(86400)  # the workers were busy for a day: the delivery is signed as it is sent
    assert world.drain() == 1
    with world.c.db.read() as conn:
        row = conn.execute(sa.select(jobs.c.status).where(jobs.c.kind == "sandbox.webhook")).one()
    assert row.status == "done"
    assert [p.status for p in world.payments(ada)] == ["succeeded"]  # recorded synchronously anyway
    # ... while a copy of an earlier delivery, replayed a day later, is refused.
    r = deliver(world, queued["body"].encode(), queued["headers"])
    assert r.status_code == 400 and "replay" in r.json()["error"]["message"]
