"""Sharing over HTTP: public pages (`/track/{id}`, `/album/{id}`, `/artist/{id}`, `/playlist/{id}`,
`/user/{id}`), embeds (`/embed/{type}/{id}`), oEmbed (`/oembed`), short links (`/s/{code}`),
`GET /v1/resolve` and the caller's share links (`/v1/me/shares`).

HTML routes answer errors with an HTML page (a 404 looks the same for a missing and a private
object); JSON routes with the Spotify error object. Pages are anonymous: a token sent along
changes nothing, so they are the same for everyone and may be cached.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field

from tonearm.bootstrap import Container
from tonearm.domains.accounts.service import Principal
from tonearm.domains.sharing.links import KINDS, Kind, kind_of
from tonearm.domains.sharing.pages import PAGE_CACHE, Pages
from tonearm.domains.sharing.service import EMBED_HEIGHT, EMBED_LIST_LIMIT
from tonearm.http.auth import container, current_user, optional_user
from tonearm.http.responses import JSON
from tonearm.kernel.errors import NotFound, TonearmError

router = APIRouter(tags=["sharing"])


@functools.cache
def _pages_at(public_url: str) -> Pages:
    return Pages(public_url)


def _pages_for(c: Container) -> Pages:
    """The renderer for this server's public URL (its CSP names the origin), built once."""
    return _pages_at(c.settings.public_url)


def _html(body: str, status: int, headers: dict[str, str], cache: str = PAGE_CACHE) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=headers | {"Cache-Control": cache})


def _error_page(pages: Pages, exc: TonearmError, *, embed: bool = False) -> HTMLResponse:
    headers = pages.embed_error_headers if embed else pages.page_headers
    return _html(pages.error(exc.status, exc.message), exc.status, headers)


# Public pages ---------------------------------------------------------------------------------
def _page_endpoint(kind: Kind) -> Callable[..., HTMLResponse]:
    def endpoint(object_id: str, c: Container = Depends(container)) -> HTMLResponse:
        pages = _pages_for(c)
        try:
            obj = c.sharing.public(kind, object_id)
        except TonearmError as exc:
            return _error_page(pages, exc)
        return _html(pages.page(obj, c.sharing.player_url(obj)), 200, pages.page_headers)

    endpoint.__name__ = f"{kind}_page"
    return endpoint


for _kind in KINDS:
    router.add_api_route(
        f"/{_kind}/{{object_id}}",
        _page_endpoint(_kind),
        methods=["GET", "HEAD"],
        include_in_schema=False,
        response_class=HTMLResponse,
    )


@router.api_route("/embed/{kind}/{object_id}", methods=["GET", "HEAD"], include_in_schema=False)
def embed(kind: str, object_id: str, c: Container = Depends(container)) -> HTMLResponse:
    """The embeddable player: may be framed by any site."""
    pages = _pages_for(c)
    try:
        found = kind_of(kind)
        if found is None or found not in EMBED_HEIGHT:
            raise NotFound(
                f"there is no embeddable player for {kind[:20]!r} (track, album, artist, playlist)"
            )
        obj = c.sharing.public(found, object_id, previews=EMBED_LIST_LIMIT)
    except TonearmError as exc:
        return _error_page(pages, exc, embed=True)
    return _html(pages.embed(obj, c.sharing.player_url(obj)), 200, pages.embed_headers)


@router.api_route("/s/{code}", methods=["GET", "HEAD"], include_in_schema=False)
def short_link(code: str, request: Request, c: Container = Depends(container)) -> Response:
    """302 to the page a share link names, counting the click (HEAD, what link checkers send,
    does not count); 410 once it expired, 404 if its object is gone or no longer public."""
    pages = _pages_for(c)
    try:
        url = c.sharing.follow(code, count=request.method != "HEAD")
    except TonearmError as exc:
        return _html(pages.error(exc.status, exc.message), exc.status, pages.page_headers, "no-store")
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})


# oEmbed ---------------------------------------------------------------------------------------
@router.get("/oembed", summary="oEmbed 1.0 (rich) for a Tonearm page URL or tonearm: URI")
def oembed(
    url: Annotated[
        str | None, Query(description="A page URL of this server, /s/ link or tonearm: URI")
    ] = None,
    fmt: Annotated[str, Query(alias="format", description="json (xml answers 501)")] = "json",
    maxwidth: int | None = None,
    maxheight: int | None = None,
    c: Container = Depends(container),
) -> JSON:
    if fmt != "json":
        # oEmbed 1.0 §2.3.4: a format the provider does not serve is 501 Not Implemented.
        return JSON(
            {"error": {"status": 501, "message": f"format: only json is served, not {fmt[:20]!r}"}},
            status_code=501,
        )
    body = c.sharing.oembed(url, maxwidth=maxwidth, maxheight=maxheight)
    return JSON(body, headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"})


# URIs -----------------------------------------------------------------------------------------
@router.get("/v1/resolve", summary="What a tonearm: URI (or a Tonearm page URL) names")
def resolve(
    uri: Annotated[
        str | None, Query(description="tonearm:track:<id>, spotify:album:<id>, or a page URL")
    ] = None,
    user: Principal | None = Depends(optional_user),
    c: Container = Depends(container),
) -> dict[str, Any]:
    return c.sharing.resolve(uri, user.user_id if user else None)


# Share links ----------------------------------------------------------------------------------
class ShareRequest(BaseModel):
    """`POST /v1/me/shares`: what to share, and for how long (absent: no expiry)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    uri: str = Field(..., max_length=2048, description="tonearm:{type}:{id} or a Tonearm page URL")
    expires_in: int | None = Field(None, description="Seconds, 60 to 31536000 (one year)")
    description: str | None = Field(None, max_length=300, description="Your own note about the link")


class ShareUpdate(BaseModel):
    """`PATCH /v1/me/shares/{code}`: change the note or the expiry; the link itself stays."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    description: str | None = Field(None, max_length=300, description="New note ('' removes it)")
    expires_in: int | None = Field(None, description="Seconds from now, 60 to 31536000 (one year)")
    never_expires: bool = Field(False, description="Remove the expiry")


@router.post("/v1/me/shares", status_code=201, summary="Make a short share link (optional expiry)")
def create_share(
    body: ShareRequest, user: Principal = Depends(current_user), c: Container = Depends(container)
) -> dict[str, Any]:
    return c.sharing.create_share(user.user_id, body.uri, body.expires_in, body.description)


@router.get("/v1/me/shares", summary="The caller's share links, newest first, with their clicks")
def list_shares(
    limit: int = 20,
    offset: int = 0,
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> dict[str, Any]:
    return c.sharing.shares(user.user_id, limit=limit, offset=offset)


@router.get("/v1/me/shares/{code}", summary="One of the caller's share links")
def get_share(
    code: str, user: Principal = Depends(current_user), c: Container = Depends(container)
) -> dict[str, Any]:
    return c.sharing.share(user.user_id, code)


@router.patch("/v1/me/shares/{code}", summary="Change a share link's note or expiry (its URL stays)")
def update_share(
    code: str, body: ShareUpdate, user: Principal = Depends(current_user), c: Container = Depends(container)
) -> dict[str, Any]:
    return c.sharing.update_share(
        user.user_id,
        code,
        description=body.description,
        expires_in=body.expires_in,
        never_expires=body.never_expires,
    )


@router.delete("/v1/me/shares/{code}", status_code=204, summary="Delete a share link (it then 404s)")
def delete_share(
    code: str, user: Principal = Depends(current_user), c: Container = Depends(container)
) -> Response:
    c.sharing.delete_share(user.user_id, code)
    return Response(status_code=204)
