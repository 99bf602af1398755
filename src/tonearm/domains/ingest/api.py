"""Uploads: `POST /v1/me/uploads` streams the body to disk (never into memory), hashing as it goes,
and refuses an over-limit upload as soon as it crosses the limit."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from fastapi import APIRouter, Depends, Query, Request, Response
from python_multipart.multipart import MultipartParser, parse_options_header

from tonearm.bootstrap import Container
from tonearm.domains.accounts.service import Principal
from tonearm.domains.ingest.schemas import TrackEdit
from tonearm.domains.ingest.service import ReceivedFile
from tonearm.domains.ingest.sniff import safe_filename
from tonearm.http.auth import container, current_user
from tonearm.kernel.errors import BadRequest, PayloadTooLarge
from tonearm.kernel.paging import check_window, page

if TYPE_CHECKING:
    from python_multipart.multipart import (
        MultipartCallbacks,  # a TypedDict that exists for type checkers only
    )

router = APIRouter(tags=["ingest"])


class _Sink:
    """Collects the `file` part of a multipart body into a temp file, and small text fields."""

    def __init__(self, tmp_dir: Path, limit: int) -> None:
        self.limit = limit
        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="upload-")
        self.fh = os.fdopen(fd, "wb")
        self.path = Path(name)
        self.sha = hashlib.sha256()
        self.size = 0
        self.head = b""
        self.filename: str | None = None
        self.fields: dict[str, str] = {}
        self._field_name: str | None = None
        self._field_buf = b""
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._is_file = False
        self.saw_file = False

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda d, s, e: self._add("_header_field", d[s:e]),
            "on_header_value": lambda d, s, e: self._add("_header_value", d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_done,
            "on_part_data": self._data,
            "on_part_end": self._part_end,
        }

    def _add(self, attr: str, data: bytes) -> None:
        setattr(self, attr, getattr(self, attr) + data)

    def _part_begin(self) -> None:
        self._headers, self._field_name, self._field_buf, self._is_file = {}, None, b"", False

    def _header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field, self._header_value = b"", b""

    def _headers_done(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        if name == "file":
            if self.saw_file:
                raise BadRequest("file: send exactly one file per upload")
            self._is_file = self.saw_file = True
            self.filename = safe_filename(params.get(b"filename", b"upload").decode("utf-8", "replace"))
        else:
            self._field_name = name

    def _data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._is_file:
            self.size += len(chunk)
            if self.size > self.limit:
                raise PayloadTooLarge(f"file: larger than the {self.limit} byte limit")
            if len(self.head) < 64:
                self.head += chunk[: 64 - len(self.head)]
            self.sha.update(chunk)
            self.fh.write(chunk)
        elif self._field_name is not None:
            self._field_buf += chunk
            if len(self._field_buf) > 1000:
                raise BadRequest(f"{self._field_name}: field too long")

    def _part_end(self) -> None:
        if self._field_name is not None:
            self.fields[self._field_name] = self._field_buf.decode("utf-8", "replace")


@router.post("/v1/me/uploads", status_code=202)
async def upload(
    request: Request, user: Principal = Depends(current_user), c: Container = Depends(container)
) -> dict[str, Any]:
    """Multipart upload with one part named `file` (and optionally `visibility`: private|public)."""
    c.ingest.check_rate(user.user_id)
    limit = c.ingest.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise PayloadTooLarge(f"file: larger than the {limit} byte limit")
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise BadRequest("Content-Type must be multipart/form-data with a part named 'file'")
    sink = _Sink(c.ingest.tmp_dir, limit)
    try:
        parser = MultipartParser(params[b"boundary"], cast("MultipartCallbacks", sink.callbacks()))
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
        sink.fh.close()
        if not sink.saw_file:
            raise BadRequest("file: the multipart body has no part named 'file'")
        received = ReceivedFile(
            sink.path, sink.filename or "upload", sink.size, sink.sha.hexdigest(), sink.head
        )
        visibility = sink.fields.get("visibility", "private")
        upload_id = c.ingest.receive(user.user_id, received, visibility=visibility)
    finally:
        sink.fh.close()
        sink.path.unlink(missing_ok=True)
    return c.ingest.upload_status(upload_id, user.user_id)


@router.get("/v1/me/uploads/{upload_id}")
def upload_status(
    upload_id: str, user: Principal = Depends(current_user), c: Container = Depends(container)
) -> dict[str, Any]:
    return c.ingest.upload_status(upload_id, user.user_id)


@router.get("/v1/me/uploads")
def list_uploads(
    limit: int = Query(20),
    offset: int = Query(0),
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> dict[str, Any]:
    check_window(limit, offset)
    items, total = c.ingest.list_uploads(user.user_id, limit=limit, offset=offset)
    return page(
        f"{c.settings.public_url.rstrip('/')}/v1/me/uploads", items, limit=limit, offset=offset, total=total
    )


@router.patch("/v1/tracks/{track_id}", status_code=200)
def edit_track(
    track_id: str, body: TrackEdit, user: Principal = Depends(current_user), c: Container = Depends(container)
) -> dict[str, Any]:
    """The uploader edits their track (name, description, explicit, visibility, genres); search
    results follow within a second. Answers the updated track object."""
    c.ingest.edit_track(user, track_id, body)
    return c.catalog.track(track_id, user.user_id)


@router.delete("/v1/tracks/{track_id}", status_code=204)
def delete_track(
    track_id: str, user: Principal = Depends(current_user), c: Container = Depends(container)
) -> Response:
    """The uploader deletes their track with its renditions; it leaves search results within a second."""
    c.ingest.delete_own_track(user, track_id)
    return Response(status_code=204)
