"""A subscription's life with a clock moved by hand: subscribe, renew, fail and retry in the grace
period, lapse, subscribe again; upgrades prorated to the cent, downgrades at renewal, cancel and
resume. What the sandbox gateway really charged is checked against our payments every time."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.integration.billing.conftest import DECLINED, FLAKY, MASTERCARD, NO_FUNDS, VISA, World, utc
from tonearm.domains.billing.tables import subscriptions
from tonearm.kernel.errors import Conflict


def test_plans_are_listed_with_prices_and_features(world: World) -> None:
    r = world.client.get("/v1/plans")
    assert r.status_code == 200
    plans = {p["id"]: p for p in r.json()["plans"]}
    assert list(plans) == ["free", "premium_individual", "premium_duo", "premium_family"]
    assert plans["premium_individual"]["price"] == {
        "amount_minor": 1199,
        "currency": "USD",
        "display": "$11.99",
    }
    assert plans["premium_duo"]["max_members"] == 2 and plans["premium_family"]["max_members"] == 6
    assert plans["free"]["features"] == []
    assert {f["id"] for f in plans["premium_family"]["features"]} == {
        "ad_free",
        "unlimited_skips",
        "high_quality",
        "offline",
        "personalised",
    }
    assert all(f["name"] and f["description"] for f in plans["premium_duo"]["features"])


def test_the_whole_life_of_a_subscription(world: World) -> None:
    ada = world.listener("Ada")
    assert world.product(ada) == "free"
    assert world.get(ada, "/v1/me/subscription").status_code == 404

    # Subscribe: the first month is charged now.
    token = world.card(ada)
    r = world.subscribe(ada, token=token)
    assert r.status_code == 201, r.text
    sub = r.json()
    assert sub["status"] == "active" and sub["role"] == "manager"
    assert sub["plan"]["id"] == "premium_individual"
    assert (sub["current_period_start"], sub["current_period_end"]) == (
        "2026-01-31T12:00:00Z",
        "2026-02-28T12:00:00Z",
    )
    assert sub["card"] == {"brand": "visa", "last4": "4242"}
    assert [m["id"] for m in sub["members"]] == [ada.user_id]
    assert world.product(ada) == "premium"
    [inv] = world.invoices(ada)
    assert (inv["status"], inv["amount_minor"], inv["amount"], inv["number"]) == (
        "paid",
        1199,
        "$11.99",
        "TA-2026-000001",
    )
    world.drain()  # the gateway's webhook for the same charge changes nothing
    assert [p.status for p in world.payments(ada)] == ["succeeded"]

    # A month later: renewed, for the next calendar month counted from the 31st.
    world.at(utc(2026, 2, 28, 12))
    world.sweep()
    sub = world.subscription(ada)
    assert (sub["current_period_start"], sub["current_period_end"]) == (
        "2026-02-28T12:00:00Z",
        "2026-03-31T12:00:00Z",
    )
    assert [i["status"] for i in world.invoices(ada)] == ["paid", "paid"]
    assert len(world.charges()) == 2

    # The card starts declining: past due, premium kept through the grace period.
    world.sandbox.set_card_behaviour(token, "insufficient_funds")
    world.at(utc(2026, 3, 31, 12))
    world.sweep()
    sub = world.subscription(ada)
    assert sub["status"] == "past_due"
    assert sub["grace_until"] == "2026-04-07T12:00:00Z" and sub["next_retry_at"] == "2026-04-01T12:00:00Z"
    assert sub["current_period_end"] == "2026-03-31T12:00:00Z"  # the unpaid period has not started
    assert world.product(ada) == "premium"
    assert (True, "renewal_failed_grace") in world.decisions(ada)
    unpaid = world.invoices(ada)[0]
    assert unpaid["status"] == "open"
    assert [p["failure_reason"] for p in unpaid["payments"]] == [
        "Your card was declined (insufficient funds)."
    ]
    world.sweep()  # nothing is due again before the retry date: no second charge
    assert len(world.charges()) == 3

    world.at(utc(2026, 4, 1, 12))  # first retry fails too
    world.sweep()
    assert world.subscription(ada)["next_retry_at"] == "2026-04-03T12:00:00Z"
    assert len(world.charges()) == 4

    world.sandbox.set_card_behaviour(token, "succeed")
    world.at(utc(2026, 4, 3, 12))  # second retry succeeds: the period runs from when it was due
    world.sweep()
    sub = world.subscription(ada)
    assert sub["status"] == "active" and sub["grace_until"] is None
    assert (sub["current_period_start"], sub["current_period_end"]) == (
        "2026-03-31T12:00:00Z",
        "2026-04-30T12:00:00Z",
    )
    paid = world.invoices(ada)[0]
    assert paid["status"] == "paid" and [p["status"] for p in paid["payments"]] == [
        "failed",
        "failed",
        "succeeded",
    ]
    world.sweep()
    charges = world.charges()
    assert [c.status for c in charges] == ["succeeded", "succeeded", "failed", "failed", "succeeded"]
    assert sorted(p.idempotency_key for p in world.payments(ada)) == sorted(
        c.idempotency_key for c in charges
    )
    assert sum(c.amount_minor for c in charges if c.status == "succeeded") == 3 * 1199

    # It fails again and never recovers: premium until the grace period ends, then free.
    world.sandbox.set_card_behaviour(token, "decline")
    for when in (utc(2026, 4, 30, 12), utc(2026, 5, 1, 12), utc(2026, 5, 3, 12), utc(2026, 5, 5, 12)):
        world.at(when)  # the renewal, then its retries 1, 3 and 5 days later
        world.sweep()
        assert world.subscription(ada)["status"] == "past_due"
        assert world.product(ada) == "premium"
    assert len(world.charges()) == 9
    world.at(utc(2026, 5, 7, 12))
    world.sweep()
    assert world.product(ada) == "free"
    assert world.get(ada, "/v1/me/subscription").status_code == 404
    assert world.invoices(ada)[0]["status"] == "void"
    assert world.decisions(ada)[-1] == (False, "lapsed")
    assert len(world.charges()) == 9
    world.at(utc(2026, 6, 1))
    world.sweep()
    assert len(world.charges()) == 9  # an ended subscription is never charged again

    # Back again, with another card.
    r = world.subscribe(ada, token=world.card(ada, MASTERCARD))
    assert r.status_code == 201, r.text
    assert r.json()["card"] == {"brand": "mastercard", "last4": "4444"}
    assert r.json()["current_period_end"] == "2026-07-01T00:00:00Z"
    assert world.product(ada) == "premium"


def test_upgrading_mid_period_charges_the_exact_prorated_difference(world: World) -> None:
    ada = world.listener("Ada")
    assert world.subscribe(ada).status_code == 201
    world.at(utc(2026, 2, 14, 12))  # half of the 28-day period is left
    r = world.patch(ada, "/v1/me/subscription", json={"plan_id": "premium_family"})
    assert r.status_code == 200, r.text
    sub = r.json()
    assert sub["plan"]["id"] == "premium_family" and sub["plan"]["max_members"] == 6
    assert sub["current_period_end"] == "2026-02-28T12:00:00Z"  # the period does not move
    upgrade = world.invoices(ada)[0]
    # 11.99 for 28 days, 14 used: 6.00 used (599.5 rounds half up), 5.99 back; 19.99 for the
    # 14 left: 19.99 - 10.00 = 9.99. Used + credit = 11.99 exactly; the charge is 4.00.
    assert [(line["amount_minor"]) for line in upgrade["lines"]] == [-599, 999]
    assert (upgrade["amount_minor"], upgrade["status"], upgrade["plan"]["id"]) == (
        400,
        "paid",
        "premium_family",
    )
    assert [c.amount_minor for c in world.charges()] == [1199, 400]

    # The next renewal charges the new plan's full price.
    world.at(utc(2026, 2, 28, 12))
    world.sweep()
    assert world.invoices(ada)[0]["amount_minor"] == 1999
    assert [c.amount_minor for c in world.charges()] == [1199, 400, 1999]


def test_a_declined_upgrade_changes_nothing(world: World) -> None:
    ada = world.listener("Ada")
    token = world.card(ada)
    assert world.subscribe(ada, token=token).status_code == 201
    world.sandbox.set_card_behaviour(token, "decline")
    world.at(utc(2026, 2, 10))
    r = world.patch(ada, "/v1/me/subscription", json={"plan_id": "premium_duo"})
    assert r.status_code == 402 and r.json()["error"]["message"] == "Your card was declined."
    assert world.subscription(ada)["plan"]["id"] == "premium_individual"
    assert [i["status"] for i in world.invoices(ada)] == ["void", "paid"]


def test_downgrading_waits_for_the_renewal_and_needs_room(world: World) -> None:
    ada, bo, cy = world.listener("Ada"), world.listener("Bo"), world.listener("Cy")
    assert world.subscribe(ada, plan="premium_family").status_code == 201
    for who in (bo, cy):
        code = world.invite(ada)["code"]
        assert world.post(who, f"/v1/invitations/{code}/accept").status_code == 200
    r = world.patch(ada, "/v1/me/subscription", json={"plan_id": "premium_duo"})
    assert r.status_code == 409
    assert r.json()["error"]["message"] == (
        "Premium Duo has room for 2 (you included) and your plan has 3: remove 1 member first"
    )
    assert world.delete(ada, f"/v1/me/subscription/members/{cy.user_id}").status_code == 204
    assert world.product(cy) == "free"

    r = world.patch(ada, "/v1/me/subscription", json={"plan_id": "premium_duo"})
    assert r.status_code == 200, r.text
    sub = r.json()
    assert sub["plan"]["id"] == "premium_family" and sub["pending_plan"]["id"] == "premium_duo"
    assert len(world.charges()) == 1  # nothing charged now
    r = world.post(ada, "/v1/me/subscription/invitations", json={})
    assert r.status_code == 409  # the Duo it becomes has no room left

    world.at(utc(2026, 2, 28, 12))
    world.sweep()
    sub = world.subscription(ada)
    assert sub["plan"]["id"] == "premium_duo" and sub["pending_plan"] is None
    assert world.invoices(ada)[0]["amount_minor"] == 1699
    assert world.product(bo) == "premium"


def test_changing_back_to_the_current_plan_drops_a_scheduled_downgrade(world: World) -> None:
    ada = world.listener("Ada")
    assert world.subscribe(ada, plan="premium_duo").status_code == 201
    assert world.patch(ada, "/v1/me/subscription", json={"plan_id": "premium_individual"}).json()[
        "pending_plan"
    ]
    r = world.patch(ada, "/v1/me/subscription", json={"plan_id": "premium_duo"})
    assert r.status_code == 200 and r.json()["pending_plan"] is None


def test_cancel_keeps_premium_until_the_period_ends_and_resume_undoes_it(world: World) -> None:
    ada = world.listener("Ada")
    assert world.subscribe(ada).status_code == 201
    r = world.delete(ada, "/v1/me/subscription")
    assert r.status_code == 200 and r.json()["cancel_at_period_end"] is True
    assert world.product(ada) == "premium"
    r = world.patch(ada, "/v1/me/subscription", json={"cancel_at_period_end": False})
    assert r.status_code == 200 and r.json()["cancel_at_period_end"] is False
    assert world.patch(ada, "/v1/me/subscription", json={"cancel_at_period_end": True}).status_code == 200

    world.at(utc(2026, 2, 28, 11, 59))
    world.sweep()
    assert world.product(ada) == "premium"
    world.at(utc(2026, 2, 28, 12))
    world.sweep()
    assert world.product(ada) == "free"
    assert world.get(ada, "/v1/me/subscription").status_code == 404
    assert len(world.charges()) == 1
    assert world.decisions(ada) == [(True, "subscribed"), (False, "canceled_period_ended")]
    with world.c.db.read() as conn:
        assert conn.execute(subscriptions.select()).one().status == "expired"


def test_canceling_while_past_due_ends_it_now(world: World) -> None:
    ada = world.listener("Ada")
    token = world.card(ada)
    assert world.subscribe(ada, token=token).status_code == 201
    world.sandbox.set_card_behaviour(token, "decline")
    world.at(utc(2026, 2, 28, 12))
    world.sweep()
    assert world.subscription(ada)["status"] == "past_due"
    r = world.delete(ada, "/v1/me/subscription")
    assert r.status_code == 200 and r.json()["status"] == "expired"
    assert world.product(ada) == "free"
    assert world.invoices(ada)[0]["status"] == "void"


def test_a_new_card_retries_the_failed_renewal_at_once(world: World) -> None:
    ada = world.listener("Ada")
    token = world.card(ada)
    assert world.subscribe(ada, token=token).status_code == 201
    world.sandbox.set_card_behaviour(token, "decline")
    world.at(utc(2026, 2, 28, 12))
    world.sweep()
    r = world.patch(ada, "/v1/me/subscription", json={"payment_token": world.card(ada, MASTERCARD)})
    assert r.status_code == 200 and r.json()["card"]["last4"] == "4444"
    world.drain()
    sub = world.subscription(ada)
    assert sub["status"] == "active" and sub["current_period_end"] == "2026-03-31T12:00:00Z"
    assert [c.status for c in world.charges()] == ["succeeded", "failed", "succeeded"]


@pytest.mark.parametrize(
    ("number", "message"),
    [(DECLINED, "Your card was declined."), (NO_FUNDS, "Your card was declined (insufficient funds).")],
)
def test_a_declined_card_is_402_and_grants_nothing(world: World, number: str, message: str) -> None:
    ada = world.listener("Ada")
    r = world.subscribe(ada, token=world.card(ada, number))
    assert r.status_code == 402
    assert r.json() == {"error": {"status": 402, "message": message}}
    assert world.product(ada) == "free"
    assert world.get(ada, "/v1/me/subscription").status_code == 404
    [inv] = world.invoices(ada)
    assert inv["status"] == "void" and [p["status"] for p in inv["payments"]] == ["failed"]
    with world.c.db.read() as conn:
        assert conn.execute(subscriptions.select()).all() == []
    world.drain()  # the failure's webhook changes nothing
    assert world.product(ada) == "free"
    # A good card afterwards works.
    assert world.subscribe(ada, token=world.card(ada, VISA)).status_code == 201
    assert world.decisions(ada) == [(True, "subscribed")]


def test_the_same_idempotency_key_never_charges_twice(world: World) -> None:
    ada = world.listener("Ada")
    token = world.card(ada)
    first = world.subscribe(ada, token=token, key="order-1")
    again = world.subscribe(ada, token=token, key="order-1")
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert len(world.charges()) == 1 and len(world.payments(ada)) == 1
    other = world.subscribe(ada, plan="premium_duo", token=token, key="order-1")
    assert other.status_code == 409
    assert world.subscribe(ada, token=token, key="order-2").status_code == 409  # already subscribed

    bo = world.listener("Bo")
    bad = world.card(bo, DECLINED)
    assert world.subscribe(bo, token=bad, key="k").status_code == 402
    assert world.subscribe(bo, token=bad, key="k").status_code == 402
    assert len(world.payments(bo)) == 1 and len(world.charges()) == 2
    assert world.subscribe(bo, token=bad, key="x" * 65).status_code == 400
    assert world.subscribe(bo, token=bad, key="has space").status_code == 400


def test_a_processing_error_can_be_retried_with_a_new_key(world: World) -> None:
    ada = world.listener("Ada")
    token = world.card(ada, FLAKY)
    r = world.subscribe(ada, token=token, key="try-1")
    assert r.status_code == 402 and "try again" in r.json()["error"]["message"]
    assert world.subscribe(ada, token=token, key="try-1").status_code == 402  # the same answer
    assert world.subscribe(ada, token=token, key="try-2").status_code == 201
    assert [c.status for c in world.charges()] == ["failed", "succeeded"]


def test_concurrent_renewals_and_sweeps_charge_once(world: World) -> None:
    """Several processes' sweeps and workers at once (threads here, with their own connections)."""
    ada = world.listener("Ada")
    assert world.subscribe(ada).status_code == 201
    sub_id = world.subscription(ada)["id"]
    world.at(utc(2026, 2, 28, 12))
    billing = world.c.billing
    tasks = [lambda: billing.renew(sub_id), billing.run_due] * 4
    with ThreadPoolExecutor(len(tasks)) as pool:
        for f in [pool.submit(t) for t in tasks]:
            f.result()
    with ThreadPoolExecutor(3) as pool:
        for f in [pool.submit(world.drain) for _ in range(3)]:
            f.result()
    assert [c.amount_minor for c in world.charges()] == [1199, 1199]
    assert [p.status for p in world.payments(ada)] == ["succeeded", "succeeded"]
    assert world.subscription(ada)["current_period_end"] == "2026-03-31T12:00:00Z"


def test_concurrent_subscribe_requests_make_one_subscription(world: World) -> None:
    ada = world.listener("Ada")
    token = world.card(ada)
    billing = world.c.billing

    def attempt(key: str) -> str:
        try:
            billing.subscribe(ada.user_id, "premium_individual", token, idempotency_key=key)
        except Conflict:
            return "conflict"
        return "subscribed"

    keys = ["same"] * 4 + ["other-1", "other-2"]
    with ThreadPoolExecutor(len(keys)) as pool:
        outcomes = list(pool.map(attempt, keys))
    assert len({key for key, outcome in zip(keys, outcomes, strict=True) if outcome == "subscribed"}) == 1
    assert len(world.charges()) == 1 and len(world.payments(ada)) == 1
    with world.c.db.read() as conn:
        assert len(conn.execute(subscriptions.select()).all()) == 1
    assert world.product(ada) == "premium"
