"""Playback grant, HLS playlists and signed byte endpoints.

The byte and playlist endpoints are plain Starlette routes (mounted first in http/app.py): they
are the hottest paths in the product and FastAPI's dependency solving costs more than their
work. Authorization is the URL's signature; nothing here reads a path from the request.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route
from starlette.types import ASGIApp

from tonearm.bootstrap import Container
from tonearm.domains.streaming.service import (
    HLS_CONTENT_TYPE,
    PLAYLIST_CONTENT_TYPE,
    Rendition,
)
from tonearm.http.auth import current_user
from tonearm.http.byteranges import AccelResponse, BlobResponse, Representation
from tonearm.kernel.errors import Forbidden, NotFound

router = APIRouter(tags=["streaming"])
T = TypeVar("T")


def _c(request: Request) -> Container:
    c: Container = request.app.state.container
    return c


async def _call(c: Container, fn: Callable[[], T], *, inline: bool) -> T:
    """Work that may touch the database or run ffmpeg goes to the thread pool, except cached or
    embedded-SQLite lookups, which cost less than the thread hop."""
    return fn() if inline else await run_in_threadpool(fn)


@router.get(
    "/v1/tracks/{track_id}/playback",
    summary="Playback grant: signed, expiring URLs for what this listener may play now",
)
async def playback(
    track_id: str,
    request: Request,
    format: str | None = Query(
        None, description="Also grant this rendition, transcoded on first use (e.g. opus_96, mp3_128)."
    ),
) -> Response:
    """Quality follows the listener's plan (EntitlementService); without `ad_free` the grant may
    carry `ad`, an audio ad the player MUST play first (see domains/entitlements/ads.py)."""
    c = _c(request)

    def grant() -> bytes:
        ent = c.entitlements.for_user(current_user(request).user_id)
        return c.entitlements.grant(track_id, ent, fmt=format)

    # No database write on this path (ads are counted in memory and written behind it, unless
    # its queue is full): cached lookups and embedded-SQLite reads (cache misses) run inline, as
    # they cost less than the hop.
    body = await _call(c, grant, inline=c.db.sqlite)
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})


async def playback_route(request: Request) -> Response:
    return await playback(request.path_params["track_id"], request, request.query_params.get("format"))


def _check_bearer(request: Request, user_id: str) -> None:
    """A signed URL is a capability; if the caller also presents a token, it must be the URL's owner."""
    if "authorization" in request.headers and current_user(request).user_id != user_id:
        raise Forbidden("this stream URL was granted to another user")


def _signed(request: Request) -> tuple[str, str, str]:
    q = request.query_params
    return q.get("u", ""), q.get("exp", ""), q.get("sig", "")


def _headers(exp: str) -> dict[str, str]:
    """Cacheable by the listener's browser until the URL expires; readable by players on other
    origins (the signature, not the origin, is what authorizes)."""
    left = max(0, int(exp) - math.ceil(time.time())) if exp.isdigit() and len(exp) <= 12 else 0
    return {
        "Cache-Control": f"private, max-age={left}",
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Expose-Headers": "Content-Length, Content-Range, Accept-Ranges, ETag",
    }


async def master_route(request: Request) -> Response:
    c = _c(request)
    track_id = request.path_params["track_id"]
    u, exp, sig = _signed(request)
    cap = request.query_params.get("q", "")
    _check_bearer(request, u)
    warm = c.streaming.warm(track_id)
    text = await _call(c, lambda: c.streaming.master_playlist(track_id, u, exp, sig, cap), inline=warm)
    return Response(text, media_type=PLAYLIST_CONTENT_TYPE, headers=_headers(exp))


async def dash_route(request: Request) -> Response:
    c = _c(request)
    track_id = request.path_params["track_id"]
    u, exp, sig = _signed(request)
    cap = request.query_params.get("q", "")
    _check_bearer(request, u)
    warm = c.streaming.warm(track_id)
    text = await _call(c, lambda: c.streaming.dash_manifest(track_id, u, exp, sig, cap), inline=warm)
    return Response(text, media_type="application/dash+xml", headers=_headers(exp))


async def hls_file_route(request: Request) -> Response | ASGIApp:
    c = _c(request)
    track_id = request.path_params["track_id"]
    name, _, ext = request.path_params["file"].rpartition(".")
    u, exp, sig = _signed(request)
    _check_bearer(request, u)
    warm = c.streaming.warm(track_id, name, hls=True)
    if ext == "m3u8":
        text = await _call(c, lambda: c.streaming.media_playlist(track_id, name, u, exp, sig), inline=warm)
        return Response(text, media_type=PLAYLIST_CONTENT_TYPE, headers=_headers(exp))
    if ext != "mp4":
        raise NotFound("no such stream file: HLS serves <rendition>.m3u8 and <rendition>.mp4")
    r = await _call(c, lambda: c.streaming.segment_file(track_id, name, u, exp, sig), inline=warm)
    assert r.hls_blob_key is not None and r.hls is not None
    return _bytes(c, request, r.hls_blob_key, r.hls.size_bytes, f'"{r.id}h"', r, HLS_CONTENT_TYPE, exp)


async def stream_route(request: Request) -> Response | ASGIApp:
    c = _c(request)
    track_id = request.path_params["track_id"]
    name = request.path_params["rendition"]
    u, exp, sig = _signed(request)
    _check_bearer(request, u)
    warm = c.streaming.warm(track_id, name)
    r = await _call(c, lambda: c.streaming.progressive(track_id, name, u, exp, sig), inline=warm)
    return _bytes(c, request, r.blob_key, r.size_bytes, f'"{r.id}"', r, r.content_type, exp)


def _bytes(
    c: Container,
    request: Request,
    key: str,
    size: int,
    etag: str,
    r: Rendition,
    content_type: str,
    exp: str,
) -> Response | ASGIApp:
    """Sends a blob by the cheapest path: nginx (X-Accel-Redirect), sendfile-like reads of a local
    file, or a redirect to the object store's presigned URL."""
    extra = _headers(exp)
    rep = Representation(
        size=size,
        etag=etag,
        last_modified=r.created_at.replace(microsecond=0),
        content_type=content_type,
    )
    settings = c.settings
    if settings.stream_delivery == "accel":
        return AccelResponse(f"{settings.accel_prefix.rstrip('/')}/{key}", rep, extra_headers=extra)
    path = c.blobs.local_path(key)
    if path is not None:
        return BlobResponse(path, rep, request.headers, request.method, extra_headers=extra)
    url = c.blobs.presigned_url(key, 600)
    if url:
        return RedirectResponse(url, status_code=302, headers=extra)
    return StreamingResponse(_chunks(c, key), media_type=content_type, headers=extra)


async def _chunks(c: Container, key: str) -> AsyncIterator[bytes]:
    """The last resort for a store with neither local paths nor presigned URLs (the in-memory
    test store); closes the blob when the response ends or the client goes away."""
    with c.blobs.open(key) as fh:
        while chunk := await run_in_threadpool(fh.read, 1 << 16):
            yield chunk


ROUTES = [
    Route("/v1/tracks/{track_id}/playback", playback_route, methods=["GET"]),
    Route("/hls/{track_id}/master.m3u8", master_route, methods=["GET", "HEAD"]),
    Route("/hls/{track_id}/{file}", hls_file_route, methods=["GET", "HEAD"]),
    Route("/dash/{track_id}/manifest.mpd", dash_route, methods=["GET", "HEAD"]),
    Route("/stream/{track_id}/{rendition}", stream_route, methods=["GET", "HEAD"]),
]
