"""What the listener's plan allows (`/v1/me/entitlements`), why something was refused (the
decision log), audio ad completion, and the admins' ad management (`/v1/admin/ads`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Response

from tonearm.bootstrap import Container
from tonearm.domains.accounts.service import Principal
from tonearm.domains.entitlements.schemas import AdCreate, AdUpdate
from tonearm.http.auth import container, current_user
from tonearm.kernel.errors import BadRequest, Forbidden, NotFound

router = APIRouter(tags=["entitlements"])


def admin(user: Principal = Depends(current_user)) -> Principal:
    if user.role != "admin":
        raise Forbidden("only admins may do this")
    return user


@router.get("/v1/me/entitlements", summary="What the listener's plan allows, and where they stand")
def my_entitlements(
    user: Principal = Depends(current_user), c: Container = Depends(container)
) -> dict[str, Any]:
    """`product`, `plan`, `features` (each true or false), `quality` (max_kbps, lossless), `skips`
    (limit per rolling hour, null when unlimited; used, remaining, next_skip_at when none is left),
    `ads` (every_tracks and tracks_until_next_ad: how many tracks play before the next ad; null
    when ad-free) and `offline` (allowed, and the device and download limits)."""
    return c.entitlements.summary(user.user_id)


@router.get("/v1/me/entitlements/log", summary="Why can't I ...? The listener's entitlement decisions")
def my_log(
    limit: int = Query(50, description="1 to 100"),
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> dict[str, Any]:
    """Newest first: refusals (skip_limit, premium_required, ad_playing ...) and ads served, each
    `{at, action, allowed, reason, detail}`."""
    return {"items": c.entitlements.user_decisions(user.user_id, limit)}


@router.get("/v1/admin/users/{user_id}/entitlements/log", summary="A listener's decisions (admins)")
def user_log(
    user_id: str,
    limit: int = Query(50, description="1 to 100"),
    _: Principal = Depends(admin),
    c: Container = Depends(container),
) -> dict[str, Any]:
    if c.accounts.get_user(user_id) is None:
        raise NotFound(f"user {user_id[:40]} not found")
    return {"items": c.entitlements.user_decisions(user_id, limit)}


@router.post("/v1/me/ads/{impression_id}/complete", status_code=204, summary="An ad was played to the end")
def complete_ad(
    impression_id: str, user: Principal = Depends(current_user), c: Container = Depends(container)
) -> Response:
    """`impression_id` is the grant's `ad.impression_id` (the listener's own; 404 otherwise).
    Believed once the ad could have played to its end; repeating it changes nothing."""
    c.entitlements.ads.complete(user.user_id, impression_id)
    return Response(status_code=204)


@router.post("/v1/admin/ads", status_code=201, summary="Run an audio ad (admins)")
def create_ad(
    body: AdCreate, _: Principal = Depends(admin), c: Container = Depends(container)
) -> dict[str, Any]:
    """The audio is a track an admin uploaded like any other (usually private), ready, at most
    two minutes long. The ad runs at once."""
    return c.entitlements.ads.create(body.track_id, body.name, body.advertiser, body.click_url)


@router.get("/v1/admin/ads", summary="Every ad, with impressions and completions (admins)")
def list_ads(_: Principal = Depends(admin), c: Container = Depends(container)) -> dict[str, Any]:
    items = c.entitlements.ads.listing()
    return {"items": items, "total": len(items)}


@router.get("/v1/admin/ads/{ad_id}", summary="One ad, with impressions and completions (admins)")
def get_ad(ad_id: str, _: Principal = Depends(admin), c: Container = Depends(container)) -> dict[str, Any]:
    return c.entitlements.ads.get(ad_id)


@router.patch("/v1/admin/ads/{ad_id}", summary="Change or pause an ad (admins)")
def update_ad(
    ad_id: str, body: AdUpdate, _: Principal = Depends(admin), c: Container = Depends(container)
) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    for field in ("name", "advertiser", "active"):
        if field in changes and changes[field] is None:
            raise BadRequest(f"{field}: must not be null")
    return c.entitlements.ads.update(ad_id, changes)


@router.delete("/v1/admin/ads/{ad_id}", status_code=204, summary="Delete an ad and its figures (admins)")
def delete_ad(ad_id: str, _: Principal = Depends(admin), c: Container = Depends(container)) -> Response:
    c.entitlements.ads.delete(ad_id)
    return Response(status_code=204)
