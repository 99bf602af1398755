"""What billing refuses, and how it says so: bad cards and plans, amounts out of range, other
people's invoices; the sandbox card form's limits; and the invoice list's paging."""

from __future__ import annotations

import pytest

from tests.integration.billing.conftest import VISA, World, utc
from tonearm.domains.billing.tables import subscriptions
from tonearm.kernel.errors import BadRequest


def card_body(**kw: object) -> dict[str, object]:
    return {"number": VISA, "exp_month": 12, "exp_year": 2030, "cvc": "123"} | kw


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            card_body(number="4242424242424241"),
            "number: this card number is not valid (it fails the Luhn check); check for a typo",
        ),
        (
            card_body(number="4242-abc"),
            "number: a card number is 12 to 19 digits (spaces and dashes allowed)",
        ),
        (
            card_body(exp_month=1, exp_year=2025),
            "exp_year/exp_month: this card expired at the end of 01/2025",
        ),
        (card_body(cvc="12"), "cvc: must be 3 digits"),
        (card_body(exp_month=13), "exp_month: Input should be less than or equal to 12"),
        (card_body(exp_month="12"), "exp_month: Input should be a valid integer"),
        (card_body(pin="0000"), "pin: Extra inputs are not permitted"),
    ],
)
def test_bad_cards_are_refused_in_plain_words(world: World, body: dict[str, object], message: str) -> None:
    ada = world.listener("Ada")
    r = world.post(ada, "/v1/billing/sandbox/cards", json=body)
    assert r.status_code == 400
    assert r.json()["error"]["message"] == message
    assert "4242424242424241" not in r.text


def test_tokenizing_needs_a_sign_in_and_is_rate_limited(world: World) -> None:
    assert world.client.post("/v1/billing/sandbox/cards", json=card_body()).status_code == 401
    ada = world.listener("Ada")
    r = world.post(ada, "/v1/billing/sandbox/cards", json=card_body(number="5555 5555 5555 4444"))
    assert r.status_code == 201
    assert {k: v for k, v in r.json().items() if k != "token"} == {
        "brand": "mastercard",
        "last4": "4444",
        "exp_month": 12,
        "exp_year": 2030,
    }
    for _ in range(19):
        assert world.post(ada, "/v1/billing/sandbox/cards", json=card_body(cvc="1")).status_code == 400
    r = world.post(ada, "/v1/billing/sandbox/cards", json=card_body())
    assert r.status_code == 429 and "Retry-After" in r.headers
    bo = world.listener("Bo")  # per user
    assert world.post(bo, "/v1/billing/sandbox/cards", json=card_body()).status_code == 201
    world.clock.advance(3600)
    assert world.post(ada, "/v1/billing/sandbox/cards", json=card_body()).status_code == 201


@pytest.mark.parametrize(
    ("plan", "token", "message"),
    [
        ("premium_gold", None, "plan_id: there is no plan 'premium_gold' on offer; GET /v1/plans lists them"),
        ("free", None, "plan_id: Free needs no subscription; to go back to it, cancel your subscription"),
        ("premium_duo", "tok_nope", "payment_token: unknown card token; tokenize the card again"),
    ],
)
def test_bad_plans_and_tokens_are_400(world: World, plan: str, token: str | None, message: str) -> None:
    ada = world.listener("Ada")
    r = world.subscribe(ada, plan=plan, token=token)
    assert r.status_code == 400 and r.json()["error"]["message"] == message
    assert world.product(ada) == "free"
    with world.c.db.read() as conn:
        assert conn.execute(subscriptions.select()).all() == []


def test_request_bodies_are_checked(world: World) -> None:
    ada = world.listener("Ada")
    r = world.post(ada, "/v1/me/subscription", json={"plan_id": "premium_duo"})
    assert r.status_code == 400 and r.json()["error"]["message"] == "payment_token: Field required"
    r = world.patch(ada, "/v1/me/subscription", json={"cancel_at_period_end": True})
    assert r.status_code == 404 and r.json()["error"]["message"] == "you have no subscription"
    assert world.subscribe(ada).status_code == 201
    r = world.patch(ada, "/v1/me/subscription", json={})
    assert r.status_code == 400 and r.json()["error"]["message"] == (
        "give plan_id, cancel_at_period_end or payment_token"
    )
    assert world.patch(ada, "/v1/me/subscription", json={"cancel_at_period_end": "yes"}).status_code == 400
    r = world.patch(ada, "/v1/me/subscription", json={"plan_id": "free"})
    assert r.status_code == 400
    assert world.client.get("/v1/me/subscription").status_code == 401


def test_amounts_out_of_range_are_refused_by_the_gateway(world: World) -> None:
    ada = world.listener("Ada")
    token = world.card(ada)
    for amount in (0, -1199, 100_000_000, 10**20):
        with pytest.raises(BadRequest):
            world.sandbox.charge(token, amount, "USD", idempotency_key=f"k{amount}", description="test")
    assert world.charges() == []


def test_invoices_are_paged_newest_first_and_private(world: World) -> None:
    ada, bo = world.listener("Ada"), world.listener("Bo")
    assert world.subscribe(ada).status_code == 201
    for renewal in (utc(2026, 2, 28, 12), utc(2026, 3, 31, 12), utc(2026, 4, 30, 12)):
        world.at(renewal)
        world.sweep()
    r = world.get(ada, "/v1/me/invoices", params={"limit": 2})
    assert r.status_code == 200
    page = r.json()
    assert page["total"] == 4 and page["limit"] == 2 and page["offset"] == 0
    assert page["next"] == "http://testserver/v1/me/invoices?offset=2&limit=2"
    assert [i["number"] for i in page["items"]] == ["TA-2026-000004", "TA-2026-000003"]
    newest = page["items"][0]
    assert newest["period_start"] == "2026-04-30T12:00:00Z" and newest["period_end"] == "2026-05-31T12:00:00Z"
    assert newest["plan"] == {"id": "premium_individual", "name": "Premium Individual"}
    assert newest["description"] == "Premium Individual, 30 Apr 2026 to 31 May 2026"
    assert newest["lines"] == [
        {
            "description": "Premium Individual, 30 Apr 2026 to 31 May 2026",
            "amount_minor": 1199,
            "amount": "$11.99",
        }
    ]
    assert newest["paid_at"] == "2026-04-30T12:00:00Z"
    [payment] = newest["payments"]
    assert (payment["status"], payment["amount_minor"], payment["failure_reason"]) == (
        "succeeded",
        1199,
        None,
    )

    one = world.get(ada, f"/v1/me/invoices/{newest['id']}")
    assert one.status_code == 200 and one.json() == newest
    r = world.get(bo, f"/v1/me/invoices/{newest['id']}")  # another user's: as if it did not exist
    assert r.status_code == 404 and r.json()["error"]["message"] == f"invoice {newest['id']} not found"
    assert world.get(ada, "/v1/me/invoices/../../etc").status_code == 404
    assert world.get(bo, "/v1/me/invoices").json()["total"] == 0
    assert world.get(ada, "/v1/me/invoices", params={"limit": 0}).status_code == 400
    assert world.get(ada, "/v1/me/invoices", params={"limit": 51}).status_code == 400
    assert world.get(ada, "/v1/me/invoices", params={"offset": -1}).status_code == 400
