"""`/rest/<method>` and `/rest/<method>.view`, GET and form POST: one plain Starlette route.

It parses the parameters, authenticates, runs the method's handler (on the event loop when the
handler is cheap, in the thread pool otherwise) and writes the answer in the asked format.
Every failure a client can cause is a Subsonic error with HTTP 200, never a 500 or a traceback.
"""

from __future__ import annotations

import structlog
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tonearm.bootstrap import Container
from tonearm.kernel.errors import TonearmError
from tonearm.subsonic import handlers  # noqa: F401 (registers every method)
from tonearm.subsonic.auth import authenticate
from tonearm.subsonic.objects import ReadCaches
from tonearm.subsonic.protocol import (
    GENERIC,
    METHODS,
    NOT_AUTHORIZED,
    NOT_FOUND,
    Call,
    Params,
    Payload,
    SubsonicError,
    encode,
    error_payload,
    parse_format,
)

log = structlog.get_logger(__name__)
MAX_FORM_BYTES = 1 << 20  # a form POST carries parameters (long playlists), not files
# Tonearm's own errors raised by the services map onto Subsonic's codes by HTTP status.
_BY_STATUS = {401: 40, 403: NOT_AUTHORIZED, 404: NOT_FOUND, 400: GENERIC, 409: GENERIC, 429: GENERIC}


def _answer(
    fmt: str, callback: str | None, payload: Payload, *, failed: bool = False, status: int = 200
) -> Response:
    body, media_type = encode(fmt, payload, callback, failed=failed)
    return Response(body, status_code=status, media_type=media_type, headers={"Cache-Control": "no-store"})


def _error(fmt: str, callback: str | None, err: SubsonicError, *, status: int = 200) -> Response:
    payload = error_payload(err)
    if fmt == "xml":
        payload["error"].pop("helpUrl", None)  # not in the XSD
    return _answer(fmt, callback, payload, failed=True, status=status)


async def rest(request: Request) -> Response:
    name = request.path_params["method"]
    if name.endswith(".view"):
        name = name[:-5]
    body = b""
    if request.method == "POST":
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/x-www-form-urlencoded"):
            body = await request.body()
            if len(body) > MAX_FORM_BYTES:
                return _error("xml", None, SubsonicError(GENERIC, "Form body too large"))
    params = Params.parse(request.url.query, body)
    fmt = parse_format(params)
    callback = params.all("callback")[0] if "callback" in params else None
    method = METHODS.get(name)
    if method is None:
        return _error(fmt, callback, SubsonicError(GENERIC, f"Unknown method: {name[:60]}"), status=404)
    c: Container = request.app.state.container
    client = (params.all("c") or ["unknown"])[0][:100]
    try:
        caller = None
        if method.auth:
            ip = request.client.host if request.client else "?"
            caller = (
                authenticate(c, params, ip)
                if c.db.sqlite
                else await run_in_threadpool(authenticate, c, params, ip)
            )
        call = Call(c, request, params, caller, client, fmt)
        result = (
            method.fn(call)
            if (method.inline if method.inline is not None else c.db.sqlite)
            else await run_in_threadpool(method.fn, call)
        )
    except SubsonicError as err:
        return _error(fmt, callback, err)
    except TonearmError as err:
        return _error(fmt, callback, SubsonicError(_BY_STATUS.get(err.status, GENERIC), err.message))
    except Exception:
        log.exception("subsonic_method_failed", method=name)
        return _error(fmt, callback, SubsonicError(GENERIC, "Internal error; the server log has the details"))
    if isinstance(result, Response):
        for key, value in call.extra_headers.items():
            result.headers[key] = value
        return result
    return _answer(fmt, callback, result)


def read_caches(c: Container) -> ReadCaches:
    """The caches an app's Subsonic answers share (http/app.py keeps them on `app.state`)."""
    return ReadCaches.following(c.catalog)


ROUTES = [Route("/rest/{method}", rest, methods=["GET", "POST"])]
