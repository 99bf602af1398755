"""The payment gateway port: tokenized cards, idempotent charges and refunds, signed webhooks.

Tonearm never sees a card number except through the sandbox's tokenize call (a real gateway
tokenizes in the browser with its own script and hands us a token). Amounts are integers in
minor units (cents) with an ISO 4217 currency; never floats.

A gateway reports what happened twice: synchronously, as the `Charge` a call returns, and
asynchronously, as signed webhook events that may arrive late, twice, or out of order. Billing
applies both idempotently (see domains/billing/service.py), so a crash between charging and
recording is repaired by the webhook, and a repeated webhook changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from tonearm.kernel.errors import BadRequest, ServiceUnavailable

ChargeStatus = Literal["succeeded", "failed", "refunded"]


class CardError(BadRequest):
    """The card cannot be tokenized (fails Luhn, expired, bad CVC). Nothing was charged."""


class WebhookError(BadRequest):
    """A webhook that is forged, tampered with, too old (a replay), or malformed."""


class GatewayUnavailable(ServiceUnavailable):
    """The gateway could not be reached or answered with an error of its own: retry later with the
    same idempotency key (the charge may or may not have happened; the key makes retrying safe)."""


@dataclass(frozen=True, slots=True)
class Card:
    token: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int


@dataclass(frozen=True, slots=True)
class Charge:
    id: str
    status: ChargeStatus
    amount_minor: int
    currency: str
    idempotency_key: str
    failure_code: str | None = None  # card_declined, insufficient_funds, processing_error, ...
    failure_message: str | None = None
    # True when the same card may succeed if charged again later (processing_error), False for a
    # decline that retrying will not fix today (it may tomorrow: renewals still retry on schedule).
    retryable: bool = False


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    id: str  # unique per event: a duplicate delivery has the same id
    type: str  # charge.succeeded | charge.failed | charge.refunded
    created: dt.datetime  # when the gateway says it happened (orders out-of-order deliveries)
    charge: Charge


class PaymentGateway(Protocol):
    """What billing needs from a payment service provider.

    name: MUST be a short stable identifier stored beside tokens and payments (e.g. "sandbox").
    """

    name: str

    def tokenize_card(self, number: str, exp_month: int, exp_year: int, cvc: str) -> Card:
        """MUST validate the number (Luhn), expiry and CVC and raise CardError with a precise
        message when invalid. MAY raise NotImplementedError where cards are tokenized client-side
        (a real gateway's own browser script); the sandbox implements it."""
        ...

    def card(self, token: str) -> Card:
        """MUST return the tokenized card, or raise CardError for a token it does not know."""
        ...

    def charge(
        self, token: str, amount_minor: int, currency: str, *, idempotency_key: str, description: str
    ) -> Charge:
        """Charges the card. A decline MUST be returned as a Charge with status "failed" (not
        raised). A repeated `idempotency_key` MUST return the first call's Charge and MUST NOT
        charge again; reusing a key with a different amount or currency MUST raise
        tonearm.kernel.errors.Conflict. MUST raise GatewayUnavailable when it cannot tell
        (the caller retries with the same key). MUST raise BadRequest for amount_minor <= 0 or an
        amount above the gateway's maximum. MUST emit a webhook event for the outcome."""
        ...

    def refund(self, charge_id: str, *, idempotency_key: str) -> Charge:
        """Refunds a succeeded charge in full (idempotent by key, like `charge`); MUST emit a
        charge.refunded webhook event."""
        ...

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        """MUST verify the signature over the exact body and reject (WebhookError) a forged or
        tampered body, a missing signature, or a signed timestamp outside the tolerance (a
        replay of an old delivery). MUST NOT deduplicate: that is the caller's job, by event id."""
        ...
