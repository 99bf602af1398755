"""The sandbox gateway: a payment service provider that lives in Tonearm's own database.

It behaves like a real one so that every billing flow can run here without a network: cards are
tokenized (the number is checked and forgotten; only brand, last four digits and expiry are
kept), charges are idempotent by key, declines come back as failed charges, and every outcome
is also announced by a signed webhook delivered asynchronously (a job of kind
`billing.webhook`, enqueued in the same transaction as the charge, run by a worker).

Test card numbers (the same as Stripe's):

=====================  =========================================================
4242 4242 4242 4242    Visa: every charge succeeds
5555 5555 5555 4444    Mastercard: every charge succeeds
4000 0000 0000 0002    declined (`card_declined`)
4000 0000 0000 9995    declined (`insufficient_funds`)
4000 0000 0000 0119    `processing_error` (retryable), then success: charges alternate
=====================  =========================================================

Any other number that passes the Luhn check succeeds too. A card past its expiry month is
refused at tokenization and, if it expires while a subscription runs, its charges fail with
`expired_card` (the way a real renewal fails a year later).

Webhook signatures follow Stripe's scheme: header `Tonearm-Signature: t=<unix>,v1=<hex>` where
the hex is HMAC-SHA256(secret, "<t>." + body). A delivery whose timestamp is older than the
tolerance is refused, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

from tonearm.domains.billing.tables import sandbox_cards, sandbox_charges
from tonearm.kernel.clock import Clock
from tonearm.kernel.db import Database
from tonearm.kernel.errors import BadRequest, Conflict
from tonearm.ports.jobs import JobQueue
from tonearm.ports.payments import Card, CardError, Charge, ChargeStatus, WebhookError, WebhookEvent
from tonearm.workers.runner import PermanentError, TaskRegistry

if TYPE_CHECKING:
    from tonearm.bootstrap import Container

SIGNATURE_HEADER = "tonearm-signature"
MAX_AMOUNT_MINOR = 99_999_999  # like Stripe's 999,999.99 limit
DELIVERY_JOB = "sandbox.webhook"

# What a test number does when charged.
_TEST_CARDS = {
    "4000000000000002": "decline",
    "4000000000009995": "insufficient_funds",
    "4000000000000119": "processing_error",
}
_BEHAVIOURS = ("succeed", "decline", "insufficient_funds", "processing_error")
_FAILURES = {
    "decline": ("card_declined", "Your card was declined."),
    "insufficient_funds": ("insufficient_funds", "Your card was declined (insufficient funds)."),
    "processing_error": (
        "processing_error",
        "An error occurred while processing your card; try again.",
    ),
    "expired": ("expired_card", "Your card has expired."),
}


def luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def brand_of(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    if number[:2] in ("51", "52", "53", "54", "55") or "2221" <= number[:4] <= "2720":
        return "mastercard"
    if number[:2] in ("34", "37"):
        return "amex"
    if number.startswith("6011") or number.startswith("65"):
        return "discover"
    return "unknown"


class SandboxGateway:
    name = "sandbox"

    def __init__(
        self, db: Database, jobs: JobQueue, clock: Clock, *, webhook_secret: str, tolerance_s: int = 300
    ) -> None:
        self.db = db
        self.jobs = jobs
        self.clock = clock
        self._secret = webhook_secret.encode()
        self.tolerance_s = tolerance_s

    # Cards --------------------------------------------------------------------------------------
    def tokenize_card(self, number: str, exp_month: int, exp_year: int, cvc: str) -> Card:
        digits = "".join(ch for ch in number if ch not in " -")
        if not digits.isascii() or not digits.isdigit() or not 12 <= len(digits) <= 19:
            raise CardError("number: a card number is 12 to 19 digits (spaces and dashes allowed)")
        if not luhn_ok(digits):
            raise CardError(
                "number: this card number is not valid (it fails the Luhn check); check for a typo"
            )
        if not 1 <= exp_month <= 12:
            raise CardError("exp_month: must be 1 to 12")
        now = self.clock.now()
        if exp_year < 100:
            exp_year += 2000
        if (exp_year, exp_month) < (now.year, now.month):
            raise CardError(f"exp_year/exp_month: this card expired at the end of {exp_month:02d}/{exp_year}")
        if exp_year > now.year + 20:
            raise CardError("exp_year: too far in the future")
        brand = brand_of(digits)
        if not (cvc.isascii() and cvc.isdigit() and len(cvc) == (4 if brand == "amex" else 3)):
            raise CardError(f"cvc: must be {4 if brand == 'amex' else 3} digits")
        card = Card("tok_" + secrets.token_urlsafe(18), brand, digits[-4:], exp_month, exp_year)
        with self.db.write() as conn:
            conn.execute(
                sa.insert(sandbox_cards).values(
                    token=card.token,
                    brand=card.brand,
                    last4=card.last4,
                    exp_month=card.exp_month,
                    exp_year=card.exp_year,
                    behaviour=_TEST_CARDS.get(digits, "succeed"),
                    created_at=now,
                )
            )
        return card

    def card(self, token: str) -> Card:
        with self.db.read() as conn:
            row = conn.execute(sa.select(sandbox_cards).where(sandbox_cards.c.token == token)).first()
        if row is None:
            raise CardError("payment_token: unknown card token; tokenize the card again")
        return Card(row.token, row.brand, row.last4, row.exp_month, row.exp_year)

    def set_card_behaviour(self, token: str, behaviour: str) -> None:
        """Sandbox control (like a test dashboard): what charging this card does from now on."""
        if behaviour not in _BEHAVIOURS:
            raise BadRequest(f"behaviour: one of {', '.join(_BEHAVIOURS)}")
        with self.db.write() as conn:
            done = conn.execute(
                sa.update(sandbox_cards).where(sandbox_cards.c.token == token).values(behaviour=behaviour)
            )
            if done.rowcount != 1:
                raise CardError("payment_token: unknown card token")

    # Charges ------------------------------------------------------------------------------------
    def charge(
        self, token: str, amount_minor: int, currency: str, *, idempotency_key: str, description: str
    ) -> Charge:
        if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
            raise BadRequest("amount: must be an integer number of minor units")
        if amount_minor <= 0:
            raise BadRequest(f"amount: must be positive (got {amount_minor})")
        if amount_minor > MAX_AMOUNT_MINOR:
            raise BadRequest(f"amount: above the gateway's maximum of {MAX_AMOUNT_MINOR} minor units")
        if len(currency) != 3 or not currency.isalpha():
            raise BadRequest("currency: a three-letter ISO 4217 code")
        if not idempotency_key or len(idempotency_key) > 100:
            raise BadRequest("idempotency_key: 1 to 100 characters")
        currency = currency.upper()
        known = self._by_key(idempotency_key)
        if known is not None:
            return self._replay(known, token, amount_minor, currency)
        now = self.clock.now()
        try:
            with self.db.write() as conn:
                card = conn.execute(sa.select(sandbox_cards).where(sandbox_cards.c.token == token)).first()
                if card is None:
                    raise CardError("payment_token: unknown card token; tokenize the card again")
                behaviour = card.behaviour
                if (card.exp_year, card.exp_month) < (now.year, now.month):
                    behaviour = "expired"
                elif behaviour == "processing_error":
                    # Alternates: the card's 1st, 3rd, 5th ... charge fails; the next one succeeds.
                    made = conn.execute(
                        sa.select(sa.func.count()).where(sandbox_charges.c.token == token)
                    ).scalar_one()
                    if made % 2 == 1:
                        behaviour = "succeed"
                code, message = _FAILURES.get(behaviour, (None, None))
                status: ChargeStatus = "succeeded" if code is None else "failed"
                charge = Charge(
                    "ch_" + secrets.token_urlsafe(18),
                    status,
                    amount_minor,
                    currency,
                    idempotency_key,
                    code,
                    message,
                    retryable=code == "processing_error",
                )
                conn.execute(
                    sa.insert(sandbox_charges).values(
                        id=charge.id,
                        idempotency_key=idempotency_key,
                        token=token,
                        amount_minor=amount_minor,
                        currency=currency,
                        status=status,
                        failure_code=code,
                        created_at=now,
                    )
                )
                self._emit(conn, f"charge.{status}", charge, now)
        except sa.exc.IntegrityError:
            # The same key charged at the same moment by another request: return its charge.
            known = self._by_key(idempotency_key)
            if known is None:
                raise
            return self._replay(known, token, amount_minor, currency)
        return charge

    def refund(self, charge_id: str, *, idempotency_key: str) -> Charge:
        now = self.clock.now()
        with self.db.write() as conn:
            row = conn.execute(sa.select(sandbox_charges).where(sandbox_charges.c.id == charge_id)).first()
            if row is None:
                raise BadRequest(f"charge {charge_id}: no such charge")
            if row.status == "refunded":
                return self._charge_of(row)
            if row.status != "succeeded":
                raise Conflict(f"charge {charge_id}: only a succeeded charge can be refunded")
            conn.execute(
                sa.update(sandbox_charges).where(sandbox_charges.c.id == charge_id).values(status="refunded")
            )
            charge = self._charge_of(row)
            refunded = Charge(
                charge.id, "refunded", charge.amount_minor, charge.currency, charge.idempotency_key
            )
            self._emit(conn, "charge.refunded", refunded, now)
        return refunded

    def _by_key(self, key: str) -> Any:
        with self.db.read() as conn:
            return conn.execute(
                sa.select(sandbox_charges).where(sandbox_charges.c.idempotency_key == key)
            ).first()

    def _replay(self, row: Any, token: str, amount_minor: int, currency: str) -> Charge:
        if (row.token, row.amount_minor, row.currency) != (token, amount_minor, currency):
            raise Conflict(
                "idempotency_key: already used for a different charge (card, amount or currency differ)"
            )
        return self._charge_of(row)

    @staticmethod
    def _charge_of(row: Any) -> Charge:
        code = row.failure_code
        message = _FAILURES[next(k for k, v in _FAILURES.items() if v[0] == code)][1] if code else None
        return Charge(
            row.id,
            row.status,
            row.amount_minor,
            row.currency,
            row.idempotency_key,
            code,
            message,
            retryable=code == "processing_error",
        )

    # Webhooks -----------------------------------------------------------------------------------
    def _emit(self, conn: sa.Connection, type_: str, charge: Charge, now: dt.datetime) -> None:
        """Queues the signed delivery of one event in the caller's transaction."""
        event = {
            "id": "evt_" + secrets.token_urlsafe(18),
            "type": type_,
            "created": int(now.timestamp()),
            "data": {
                "charge": {
                    "id": charge.id,
                    "status": charge.status,
                    "amount_minor": charge.amount_minor,
                    "currency": charge.currency,
                    "idempotency_key": charge.idempotency_key,
                    "failure_code": charge.failure_code,
                    "failure_message": charge.failure_message,
                    "retryable": charge.retryable,
                }
            },
        }
        self.jobs.enqueue(conn, DELIVERY_JOB, {"body": orjson.dumps(event).decode()})

    def sign(self, body: bytes, timestamp: int) -> dict[str, str]:
        """The signature headers for `body` sent at `timestamp` (sandbox control for tests)."""
        mac = hmac.new(self._secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        return {SIGNATURE_HEADER: f"t={timestamp},v1={mac}"}

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        header = next((v for k, v in headers.items() if k.lower() == SIGNATURE_HEADER), None)
        if not header:
            raise WebhookError(f"missing {SIGNATURE_HEADER} header")
        parts: dict[str, list[str]] = {}
        for item in header.split(","):
            k, _, v = item.strip().partition("=")
            parts.setdefault(k, []).append(v)
        try:
            ts = int(parts["t"][0])
        except (KeyError, ValueError) as exc:
            raise WebhookError("signature header has no valid timestamp") from exc
        expected = hmac.new(self._secret, f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
        if not any(hmac.compare_digest(expected, v) for v in parts.get("v1", [])):
            raise WebhookError("webhook signature does not match the body")
        age = self.clock.now().timestamp() - ts
        if abs(age) > self.tolerance_s:
            raise WebhookError(
                f"webhook timestamp is {int(age)} s away from now (tolerance {self.tolerance_s} s): "
                "refused as a possible replay"
            )
        try:
            event = orjson.loads(body)
            c = event["data"]["charge"]
            charge = Charge(
                str(c["id"]),
                c["status"],
                int(c["amount_minor"]),
                str(c["currency"]),
                str(c["idempotency_key"]),
                c.get("failure_code"),
                c.get("failure_message"),
                bool(c.get("retryable", False)),
            )
            return WebhookEvent(
                str(event["id"]),
                str(event["type"]),
                dt.datetime.fromtimestamp(int(event["created"]), dt.UTC),
                charge,
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise WebhookError("webhook body is not a valid event") from exc


def register(registry: TaskRegistry) -> None:
    """The sandbox's outbox: each queued event is signed as it is sent and handed to billing's
    webhook receiver (what a real gateway's POST to /v1/billing/webhooks/<name> does)."""

    @registry.task(DELIVERY_JOB)
    def deliver(c: Container, payload: dict[str, Any]) -> None:
        gateway = c.gateway
        if not isinstance(gateway, SandboxGateway):
            raise PermanentError("a sandbox webhook, but the configured gateway is not the sandbox")
        body = str(payload["body"]).encode()
        headers = gateway.sign(body, int(c.clock.now().timestamp()))
        try:
            c.billing.handle_webhook(gateway.name, body, headers)
        except WebhookError as exc:  # the body itself is bad: resending will not help
            raise PermanentError(exc.message) from exc
