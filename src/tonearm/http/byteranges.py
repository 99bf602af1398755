"""Range and conditional requests (RFC 9110 §13, §14) for byte blobs, and the responses that use them.

`evaluate` is pure: from the method, the request headers and a `Representation` (size, strong ETag,
Last-Modified, Content-Type) it decides what to send as a `Plan` (200, 206, 304, 412 or 416, the
byte ranges and every header). `BlobResponse` is an ASGI response that carries out a plan from a
local file; `AccelResponse` hands the whole job to nginx (X-Accel-Redirect) instead.

Choices beyond the RFC's letter:

* A malformed `bytes` range (`bytes=abc`, `bytes=5-2`, `bytes=-5-10`, a header over 1,000
  characters, a number over 18 digits...) gets a 416 whose message names the fault and the accepted
  forms, instead of the whole file. A client that sends one has a bug; telling it beats silently
  sending megabytes it did not ask for. A range unit other than `bytes` is still ignored, as
  RFC 9110 §14.2 requires.
* Satisfiable ranges are sorted and overlapping or adjacent ones merged (RFC 9110 §14.2 allows it),
  so `bytes=0-,0-,0-` costs one pass over the file; at most `max_ranges` specs are accepted.
* The file is read with `os.pread` on the event loop, with no thread hop: blobs are local and
  almost always in the page cache, where a read costs less than handing it to a thread and back.
* Every header is decided here, Content-Length included (the exact multipart length too), except
  for 412/416, whose JSON body is rendered by the response, which sets its Content-Length.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from functools import lru_cache
from pathlib import Path

import anyio
import anyio.lowlevel
import orjson
import structlog
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

__all__ = [
    "MAX_RANGE_HEADER_CHARS",
    "AccelResponse",
    "BlobResponse",
    "Plan",
    "Representation",
    "error_response_for",
    "evaluate",
]

log = structlog.get_logger("tonearm.http")

MAX_RANGE_HEADER_CHARS = 1000
MAX_DIGITS = 18  # 10**18 - 1 still fits in 63 bits; no blob comes near it
ACCEPTED_FORMS = "accepted forms are bytes=first-last, bytes=first- and bytes=-suffix, comma-separated"

_OWS = " \t"
_DIGITS = frozenset("0123456789")  # str.isdigit() would also accept '٣' and '²'
# entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE; etagc = %x21 / %x23-7E / obs-text
_ENTITY_TAG = re.compile(r'(W/)?"[\x21\x23-\x7e\x80-\xff]*"')
_STRONG_TAG = re.compile(r'"[\x21\x23-\x7e\x80-\xff]*"')
_SAFE_METHODS = frozenset({"GET", "HEAD"})
# Headers this module decides; extra_headers cannot override them.
_OWNED = frozenset(
    {
        "accept-ranges",
        "content-length",
        "content-range",
        "content-type",
        "etag",
        "last-modified",
        "transfer-encoding",
        "x-accel-redirect",
    }
)


@dataclass(frozen=True, slots=True)
class Representation:
    """The selected representation of a blob: what validators and range arithmetic need."""

    size: int  # bytes
    etag: str  # a strong validator, already quoted: '"3fK9..."'
    last_modified: datetime  # aware; compared and sent in whole seconds
    content_type: str

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ValueError(f"size must be >= 0, not {self.size}")
        if not _STRONG_TAG.fullmatch(self.etag):
            raise ValueError(f"etag must be a quoted strong entity-tag like '\"abc\"', not {self.etag!r}")
        if self.last_modified.tzinfo is None:
            raise ValueError("last_modified must be timezone-aware")


@dataclass(frozen=True, slots=True)
class Plan:
    """What to send."""

    status: int  # 200, 206, 304, 412 or 416
    ranges: tuple[tuple[int, int], ...]  # inclusive (first, last) positions; () for whole body or none
    headers: dict[str, str]  # all headers but extra ones; Content-Length too, except for 412/416
    error: str | None  # the message of a 412/416, which the response renders as JSON
    boundary: str | None = None  # the multipart/byteranges boundary when len(ranges) > 1


@lru_cache(maxsize=4096)
def http_date(moment: datetime) -> str:
    """IMF-fixdate of `moment` to the second; cached, since every request for a blob formats the
    same few timestamps (format_datetime was 8% of a segment request)."""
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0), usegmt=True)


_INTERNAL_URI = re.compile(r"/[^\x00-\x20\x7f]*\Z")


class _BadRange(Exception):
    """A `bytes` Range header we answer with 416; the argument is the whole message."""


def evaluate(method: str, headers: Mapping[str, str], rep: Representation, *, max_ranges: int = 8) -> Plan:
    """Decides the response to `method` with request `headers` (case-insensitive lookup: starlette
    Headers, or a dict with lower-case keys) for `rep`, following RFC 9110 §13.2.2's order."""
    method = method.upper()
    last_modified = rep.last_modified.astimezone(UTC).replace(microsecond=0)
    validators = {
        "Accept-Ranges": "bytes",
        "ETag": rep.etag,
        "Last-Modified": http_date(rep.last_modified),
    }
    failed = _failed_precondition(method, headers, rep, last_modified)
    if failed is not None:
        return Plan(failed[0], (), validators, failed[1])

    whole = Plan(
        200,
        (),
        {**validators, "Content-Type": rep.content_type, "Content-Length": str(rep.size)},
        None,
    )
    range_value = headers.get("range")
    if method not in _SAFE_METHODS or range_value is None:
        return whole  # RFC 9110 §14.2: Range is defined for GET only (HEAD mirrors GET's headers)
    if_range = headers.get("if-range")
    if if_range is not None and not _if_range_holds(if_range, rep.etag, last_modified):
        return whole
    try:
        specs = _parse_byte_ranges(range_value, max_ranges)
    except _BadRange as exc:
        return _unsatisfiable(validators, rep.size, str(exc))
    if specs is None:
        return whole  # a unit other than bytes: ignored

    ranges = _coalesce(_satisfiable(specs, rep.size))
    if not ranges:
        if rep.size == 0:
            why = f"Range {_echo(range_value)} asks for bytes of an empty (0-byte) representation"
        else:
            why = (
                f"no range in {_echo(range_value)} overlaps the {rep.size}-byte representation "
                f"(positions 0-{rep.size - 1})"
            )
        return _unsatisfiable(validators, rep.size, f"range not satisfiable: {why}")

    if len(ranges) == 1:
        first, last = ranges[0]
        single = {
            **validators,
            "Content-Type": rep.content_type,
            "Content-Range": f"bytes {first}-{last}/{rep.size}",
            "Content-Length": str(last - first + 1),
        }
        return Plan(206, ranges, single, None)

    boundary = secrets.token_hex(16)
    length = len(_closing_delimiter(boundary)) + sum(
        len(_part_head(boundary, rep.content_type, first, last, rep.size, index)) + last - first + 1
        for index, (first, last) in enumerate(ranges)
    )
    multipart = {
        **validators,
        "Content-Type": f"multipart/byteranges; boundary={boundary}",
        "Content-Length": str(length),
    }
    return Plan(206, ranges, multipart, None, boundary)


def _failed_precondition(
    method: str, headers: Mapping[str, str], rep: Representation, last_modified: datetime
) -> tuple[int, str | None] | None:
    """RFC 9110 §13.2.2 steps 1-4: a 412 (with its message) or a 304, or None to go on."""
    if_match = headers.get("if-match")
    if if_match is not None:
        if not _tag_list_matches(if_match, rep.etag, weak=False):
            return 412, (
                f"precondition failed: If-Match {_echo(if_match)} does not match the current "
                f"ETag {rep.etag} (If-Match uses the strong comparison; weak tags never match)"
            )
    else:
        since = _parse_http_date(headers.get("if-unmodified-since"))
        if since is not None and last_modified > since:
            return 412, (
                f"precondition failed: modified at {format_datetime(last_modified, usegmt=True)}, "
                f"after If-Unmodified-Since {format_datetime(since, usegmt=True)}"
            )
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        if _tag_list_matches(if_none_match, rep.etag, weak=True):
            if method in _SAFE_METHODS:
                return 304, None
            return 412, f"precondition failed: If-None-Match {_echo(if_none_match)} matches the current ETag"
    elif method in _SAFE_METHODS:
        since = _parse_http_date(headers.get("if-modified-since"))
        if since is not None and last_modified <= since:
            return 304, None
    return None


def _tag_list_matches(field: str, current: str, *, weak: bool) -> bool:
    """`*` or a list of entity-tags against the (strong) current ETag. The weak comparison ignores
    a `W/` prefix; the strong one never matches a weak tag. Garbage list members are skipped."""
    field = field.strip(_OWS)
    if field == "*":
        return True
    pos = 0
    while pos < len(field):
        if field[pos] in _OWS or field[pos] == ",":
            pos += 1
            continue
        tag = _ENTITY_TAG.match(field, pos)
        if tag is None:
            comma = field.find(",", pos)
            pos = len(field) if comma < 0 else comma + 1
            continue
        is_weak = tag.group(1) is not None
        opaque = tag.group(0)[2:] if is_weak else tag.group(0)
        if opaque == current and (weak or not is_weak):
            return True
        pos = tag.end()
    return False


def _if_range_holds(value: str, current: str, last_modified: datetime) -> bool:
    """RFC 9110 §13.1.5: an entity-tag must match strongly (a weak one never does); a date must
    equal Last-Modified exactly. Anything else does not hold, so the Range is ignored."""
    value = value.strip(_OWS)
    if value.startswith(("W/", '"')):
        return value == current  # current is a valid strong tag, so equality is the comparison
    return _parse_http_date(value) == last_modified


def _parse_http_date(value: str | None) -> datetime | None:
    """IMF-fixdate, RFC 850 or asctime (RFC 9110 §5.6.7) as aware UTC; None when unparseable,
    which makes the header be ignored."""
    if value is None:
        return None
    try:
        parsed = parsedate_to_datetime(value.strip(_OWS))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:  # asctime and '-0000' carry no zone; HTTP dates are GMT
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


_Spec = tuple[int | None, int | None]  # (first, last); (None, n) is the suffix spec "-n"


def _parse_byte_ranges(value: str, max_ranges: int) -> list[_Spec] | None:
    """The specs of a `bytes` Range header; None for another unit; _BadRange when malformed."""
    unit, equals, range_set = value.partition("=")
    if unit.strip(_OWS).lower() != "bytes":
        return None

    def bad(what: str) -> _BadRange:
        return _BadRange(f"malformed Range {_echo(value)}: {what}; {ACCEPTED_FORMS}")

    if len(value) > MAX_RANGE_HEADER_CHARS:
        raise bad(f"the header is {len(value):,} characters long (at most {MAX_RANGE_HEADER_CHARS:,})")
    if not equals:
        raise bad("'bytes' is not followed by '='")
    # Empty list members ("0-1,,5-9") are allowed and skipped (RFC 9110 §5.6.1.2).
    members = [m for m in (part.strip(_OWS) for part in range_set.split(",")) if m]
    if not members:
        raise bad("no byte range after 'bytes='")
    if len(members) > max_ranges:
        raise _BadRange(
            f"too many ranges (at most {max_ranges}): Range {_echo(value)} has {len(members)}; "
            "ask for fewer, larger ranges"
        )
    specs: list[_Spec] = []
    for member in members:
        odd = next((ch for ch in member if ch not in _DIGITS and ch != "-"), None)
        if odd is not None:
            raise bad(f"{member!r} contains {odd!r}, which is neither an ASCII digit nor '-'")
        if member.count("-") != 1:
            raise bad(f"{member!r} must contain exactly one '-'")
        first, _, last = member.partition("-")
        if not first and not last:
            raise bad("'-' has neither a first-pos nor a suffix-length")
        if len(first) > MAX_DIGITS or len(last) > MAX_DIGITS:
            raise bad(f"{member!r} has a number longer than {MAX_DIGITS} digits")
        if not first:
            specs.append((None, int(last)))
        elif not last:
            specs.append((int(first), None))
        elif int(last) < int(first):
            raise bad(f"{member!r} ends before it starts (last-pos {int(last)} < first-pos {int(first)})")
        else:
            specs.append((int(first), int(last)))
    return specs


def _satisfiable(specs: list[_Spec], size: int) -> list[tuple[int, int]]:
    """Inclusive ranges within [0, size); unsatisfiable specs are dropped (RFC 9110 §14.1.1)."""
    ranges = []
    for first, last in specs:
        if first is None:
            if last and size:  # a suffix of n > 0 bytes of a non-empty representation
                ranges.append((max(0, size - last), size - 1))
        elif first < size:
            ranges.append((first, size - 1 if last is None else min(last, size - 1)))
    return ranges


def _coalesce(ranges: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return tuple(merged)


def _unsatisfiable(validators: dict[str, str], size: int, message: str) -> Plan:
    return Plan(416, (), {**validators, "Content-Range": f"bytes */{size}"}, message)


def _echo(value: str, limit: int = 80) -> str:
    """A header value quoted for an error message, cut short if long."""
    return repr(value if len(value) <= limit else value[: limit - 3] + "...")


def _part_head(boundary: str, content_type: str, first: int, last: int, size: int, index: int) -> bytes:
    """The delimiter and headers before part `index` of a multipart/byteranges body (RFC 9110 §14.6)."""
    lead = "\r\n" if index else ""  # the first delimiter opens the body; the rest follow a CRLF
    return (
        f"{lead}--{boundary}\r\nContent-Type: {content_type}\r\n"
        f"Content-Range: bytes {first}-{last}/{size}\r\n\r\n"
    ).encode("latin-1")


def _closing_delimiter(boundary: str) -> bytes:
    return f"\r\n--{boundary}--\r\n".encode("latin-1")


def _error_body(plan: Plan) -> bytes:
    return orjson.dumps({"error": {"status": plan.status, "message": plan.error}})


def error_response_for(plan: Plan) -> Response:
    """The JSON error a 412/416 plan answers with, in Tonearm's `{"error": {...}}` shape."""
    if plan.error is None:
        raise ValueError(f"a {plan.status} plan has no error to render")
    return Response(
        _error_body(plan),
        status_code=plan.status,
        headers={**plan.headers, "Content-Type": "application/json"},
    )


def _raw_headers(extra: Mapping[str, str] | None, own: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    merged = {k.lower(): v for k, v in (extra or {}).items() if k.lower() not in _OWNED}
    merged.update((k.lower(), v) for k, v in own.items())
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in merged.items()]


class _ClientGone(Exception):
    """send() failed because the client went away."""


class _Truncated(Exception):
    """The file ended before the planned bytes did; the argument is the offset it ended at."""


class BlobResponse(Response):
    """Answers a GET/HEAD for a local file per `evaluate`'s plan. An ASGI app that streams itself;
    it subclasses starlette's Response (without calling its __init__, as FileResponse does) only so
    that FastAPI routes may return it and add headers through `.headers`."""

    def __init__(
        self,
        path: Path,
        rep: Representation,
        request_headers: Mapping[str, str],
        method: str,
        *,
        extra_headers: dict[str, str] | None = None,
        chunk_size: int = 256 * 1024,
        max_ranges: int = 8,
    ) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, not {chunk_size}")
        self.path = path
        self.rep = rep
        self.chunk_size = chunk_size
        self.plan = evaluate(method, request_headers, rep, max_ranges=max_ranges)
        self.status_code = self.plan.status
        self.background = None
        self._head = method.upper() == "HEAD"
        own = dict(self.plan.headers)
        self._error = b""
        if self.plan.error is not None:
            self._error = _error_body(self.plan)
            own.update({"Content-Type": "application/json", "Content-Length": str(len(self._error))})
        self.raw_headers = _raw_headers(extra_headers, own)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def emit(message: Message) -> None:
            try:
                await send(message)
            except (OSError, ClientDisconnect) as exc:  # ASGI 2.4 servers raise OSError
                raise _ClientGone from exc

        start: Message = {
            "type": "http.response.start",
            "status": self.status_code,
            "headers": self.raw_headers,
        }
        streams_file = not self._head and self.status_code in (200, 206)
        try:
            if not streams_file:
                await emit(start)
                await emit({"type": "http.response.body", "body": b"" if self._head else self._error})
                complete = True
            else:
                # Opened before the status line goes out, so a missing file is a 500, not a broken 200.
                fd = os.open(self.path, os.O_RDONLY)
                try:
                    single = self._single_read()
                    if single is not None:
                        # The common case (an HLS segment, a player's first bytes): one read and
                        # one send; no watcher task is needed for a body sent in one message.
                        first, last = single
                        body = os.pread(fd, last - first + 1, first)
                        await emit(start)
                        if len(body) != last - first + 1:
                            await emit({"type": "http.response.body", "body": body, "more_body": True})
                            log.warning("blob.truncated", path=str(self.path), size=self.rep.size)
                            complete = False
                        else:
                            await emit({"type": "http.response.body", "body": body, "more_body": False})
                            complete = True
                    else:
                        await emit(start)
                        complete = await self._stream_until_disconnect(fd, emit, receive)
                finally:
                    os.close(fd)
        except _ClientGone:
            return
        if complete and self.background is not None:
            await self.background()

    def _single_read(self) -> tuple[int, int] | None:
        """The one byte range to send when the body fits in a single chunk, else None."""
        plan = self.plan
        if plan.boundary is not None:
            return None
        first, last = (0, self.rep.size - 1) if plan.status == 200 else plan.ranges[0]
        return (first, last) if 0 < last - first + 1 <= self.chunk_size else None

    async def _stream_until_disconnect(self, fd: int, emit: Send, receive: Receive) -> bool:
        """Streams the body while a second task waits for http.disconnect and cancels it: ASGI 2.3
        servers (uvicorn) drop sends to a gone client silently, so nothing else would stop us."""
        complete = False

        async def watch(scope: anyio.CancelScope) -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            scope.cancel()

        try:
            async with anyio.create_task_group() as group:
                group.start_soon(watch, group.cancel_scope)
                complete = await self._stream(fd, emit)
                group.cancel_scope.cancel()
        except BaseExceptionGroup as exc:  # keep the one real error's own type for the caller
            if len(exc.exceptions) == 1:
                raise exc.exceptions[0] from None
            raise
        return complete

    async def _stream(self, fd: int, emit: Send) -> bool:
        """Sends the planned bytes; False if the file turned out shorter than planned. Then the
        response is left incomplete, so the server closes the connection and the client sees a
        short body rather than a clean end or padding."""
        pending: bytes | None = None
        try:
            for piece in self._pieces(fd):
                if pending is not None:
                    await emit({"type": "http.response.body", "body": pending, "more_body": True})
                    # A send to a gone client returns without yielding; this lets the watcher run.
                    await anyio.lowlevel.checkpoint()
                pending = piece
        except _Truncated as exc:
            if pending:
                await emit({"type": "http.response.body", "body": pending, "more_body": True})
            log.warning("blob.truncated", path=str(self.path), size=self.rep.size, ended_at=exc.args[0])
            return False
        await emit({"type": "http.response.body", "body": pending or b"", "more_body": False})
        return True

    def _pieces(self, fd: int) -> Iterator[bytes]:
        plan, rep = self.plan, self.rep
        if plan.status == 200:
            yield from self._read(fd, 0, rep.size - 1)
        elif plan.boundary is None:
            yield from self._read(fd, *plan.ranges[0])
        else:
            for index, (first, last) in enumerate(plan.ranges):
                yield _part_head(plan.boundary, rep.content_type, first, last, rep.size, index)
                yield from self._read(fd, first, last)
            yield _closing_delimiter(plan.boundary)

    def _read(self, fd: int, first: int, last: int) -> Iterator[bytes]:
        # pread inline, on purpose: a page-cached read is cheaper than a thread hop (module docstring).
        pos, end = first, last + 1
        while pos < end:
            chunk = os.pread(fd, min(self.chunk_size, end - pos), pos)
            if not chunk:
                raise _Truncated(pos)
            yield chunk
            pos += len(chunk)


class AccelResponse(Response):
    """nginx mode: an empty 200 with `X-Accel-Redirect: <internal_uri>`; nginx then serves the file
    from its `internal` location and answers Range and conditional headers itself. It carries the
    validators and Content-Type nginx passes on; its own Content-Length is 0 (nginx sends the file's)."""

    def __init__(
        self, internal_uri: str, rep: Representation, *, extra_headers: dict[str, str] | None = None
    ) -> None:
        if not _INTERNAL_URI.match(internal_uri):
            raise ValueError(
                f"internal_uri must be an absolute path without spaces or controls: {internal_uri!r}"
            )
        self.status_code = 200
        self.background = None
        self.body = b""
        own = {
            "X-Accel-Redirect": internal_uri,
            "Content-Type": rep.content_type,
            "ETag": rep.etag,
            "Last-Modified": http_date(rep.last_modified),
            "Accept-Ranges": "bytes",
            # An empty body with a length: without it uvicorn answers chunked, and nginx then
            # cannot reuse the upstream keep-alive connection (it closed one per request).
            "Content-Length": "0",
        }
        self.raw_headers = _raw_headers(extra_headers, own)
