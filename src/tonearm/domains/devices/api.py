"""Registered devices and offline downloads: `/v1/me/devices/...`, and the encrypted files at
`/offline/{track}/{rendition}.tenc` (a plain Starlette route, like streaming's byte endpoints:
authorized by the URL's signature and the download's row, never by a path from the request).
See docs/offline.md for the licence and file formats."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route
from starlette.types import ASGIApp

from tonearm.bootstrap import Container
from tonearm.domains.accounts.service import Principal
from tonearm.domains.devices.schemas import DeviceIn, DeviceRename, DownloadRequest, TrackIds
from tonearm.domains.devices.service import OfflineFile
from tonearm.http.auth import container, current_user
from tonearm.http.byteranges import AccelResponse, BlobResponse, Representation
from tonearm.kernel.errors import Forbidden

router = APIRouter(tags=["devices"])


def _json(value: object, status_code: int = 200) -> Response:
    return Response(
        orjson.dumps(value),
        status_code=status_code,
        media_type="application/json",
        headers={"Cache-Control": "no-store"},  # device keys and licences stay out of caches
    )


@router.get("/v1/me/devices", summary="The listener's registered devices")
def list_devices(user: Principal = Depends(current_user), c: Container = Depends(container)) -> Response:
    """`{"devices": [{id, name, kind, created_at, last_seen_at, licences_renewed_at, downloads}]}`;
    `downloads` counts the active ones."""
    return _json({"devices": c.devices.list_devices(user.user_id)})


@router.post("/v1/me/devices", status_code=201, summary="Register a device (at most 5 per account)")
def register_device(
    body: DeviceIn, user: Principal = Depends(current_user), c: Container = Depends(container)
) -> Response:
    """The answer carries `device_key` (base64url, 32 bytes): the key this device's licences are
    wrapped with. It is shown this once; keep it in the device's secure storage."""
    return _json(c.devices.register(user.user_id, body.name, body.kind), 201)


@router.patch("/v1/me/devices/{device_id}", summary="Rename a device")
def rename_device(
    device_id: str,
    body: DeviceRename,
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> Response:
    return _json(c.devices.rename(user.user_id, device_id, body.name))


@router.delete("/v1/me/devices/{device_id}", status_code=204, summary="Remove a device and its downloads")
def remove_device(
    device_id: str, user: Principal = Depends(current_user), c: Container = Depends(container)
) -> Response:
    c.devices.remove(user.user_id, device_id)
    return Response(status_code=204)


@router.post(
    "/v1/me/devices/{device_id}/downloads",
    summary="Download tracks for offline play: licences and encrypted-file URLs (Premium)",
)
def issue_downloads(
    device_id: str,
    body: DownloadRequest,
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> Response:
    """Up to 10,000 tracks per call, all or none: a track that cannot be downloaded (unknown,
    private, not ready, an ad) fails the request with the reason for each. A track already on the
    device is renewed and takes no new slot. Each item: `{track_id, rendition, content_type,
    size_bytes, url, licence}`."""
    return _json(c.devices.issue(user.user_id, device_id, body.ids, body.rendition))


@router.get("/v1/me/devices/{device_id}/downloads", summary="The device's downloads and their state")
def list_downloads(
    device_id: str,
    request: Request,
    limit: int = Query(50, description="1 to 1000"),
    offset: int = 0,
    state: Annotated[str | None, Query(description="active, expired or revoked")] = None,
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> Response:
    """Oldest first. `state`: `active`; `expired` (renew the licences online); `revoked` (delete
    the file; `revoke_reason` says why: removed, device_removed, premium_ended, not_downloadable)."""
    href = f"{c.settings.public_url.rstrip('/')}{request.url.path}"
    return _json(
        c.devices.downloads(user.user_id, device_id, limit=limit, offset=offset, state=state, href=href)
    )


@router.delete("/v1/me/devices/{device_id}/downloads", summary="Remove downloads from a device")
def remove_downloads(
    device_id: str,
    body: TrackIds,
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> Response:
    return _json({"removed": c.devices.remove_downloads(user.user_id, device_id, body.ids)})


@router.post(
    "/v1/me/devices/{device_id}/licences/renew",
    summary="Renew the device's offline licences online (Premium)",
)
def renew_licences(
    device_id: str, user: Principal = Depends(current_user), c: Container = Depends(container)
) -> Response:
    """Every download still allowed gets a fresh licence, valid 30 more days, and a new URL; those
    no longer allowed are revoked and listed in `revoked`. Without Premium: 403, and the device's
    downloads are revoked."""
    return _json(c.devices.renew(user.user_id, device_id))


# The encrypted file ----------------------------------------------------------------------------
async def offline_file_route(request: Request) -> Response | ASGIApp:
    c: Container = request.app.state.container
    q = request.query_params
    user_id = q.get("u", "")

    def resolve() -> OfflineFile:
        # A signed URL is a capability; a caller that also shows a token must be its owner.
        if "authorization" in request.headers and current_user(request).user_id != user_id:
            raise Forbidden("this download URL was issued to another user")
        return c.devices.offline_file(
            request.path_params["track_id"],
            request.path_params["file"],
            user_id,
            q.get("d", ""),
            q.get("exp", ""),
            q.get("sig", ""),
        )

    f = await run_in_threadpool(resolve)
    return _send(c, request, f)


def _send(c: Container, request: Request, f: OfflineFile) -> Response | ASGIApp:
    """By the cheapest path, as streaming sends audio: nginx, a local file, or a presigned URL."""
    # Revalidated on every use (no-cache): a revoked download must stop being served.
    extra = {
        "Cache-Control": "private, no-cache",
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Expose-Headers": "Content-Length, Content-Range, Accept-Ranges, ETag",
    }
    rep = Representation(
        size=f.size,
        etag=f.etag,
        last_modified=f.last_modified.replace(microsecond=0),
        content_type=f.content_type,
    )
    settings = c.settings
    if settings.stream_delivery == "accel":
        return AccelResponse(f"{settings.accel_prefix.rstrip('/')}/{f.blob_key}", rep, extra_headers=extra)
    path = c.blobs.local_path(f.blob_key)
    if path is not None:
        return BlobResponse(path, rep, request.headers, request.method, extra_headers=extra)
    url = c.blobs.presigned_url(f.blob_key, 600)
    if url:
        return RedirectResponse(url, status_code=302, headers=extra)
    return StreamingResponse(_chunks(c, f.blob_key), media_type=f.content_type, headers=extra)


async def _chunks(c: Container, key: str) -> AsyncIterator[bytes]:
    with c.blobs.open(key) as fh:
        while chunk := await run_in_threadpool(fh.read, 1 << 16):
            yield chunk


ROUTES = [Route("/offline/{track_id}/{file}", offline_file_route, methods=["GET", "HEAD"])]
