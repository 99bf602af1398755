"""Plans, the listener's subscription, invoices, Duo/Family invitations, the sandbox's card form
and the gateway's webhooks.

`GET /v1/me/subscription` answers 404 ("you have no subscription") when the listener neither pays
for nor belongs to a plan; money is integers in minor units with a currency and a `display`
string. A declined card is a 402 whose message is the gateway's own words.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from tonearm.bootstrap import Container
from tonearm.domains.accounts.service import Principal
from tonearm.domains.billing.schemas import CardIn, InvitationIn, SubscriptionIn, SubscriptionPatch
from tonearm.http.auth import container, current_user
from tonearm.kernel.errors import PayloadTooLarge

router = APIRouter(tags=["billing"])

MAX_WEBHOOK_BYTES = 64 * 1024

User = Annotated[Principal, Depends(current_user)]
C = Annotated[Container, Depends(container)]


@router.get("/v1/plans", summary="The plans on offer, with prices and features")
def list_plans(c: C) -> dict[str, Any]:
    return {"plans": c.billing.plans()}


@router.post("/v1/billing/sandbox/cards", status_code=201, summary="Tokenize a test card (sandbox only)")
def tokenize_card(body: CardIn, user: User, c: C) -> dict[str, Any]:
    """Stands in for a gateway's card form: answers a token to subscribe with. Test numbers:
    4242424242424242 (succeeds), 4000000000000002 (declined), 4000000000009995 (insufficient
    funds), 4000000000000119 (fails with a processing error, then succeeds). 20 an hour."""
    return c.billing.tokenize_card(user.user_id, body.number, body.exp_month, body.exp_year, body.cvc)


@router.get("/v1/me/subscription", summary="Your subscription (404 when you have none)")
def get_subscription(user: User, c: C) -> dict[str, Any]:
    return c.billing.subscription(user.user_id)


@router.post("/v1/me/subscription", status_code=201, summary="Subscribe: the first month is charged now")
def subscribe(
    body: SubscriptionIn,
    user: User,
    c: C,
    idempotency_key: Annotated[
        str | None,
        Header(description="Asking again with the same key answers the first outcome, never charging twice."),
    ] = None,
) -> dict[str, Any]:
    return c.billing.subscribe(
        user.user_id, body.plan_id, body.payment_token, idempotency_key=idempotency_key
    )


@router.patch("/v1/me/subscription", summary="Change plan or card, cancel or resume (the manager only)")
def update_subscription(body: SubscriptionPatch, user: User, c: C) -> dict[str, Any]:
    return c.billing.update(
        user.user_id,
        plan_id=body.plan_id,
        cancel_at_period_end=body.cancel_at_period_end,
        payment_token=body.payment_token,
    )


@router.delete("/v1/me/subscription", summary="Cancel at the end of the period (the manager only)")
def cancel_subscription(user: User, c: C) -> dict[str, Any]:
    return c.billing.cancel(user.user_id)


@router.get("/v1/me/invoices", summary="Your invoices, newest first")
def list_invoices(
    user: User, c: C, limit: Annotated[int, Query()] = 20, offset: Annotated[int, Query()] = 0
) -> dict[str, Any]:
    return c.billing.invoices(user.user_id, limit=limit, offset=offset)


@router.get("/v1/me/invoices/{invoice_id}", summary="One of your invoices, with its lines and payments")
def get_invoice(invoice_id: str, user: User, c: C) -> dict[str, Any]:
    return c.billing.invoice(user.user_id, invoice_id)


@router.post("/v1/billing/webhooks/{gateway}", summary="The payment gateway's signed events")
async def webhook(gateway: str, request: Request, c: C) -> dict[str, str]:
    """No bearer token: the gateway's signature over the exact body is the authentication.
    A forged, tampered or stale (replayed) delivery is a 400; a duplicate changes nothing."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_WEBHOOK_BYTES:
        raise PayloadTooLarge(f"webhook bodies are at most {MAX_WEBHOOK_BYTES} bytes")
    body = b""
    async for chunk in request.stream():  # a chunked body has no length: stop reading at the limit
        body += chunk
        if len(body) > MAX_WEBHOOK_BYTES:
            raise PayloadTooLarge(f"webhook bodies are at most {MAX_WEBHOOK_BYTES} bytes")
    outcome = await run_in_threadpool(c.billing.handle_webhook, gateway, body, dict(request.headers))
    return {"status": outcome}


# Duo and Family ---------------------------------------------------------------------------------
@router.post("/v1/me/subscription/invitations", status_code=201, summary="Invite someone to your plan")
def create_invitation(user: User, c: C, body: InvitationIn | None = None) -> dict[str, Any]:
    """Answers the link (`url`) once: only a hash of its code is kept. With `email`, only that
    account can accept, and it sees the invitation in GET /v1/me/invitations."""
    return c.billing.invitations.create(user.user_id, body.email if body is not None else None)


@router.get("/v1/me/subscription/invitations", summary="Your plan's pending invitations")
def list_invitations(user: User, c: C) -> dict[str, Any]:
    return c.billing.invitations.pending(user.user_id)


@router.delete(
    "/v1/me/subscription/invitations/{invitation_id}", status_code=204, summary="Revoke an invitation"
)
def revoke_invitation(invitation_id: str, user: User, c: C) -> Response:
    c.billing.invitations.revoke(user.user_id, invitation_id)
    return Response(status_code=204)


@router.delete(
    "/v1/me/subscription/membership", status_code=204, summary="Leave the plan you were invited to"
)
def leave_plan(user: User, c: C) -> Response:
    c.billing.leave(user.user_id)
    return Response(status_code=204)


@router.delete(
    "/v1/me/subscription/members/{member_id}", status_code=204, summary="Remove a member from your plan"
)
def remove_member(member_id: str, user: User, c: C) -> Response:
    c.billing.remove_member(user.user_id, member_id)
    return Response(status_code=204)


@router.get("/v1/invitations/{code}", summary="What an invitation link is for (no sign-in needed)")
def preview_invitation(code: str, c: C) -> dict[str, Any]:
    return c.billing.invitations.preview(code)


@router.post("/v1/invitations/{code}/accept", summary="Join the plan an invitation link is for")
def accept_invitation(code: str, user: User, c: C) -> dict[str, Any]:
    return c.billing.invitations.accept(user.user_id, code)


@router.get("/v1/me/invitations", summary="Invitations addressed to your e-mail address")
def my_invitations(user: User, c: C) -> dict[str, Any]:
    return c.billing.invitations.mine(user.user_id)


@router.post("/v1/me/invitations/{invitation_id}/accept", summary="Accept an invitation addressed to you")
def accept_my_invitation(invitation_id: str, user: User, c: C) -> dict[str, Any]:
    return c.billing.invitations.accept_mine(user.user_id, invitation_id)
