"""Request bodies of the billing API, validated at the edge (types and sizes; the service and the
gateway check the rest)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CardIn(BaseModel):
    """A card for the sandbox gateway to tokenize (a real gateway's browser script does this)."""

    model_config = ConfigDict(extra="forbid")

    number: str = Field(min_length=1, max_length=40, description="Card number; spaces and dashes allowed.")
    exp_month: int = Field(strict=True, ge=1, le=12)
    exp_year: int = Field(strict=True, ge=0, le=9999, description="Four digits (or two).")
    cvc: str = Field(min_length=1, max_length=4)


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan_id: str = Field(min_length=1, max_length=40, description="A paid plan's id, from GET /v1/plans.")
    payment_token: str = Field(min_length=1, max_length=100, description="A tokenized card.")


class SubscriptionPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan_id: str | None = Field(
        None,
        min_length=1,
        max_length=40,
        description="A pricier plan starts now (the prorated difference is charged); a cheaper one "
        "at the next renewal.",
    )
    cancel_at_period_end: bool | None = Field(
        None, strict=True, description="true: premium until the period's end, then free; false: resume."
    )
    payment_token: str | None = Field(None, min_length=1, max_length=100, description="Replace the card.")


class InvitationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(
        None, max_length=254, description="Only the account with this address may accept; omit for a link."
    )
