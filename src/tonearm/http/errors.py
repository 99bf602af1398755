"""Every error leaves as the Spotify error object `{"error": {"status": N, "message": "..."}}`."""

from __future__ import annotations

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from tonearm.domains.accounts.service import AuthError
from tonearm.http.responses import JSON
from tonearm.kernel.errors import TonearmError

log = structlog.get_logger("tonearm.http")


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None, extra: dict[str, object] | None = None
) -> JSON:
    body = {"status": status, "message": message, **(extra or {})}
    return JSON({"error": body}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(
            str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path", "header", "form")
        )
        parts.append(f"{loc or 'request'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install(app: FastAPI) -> None:
    @app.exception_handler(TonearmError)
    async def tonearm_error(_: Request, exc: TonearmError) -> JSON:
        retry = exc.retry_after_s
        headers = {"Retry-After": str(retry)} if retry is not None else None
        return error_response(exc.status, exc.message, headers, exc.extra)

    @app.exception_handler(AuthError)
    async def auth_error(_: Request, exc: AuthError) -> JSON:
        # The token endpoint answers in OAuth2's own shape (RFC 6749 §5.2), as Spotify's does.
        status = 400
        return JSON({"error": exc.error, "error_description": exc.description}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSON:
        return error_response(400, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSON:
        message = exc.detail if isinstance(exc.detail, str) else "error"
        if exc.status_code == 404 and message == "Not Found":
            message = "Service not found"
        return error_response(exc.status_code, message, dict(exc.headers) if exc.headers else None)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSON:
        log.exception("http.unhandled", path=request.url.path)
        return error_response(500, "Internal server error; the incident has been logged")
