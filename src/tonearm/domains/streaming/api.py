"""Playback grant and signed progressive streaming (Starlette's FileResponse answers Range)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse, RedirectResponse, Response, StreamingResponse

from tonearm.bootstrap import Container
from tonearm.domains.accounts.service import Principal
from tonearm.http.auth import container, current_user

router = APIRouter(tags=["streaming"])


@router.get("/v1/tracks/{track_id}/playback")
def playback(
    track_id: str, user: Principal = Depends(current_user), c: Container = Depends(container)
) -> dict[str, Any]:
    return c.streaming.grant(track_id, user.user_id, user.product)


@router.get("/stream/{track_id}/{rendition}", include_in_schema=False)
def stream(
    track_id: str,
    rendition: str,
    u: str = "",
    exp: str = "",
    sig: str = "",
    c: Container = Depends(container),
) -> Response:
    target = c.streaming.resolve(track_id, rendition, u, exp, sig)
    headers = {"Cache-Control": "private, max-age=3600"}
    path = c.blobs.local_path(target.blob_key)
    if path is not None:
        return FileResponse(path, media_type=target.content_type, headers=headers)
    url = c.blobs.presigned_url(target.blob_key, 600)
    if url:
        return RedirectResponse(url, status_code=302)
    return StreamingResponse(_chunks(c, target.blob_key), media_type=target.content_type, headers=headers)


def _chunks(c: Container, key: str) -> Iterator[bytes]:
    """The last resort for a store with neither a local path nor presigned URLs; closes the blob
    when the response ends or the client goes away."""
    with c.blobs.open(key) as fh:
        while chunk := fh.read(1 << 16):
            yield chunk
