"""The Subsonic wire protocol: parameters, errors, and the XML / JSON / JSONP envelope.

A handler returns the payload of `subsonic-response` as plain data (dicts, lists, scalars); this
module writes it in the format the client asked for. The same data gives both formats:

- JSON: the data as it is, inside `{"subsonic-response": {...}}`.
- XML (the default; DSub reads nothing else): scalars become attributes, dicts child elements,
  lists repeated child elements; a `value` key is the element's text (`<genre songCount="3">Rock
  </genre>`), and the few elements the XSD defines with text content (`biography`, `notes`, ...)
  are written as such.

Handlers put OpenSubsonic's additions to an object (`genres`, `artists`, `replayGain`, ...) in
only when `Call.os` is set (JSON): the XML stays valid against the Subsonic 1.16 XSD, and the
apps that read XML know nothing of them anyway.
"""

from __future__ import annotations

import builtins
import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson

import tonearm

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from tonearm.bootstrap import Container
    from tonearm.domains.accounts.credentials import Caller

API_VERSION = "1.16.1"
SERVER_TYPE = "tonearm"
SERVER_VERSION = tonearm.__version__
XMLNS = "http://subsonic.org/restapi"

# The error codes of the specification (docs/api-reference.md).
GENERIC = 0
MISSING_PARAMETER = 10
CLIENT_TOO_OLD = 20
SERVER_TOO_OLD = 30
WRONG_CREDENTIALS = 40
TOKEN_NOT_SUPPORTED = 41
MECHANISM_NOT_SUPPORTED = 42
CONFLICTING_MECHANISMS = 43
INVALID_API_KEY = 44
NOT_AUTHORIZED = 50
NOT_FOUND = 70


class SubsonicError(Exception):
    """An error answered as Subsonic does: HTTP 200, `status="failed"` and an `error` element."""

    def __init__(self, code: int, message: str, *, help_url: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.help_url = help_url


def missing(name: str) -> SubsonicError:
    return SubsonicError(MISSING_PARAMETER, f"Required parameter is missing: {name}")


def not_found(what: str) -> SubsonicError:
    return SubsonicError(NOT_FOUND, f"{what} not found")


class Params:
    """The request's parameters: the query string plus, for a form POST (the `formPost`
    extension), the urlencoded body. Repeated names are kept (`id=1&id=2`)."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        grouped: dict[str, list[str]] = {}
        for key, value in items:
            grouped.setdefault(key, []).append(value)
        self._items = grouped

    @classmethod
    def parse(cls, query: str, body: bytes = b"") -> Params:
        pairs = parse_qsl(query, keep_blank_values=True)
        if body:
            pairs += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        return cls(pairs)

    def __contains__(self, name: str) -> bool:
        return name in self._items

    def opt(self, name: str) -> str | None:
        """A single-valued parameter, or None; given twice is an error (which one was meant?)."""
        values = self._items.get(name)
        if values is None:
            return None
        if len(values) > 1 and any(v != values[0] for v in values[1:]):
            raise SubsonicError(GENERIC, f"Parameter {name} given more than once with different values")
        return values[0]

    def req(self, name: str) -> str:
        value = self.opt(name)
        if value is None or value == "":
            raise missing(name)
        return value

    def all(self, name: str) -> list[str]:
        """Every value of a repeatable parameter (`id`, `songIdToAdd`, ...), empty ones dropped."""
        return [v for v in self._items.get(name, ()) if v != ""]

    def int(self, name: str, default: int | None = None, *, lo: int = 0, hi: int = 2**31 - 1) -> int:
        """An integer; above `hi` it is clamped (clients ask for `size=10000` and mean "as many as
        you give"), below `lo` or not a number is an error naming the parameter."""
        raw = self.opt(name)
        if raw is None or raw == "":
            if default is None:
                raise missing(name)
            return default
        try:
            value = int(raw)
        except ValueError:
            raise SubsonicError(GENERIC, f"Parameter {name} must be an integer, not {raw[:40]!r}") from None
        if value < lo:
            raise SubsonicError(GENERIC, f"Parameter {name} must be at least {lo}")
        return min(value, hi)

    def opt_int(self, name: str, *, lo: builtins.int = 0, hi: builtins.int = 2**62) -> builtins.int | None:
        if self.opt(name) in (None, ""):
            return None
        return self.int(name, lo=lo, hi=hi)

    def bool(self, name: str, default: bool) -> bool:
        raw = self.opt(name)
        if raw is None or raw == "":
            return default
        lowered = raw.lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise SubsonicError(GENERIC, f"Parameter {name} must be true or false, not {raw[:40]!r}")


@dataclass(slots=True)
class Call:
    """One request to a method: the container, who is calling and what they asked."""

    c: Container
    request: Request
    params: Params
    caller: Caller | None
    client: str
    fmt: str  # xml | json | jsonp
    extra_headers: dict[str, str] = field(default_factory=dict)

    @property
    def os(self) -> bool:
        """Include OpenSubsonic's additions to objects (JSON only; see the module docstring)."""
        return self.fmt != "xml"

    @property
    def user_id(self) -> str:
        assert self.caller is not None  # only methods with auth=True read it
        return self.caller.user_id

    @property
    def is_admin(self) -> bool:
        return self.caller is not None and self.caller.role == "admin"

    def require_admin(self) -> None:
        if not self.is_admin:
            raise SubsonicError(NOT_AUTHORIZED, "User is not authorized for the given operation")


Payload = Mapping[str, Any] | None
Handler = Callable[[Call], "Payload | Response"]


@dataclass(frozen=True, slots=True)
class Method:
    name: str
    fn: Handler
    auth: bool
    # True: cheap enough for the event loop; False: always the thread pool (ffmpeg, big reads);
    # None: the event loop on embedded SQLite (a query costs less than the thread hop), else the pool.
    inline: bool | None


METHODS: dict[str, Method] = {}


def method(name: str, *, auth: bool = True, inline: bool | None = None) -> Callable[[Handler], Handler]:
    """Registers a handler for `/rest/<name>` (and `<name>.view`)."""

    def register(fn: Handler) -> Handler:
        if name in METHODS:
            raise RuntimeError(f"Subsonic method {name} registered twice")
        METHODS[name] = Method(name, fn, auth, inline)
        return fn

    return register


# Encoding ------------------------------------------------------------------------------------

_HEAD = {
    "status": "ok",
    "version": API_VERSION,
    "type": SERVER_TYPE,
    "serverVersion": SERVER_VERSION,
    "openSubsonic": True,
}
_XML_HEAD_OK = (
    f'<?xml version="1.0" encoding="UTF-8"?>\n<subsonic-response xmlns="{XMLNS}" status="ok" '
    f'version="{API_VERSION}" type="{SERVER_TYPE}" serverVersion="{SERVER_VERSION}" openSubsonic="true"'
)
_XML_HEAD_FAILED = _XML_HEAD_OK.replace('status="ok"', 'status="failed"')
# Elements the XSD defines with text content (ArtistInfo, AlbumInfo); everything else scalar is
# an attribute.
_TEXT_ELEMENTS = frozenset(
    {"biography", "musicBrainzId", "lastFmUrl", "smallImageUrl", "mediumImageUrl", "largeImageUrl", "notes"}
)
_CALLBACK = re.compile(r"^[A-Za-z_$][\w$]{0,63}(\.[A-Za-z_$][\w$]{0,63}){0,4}$")


# One pass of str.translate escapes what an attribute or text may not hold as it is; control
# characters XML 1.0 cannot carry at all (a tag read from a file may hold one) are dropped.
_ESCAPES = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "\n": "&#10;",
        "\r": "&#13;",
        "\t": "&#9;",
        **{chr(c): None for c in range(0x20) if c not in (0x09, 0x0A, 0x0D)},
        "\ufffe": None,
        "\uffff": None,
    }
)
_SCALARS = (str, int, float)


def _text(value: Any) -> str:
    # The common types first, by exact type: the hot loop of every XML answer.
    kind = type(value)
    if kind is str:
        return value.translate(_ESCAPES)  # type: ignore[no-any-return]
    if kind is bool:
        return "true" if value else "false"
    if kind is int or kind is float:
        return str(value)
    if isinstance(value, dt.datetime):
        return iso(value)
    return str(value).translate(_ESCAPES)


def _element(out: list[str], tag: str, data: Any) -> None:
    if type(data) is not dict and not isinstance(data, Mapping):
        out.append(f"<{tag}>{_text(data)}</{tag}>")
        return
    out.append("<" + tag)
    children: list[tuple[str, Any]] = []
    text: Any = None
    for key, value in data.items():
        if value is None:
            continue
        kind = type(value)
        if kind in _SCALARS or kind is bool:
            if key == "value":
                text = value
            elif key in _TEXT_ELEMENTS:
                children.append((key, value))
            else:
                out.append(f' {key}="{_text(value)}"')
        elif key == "value":
            text = value
        elif (
            kind is dict or kind is list or isinstance(value, Mapping | list | tuple) or key in _TEXT_ELEMENTS
        ):
            children.append((key, value))
        else:
            out.append(f' {key}="{_text(value)}"')
    if not children and text is None:
        out.append("/>")
        return
    out.append(">")
    if text is not None:
        out.append(_text(text))
    for key, value in children:
        if type(value) is list or isinstance(value, list | tuple):
            for item in value:
                _element(out, key, item)
        else:
            _element(out, key, value)
    out.append(f"</{tag}>")


def to_xml(payload: Payload, *, failed: bool = False) -> bytes:
    out = [_XML_HEAD_FAILED if failed else _XML_HEAD_OK]
    if not payload:
        out.append("/>")
    else:
        out.append(">")
        for key, value in payload.items():
            if isinstance(value, list | tuple):
                for item in value:
                    _element(out, key, item)
            elif value is not None:
                _element(out, key, value)
        out.append("</subsonic-response>")
    return "".join(out).encode()


def to_json(payload: Payload, *, failed: bool = False) -> bytes:
    body: dict[str, Any] = dict(_HEAD)
    if failed:
        body["status"] = "failed"
    if payload:
        body.update(payload)
    return orjson.dumps({"subsonic-response": body}, option=orjson.OPT_NON_STR_KEYS)


def encode(fmt: str, payload: Payload, callback: str | None, *, failed: bool = False) -> tuple[bytes, str]:
    """The body and its content type."""
    if fmt == "json":
        return to_json(payload, failed=failed), "application/json"
    if fmt == "jsonp":
        name = callback if callback and _CALLBACK.match(callback) else "callback"
        return (
            name.encode() + b"(" + to_json(payload, failed=failed) + b");",
            "application/javascript",
        )
    return to_xml(payload, failed=failed), "text/xml; charset=utf-8"


def error_payload(err: SubsonicError) -> dict[str, Any]:
    body: dict[str, Any] = {"code": err.code, "message": err.message}
    if err.help_url:
        body["helpUrl"] = err.help_url
    return {"error": body}


def parse_format(params: Params) -> str:
    values = params.all("f")
    fmt = (values[0] if values else "xml").lower()
    return fmt if fmt in ("xml", "json", "jsonp") else "xml"


def iso(value: dt.datetime) -> str:
    """xs:dateTime in UTC with milliseconds, as Subsonic servers write it."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
