"""The PaymentGateway contract (tonearm.ports.payments), run against the sandbox gateway on
SQLite and PostgreSQL. A real gateway's adapter must pass the same tests against its test mode."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import orjson
import pytest

from tonearm.adapters.jobs.sql import SqlJobQueue
from tonearm.adapters.payments.sandbox import SandboxGateway, luhn_ok
from tonearm.kernel.clock import FrozenClock
from tonearm.kernel.db import Database, make_engine
from tonearm.kernel.errors import BadRequest, Conflict
from tonearm.ports.payments import CardError, PaymentGateway, WebhookError

NOW = dt.datetime(2026, 3, 15, 12, tzinfo=dt.UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    d = Database(make_engine(db_url))
    yield d
    d.dispose()


@pytest.fixture
def queue(db: Database, clock: FrozenClock) -> SqlJobQueue:
    return SqlJobQueue(db, lease_s=60, max_attempts=3, clock=clock)


@pytest.fixture
def gateway(db: Database, queue: SqlJobQueue, clock: FrozenClock) -> SandboxGateway:
    return SandboxGateway(db, queue, clock, webhook_secret="whsec-test", tolerance_s=300)


def _deliveries(queue: SqlJobQueue, gateway: SandboxGateway) -> list[tuple[bytes, dict[str, str]]]:
    """The queued webhook events, signed as the delivery job would sign them now."""
    out = []
    while (job := queue.claim("test")) is not None:
        assert job.kind == "sandbox.webhook"
        body = job.payload["body"].encode()
        out.append((body, gateway.sign(body, int(gateway.clock.now().timestamp()))))
        queue.complete(job)
    return out


def test_the_sandbox_is_a_payment_gateway(gateway: SandboxGateway) -> None:
    port: PaymentGateway = gateway
    assert port.name == "sandbox"


@pytest.mark.parametrize(
    ("number", "problem"),
    [
        ("4242424242424241", "Luhn"),
        ("4111 1111 1111 1112", "Luhn"),
        ("4242-abcd-4242-4242", "12 to 19 digits"),
        ("", "12 to 19 digits"),
        ("٤٢٤٢٤٢٤٢٤٢٤٢٤٢٤٢", "12 to 19 digits"),  # Arabic-Indic digits are not card digits
    ],
)
def test_bad_card_numbers_are_refused_before_anything_is_stored(
    gateway: SandboxGateway, number: str, problem: str
) -> None:
    with pytest.raises(CardError, match=problem):
        gateway.tokenize_card(number, 12, 2030, "123")


def test_expiry_and_cvc_are_checked(gateway: SandboxGateway) -> None:
    with pytest.raises(CardError, match="expired"):
        gateway.tokenize_card("4242424242424242", 2, 2026, "123")  # February, now is March
    with pytest.raises(CardError, match="exp_month"):
        gateway.tokenize_card("4242424242424242", 13, 2030, "123")
    with pytest.raises(CardError, match="cvc"):
        gateway.tokenize_card("4242424242424242", 12, 2030, "12")
    with pytest.raises(CardError, match="4 digits"):
        gateway.tokenize_card("378282246310005", 12, 2030, "123")  # Amex wants four
    card = gateway.tokenize_card("4242 4242 4242 4242", 3, 26, "123")  # this month still counts
    assert (card.brand, card.last4, card.exp_year) == ("visa", "4242", 2026)
    assert gateway.card(card.token) == card
    with pytest.raises(CardError, match="unknown card token"):
        gateway.card("tok_nope")


def test_charges_are_idempotent_by_key(gateway: SandboxGateway, queue: SqlJobQueue) -> None:
    token = gateway.tokenize_card("5555555555554444", 12, 2030, "123").token
    first = gateway.charge(token, 1199, "usd", idempotency_key="k1", description="Premium")
    again = gateway.charge(token, 1199, "USD", idempotency_key="k1", description="Premium")
    assert first == again and first.status == "succeeded" and first.currency == "USD"
    with pytest.raises(Conflict, match="different charge"):
        gateway.charge(token, 1299, "USD", idempotency_key="k1", description="Premium")
    other = gateway.charge(token, 1199, "USD", idempotency_key="k2", description="Premium")
    assert other.id != first.id
    events = [orjson.loads(body) for body, _ in _deliveries(queue, gateway)]
    assert [e["type"] for e in events] == ["charge.succeeded", "charge.succeeded"]  # one per charge


@pytest.mark.parametrize("amount", [0, -1, 100_000_000, True])
def test_amounts_outside_the_range_are_refused(gateway: SandboxGateway, amount: int) -> None:
    token = gateway.tokenize_card("4242424242424242", 12, 2030, "123").token
    with pytest.raises(BadRequest, match="amount"):
        gateway.charge(token, amount, "USD", idempotency_key="k", description="x")


def test_declines_are_failed_charges_not_exceptions(gateway: SandboxGateway) -> None:
    for number, code in [("4000000000000002", "card_declined"), ("4000000000009995", "insufficient_funds")]:
        token = gateway.tokenize_card(number, 12, 2030, "123").token
        c = gateway.charge(token, 500, "USD", idempotency_key=f"d-{number}", description="x")
        assert (c.status, c.failure_code, c.retryable) == ("failed", code, False)
        assert c.failure_message and "declined" in c.failure_message


def test_processing_errors_succeed_when_retried(gateway: SandboxGateway) -> None:
    token = gateway.tokenize_card("4000000000000119", 12, 2030, "123").token
    first = gateway.charge(token, 500, "USD", idempotency_key="p1", description="x")
    assert (first.status, first.failure_code, first.retryable) == ("failed", "processing_error", True)
    assert gateway.charge(token, 500, "USD", idempotency_key="p1", description="x") == first  # same key
    assert gateway.charge(token, 500, "USD", idempotency_key="p2", description="x").status == "succeeded"


def test_a_card_that_expires_fails_later_charges(gateway: SandboxGateway, clock: FrozenClock) -> None:
    token = gateway.tokenize_card("4242424242424242", 3, 2026, "123").token
    assert gateway.charge(token, 500, "USD", idempotency_key="e1", description="x").status == "succeeded"
    clock.advance(31 * 86400)
    later = gateway.charge(token, 500, "USD", idempotency_key="e2", description="x")
    assert (later.status, later.failure_code) == ("failed", "expired_card")
    gateway.set_card_behaviour(token, "decline")
    with pytest.raises(BadRequest):
        gateway.set_card_behaviour(token, "explode")


def test_refunds_are_idempotent_and_announced(gateway: SandboxGateway, queue: SqlJobQueue) -> None:
    token = gateway.tokenize_card("4242424242424242", 12, 2030, "123").token
    c = gateway.charge(token, 700, "USD", idempotency_key="r1", description="x")
    r = gateway.refund(c.id, idempotency_key="rf1")
    assert r.status == "refunded" and r.amount_minor == 700
    assert gateway.refund(c.id, idempotency_key="rf1").status == "refunded"
    assert [orjson.loads(b)["type"] for b, _ in _deliveries(queue, gateway)] == [
        "charge.succeeded",
        "charge.refunded",
    ]
    failed = gateway.charge(
        gateway.tokenize_card("4000000000000002", 12, 2030, "123").token,
        700,
        "USD",
        idempotency_key="r2",
        description="x",
    )
    with pytest.raises(Conflict):
        gateway.refund(failed.id, idempotency_key="rf2")


def test_webhooks_are_verified_and_parsed(
    gateway: SandboxGateway, queue: SqlJobQueue, clock: FrozenClock
) -> None:
    token = gateway.tokenize_card("4242424242424242", 12, 2030, "123").token
    c = gateway.charge(token, 1199, "USD", idempotency_key="w1", description="x")
    ((body, headers),) = _deliveries(queue, gateway)
    event = gateway.parse_webhook(body, headers)
    assert event.type == "charge.succeeded" and event.charge == c and event.created == NOW
    assert gateway.parse_webhook(body, {k.upper(): v for k, v in headers.items()}) == event  # any case

    with pytest.raises(WebhookError, match="missing"):
        gateway.parse_webhook(body, {})
    with pytest.raises(WebhookError, match="does not match"):
        gateway.parse_webhook(body.replace(b"1199", b"1"), headers)  # tampered amount
    forged = SandboxGateway(gateway.db, queue, clock, webhook_secret="guessed").sign(
        body, int(NOW.timestamp())
    )
    with pytest.raises(WebhookError, match="does not match"):
        gateway.parse_webhook(body, forged)
    with pytest.raises(WebhookError, match="timestamp"):
        gateway.parse_webhook(body, {"tonearm-signature": "t=soon,v1=00"})
    clock.advance(301)  # the same delivery, captured and replayed later
    with pytest.raises(WebhookError, match="replay"):
        gateway.parse_webhook(body, headers)
    fresh = gateway.sign(b"{not json", int(clock.now().timestamp()))
    with pytest.raises(WebhookError, match="not a valid event"):
        gateway.parse_webhook(b"{not json", fresh)


def test_luhn() -> None:
    assert luhn_ok("4242424242424242") and luhn_ok("79927398713") and not luhn_ok("79927398710")
