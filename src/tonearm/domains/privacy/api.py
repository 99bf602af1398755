"""The listener's data: exports (`/v1/me/exports`, and the signed download link) and deleting
the account (`DELETE /v1/me`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask

from tonearm.bootstrap import Container
from tonearm.domains.accounts.service import Principal
from tonearm.http.auth import container, current_user
from tonearm.kernel.errors import Forbidden

router = APIRouter(tags=["privacy"])


class AccountDeletion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(min_length=1, max_length=1024, description="The account's password, again.")


@router.post("/v1/me/exports", status_code=202, summary="Ask for a copy of all your data")
def request_export(
    user: Principal = Depends(current_user), c: Container = Depends(container)
) -> dict[str, Any]:
    """Starts building a ZIP of JSON files (profile, library, playlists, every play and player
    event, uploads, share links, sessions, devices, billing) with a README. Poll `href`; when
    `status` is `ready` it carries a download link valid for 10 minutes (ask again for a fresh
    one). Exports are kept 7 days. Asking while one is being made answers that one."""
    return c.privacy.request_export(user.user_id)


@router.get("/v1/me/exports/{export_id}", summary="An export's status and, once ready, its download link")
def export_status(
    export_id: str, user: Principal = Depends(current_user), c: Container = Depends(container)
) -> dict[str, Any]:
    return c.privacy.export_status(user.user_id, export_id)


@router.get("/exports/{export_id}/archive.zip", summary="Download an export (signed link)")
def download_export(export_id: str, request: Request, c: Container = Depends(container)) -> Response:
    """The link is the authorization (a browser can follow it as is); if a token comes along,
    it must be the export owner's."""
    q = request.query_params
    user_id = q.get("u", "")
    if "authorization" in request.headers and current_user(request).user_id != user_id:
        raise Forbidden("this download link belongs to another user")
    f = c.privacy.export_file(export_id, user_id, q.get("exp", ""), q.get("sig", ""))
    headers = {"Cache-Control": "private, no-store"}
    path = c.blobs.local_path(f.blob_key)
    if path is not None:
        return FileResponse(path, media_type="application/zip", filename=f.filename, headers=headers)
    fh = c.blobs.open(f.blob_key)
    return StreamingResponse(
        iter(lambda: fh.read(1 << 16), b""),
        media_type="application/zip",
        headers=headers
        | {
            "Content-Disposition": f'attachment; filename="{f.filename}"',
            "Content-Length": str(f.size_bytes),
        },
        background=BackgroundTask(fh.close),
    )


@router.delete("/v1/me", status_code=204, tags=["accounts"], summary="Delete your account and all your data")
def delete_account(
    body: AccountDeletion, user: Principal = Depends(current_user), c: Container = Depends(container)
) -> Response:
    """Give the password again. Deletes the account with everything that is yours: library,
    playlists, history, uploads and the tracks they made (public ones too), exports, share links,
    sessions, devices. There is no undo; export your data first if you want to keep it. A wrong
    password is a 403, and too many of them a 429."""
    c.privacy.delete_account(user.user_id, body.password)
    return Response(status_code=204)
