"""`GET /v1/search` (Spotify's) and `GET /v1/search/suggest` (as-you-type suggestions).

Both are plain Starlette routes, mounted first in http/app.py: search runs on every keystroke and
FastAPI's parameter and dependency machinery would cost as much as the search itself. Their
FastAPI twins below only describe them in the OpenAPI document (they run the same handlers).
Like the catalog's reads they may be anonymous; a valid bearer token lets its user also find
their own private uploads. While the index is being failed over, responses carry
`X-Tonearm-Search: degraded`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route

from tonearm.bootstrap import Container
from tonearm.domains.search.service import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    MAX_OFFSET,
    MAX_SUGGEST,
    NeedsThread,
    SearchResult,
    parse_int,
    parse_types,
)
from tonearm.http.auth import optional_user
from tonearm.http.responses import JSON

router = APIRouter(tags=["search"])
T = TypeVar("T")
DEGRADED = {"X-Tonearm-Search": "degraded"}


def _viewer(request: Request) -> str | None:
    """The user of a valid bearer token; None without one (an invalid one is a 401)."""
    if "authorization" not in request.headers:
        return None
    user = optional_user(request)
    return user.user_id if user else None


async def _run(c: Container, fn: Callable[..., T]) -> T:
    """Runs `fn(use_index=..., may_block=...)` on the event loop while the index is embedded and
    healthy and the database is SQLite (a search is a fraction of a millisecond of CPU, less than
    a thread hop), else in the thread pool, so that a slow index or a database scan never holds up
    the event loop. A search that meets something slow on the loop (the index failing: then the
    database answers) moves to a thread."""
    if c.search.inline and not c.search.breaker.is_open:
        try:
            return fn(use_index=True, may_block=False)
        except NeedsThread as slow:
            return await run_in_threadpool(fn, use_index=not slow.index_failed, may_block=True)
    return await run_in_threadpool(fn, use_index=True, may_block=True)


async def search_route(request: Request) -> Response:
    c: Container = request.app.state.container
    params = request.query_params
    types = parse_types(params.get("type"))
    limit = parse_int("limit", params.get("limit"), default=DEFAULT_LIMIT, lo=0, hi=MAX_LIMIT)
    offset = parse_int("offset", params.get("offset"), default=0, lo=0, hi=MAX_OFFSET)
    q = params.get("q")

    def run(*, use_index: bool, may_block: bool) -> SearchResult:
        return c.search.search_json(
            q,
            types,
            limit=limit,
            offset=offset,
            viewer_id=_viewer(request),  # may read the database: in here, not on the loop
            use_index=use_index,
            may_block=may_block,
        )

    result = await _run(c, run)
    return Response(result.json, media_type="application/json", headers=DEGRADED if result.degraded else None)


async def suggest_route(request: Request) -> Response:
    c: Container = request.app.state.container
    limit = parse_int("limit", request.query_params.get("limit"), default=8, lo=1, hi=MAX_SUGGEST)
    q = request.query_params.get("q")

    def run(*, use_index: bool, may_block: bool) -> JSON:
        body, degraded = c.search.suggestions(
            q, viewer_id=_viewer(request), limit=limit, use_index=use_index, may_block=may_block
        )
        return JSON(body, headers=DEGRADED if degraded else None)

    return await _run(c, run)


ROUTES = [
    Route("/v1/search/suggest", suggest_route, methods=["GET"]),
    Route("/v1/search", search_route, methods=["GET"]),
]


@router.get("/v1/search", summary="Search tracks, artists, albums and playlists (Spotify's shape)")
async def search(
    request: Request,
    q: str = Query(
        ...,
        description='Words, "quoted phrases" and filters: artist:, album:, track:, genre:, '
        "year:1999 or year:1990-1999. The last word matches as a prefix while typing (no trailing "
        "space); words tolerate typos; case and accents never matter.",
    ),
    type: str = Query(
        ...,
        description="Comma-separated: track, artist, album, playlist. show, episode and audiobook "
        "are accepted and always empty (Tonearm has none).",
    ),
    limit: int = Query(DEFAULT_LIMIT, description=f"Results per type, 0 to {MAX_LIMIT}."),
    offset: int = Query(0, description=f"Index of the first result, 0 to {MAX_OFFSET}."),
) -> Response:
    return await search_route(request)


@router.get(
    "/v1/search/suggest",
    summary="As-you-type suggestions: tracks, artists, albums, public playlists and genres",
)
async def suggest(
    request: Request,
    q: str = Query(..., description="What is typed so far."),
    limit: int = Query(8, description=f"Suggestions, 1 to {MAX_SUGGEST}."),
) -> Response:
    return await suggest_route(request)
