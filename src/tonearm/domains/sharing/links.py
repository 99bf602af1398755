"""What a shared reference names: a `tonearm:{type}:{id}` URI (or Spotify's `spotify:` spelling of
it), one of this server's own page URLs, or a short link `/s/{code}`.

Parsing is all there is: nothing here (or anywhere in sharing) ever fetches a URL. A URL whose
host is not `public_url`'s is simply not ours (NotFound), whatever it points at, so oEmbed and
resolve cannot be turned into a request forgery.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args
from urllib.parse import SplitResult, urlsplit

from tonearm.kernel.errors import BadRequest, NotFound
from tonearm.kernel.ids import is_valid_id

Kind = Literal["track", "album", "artist", "playlist", "user"]
KINDS: tuple[Kind, ...] = get_args(Kind)
MAX_LENGTH = 2048
_CODE_RE = re.compile(r"^[0-9A-Za-z]{6,16}$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Ref:
    """One object: a track, album, artist, playlist or user."""

    kind: Kind
    id: str

    @property
    def uri(self) -> str:
        return f"tonearm:{self.kind}:{self.id}"


@dataclass(frozen=True, slots=True)
class ShortLink:
    code: str


def is_code(value: str) -> bool:
    return bool(_CODE_RE.match(value))


def kind_of(value: str) -> Kind | None:
    return next((k for k in KINDS if k == value), None)


def parse_uri(text: str, *, field: str = "uri") -> Ref:
    """`tonearm:track:<id>` (or `spotify:track:<id>`) as a Ref; BadRequest saying what is wrong."""
    parts = text.split(":")
    if len(parts) != 3 or parts[0].lower() not in ("tonearm", "spotify"):
        raise BadRequest(f"{field}: {text[:60]!r} is not a URI like tonearm:track:<id>")
    kind = kind_of(parts[1])
    if kind is None:
        raise BadRequest(f"{field}: unknown type {parts[1][:20]!r} (use one of {', '.join(KINDS)})")
    if not is_valid_id(parts[2]):
        raise BadRequest(f"{field}: invalid {kind} id {parts[2][:40]!r}: ids are 22 base-62 characters")
    return Ref(kind, parts[2])


def parse_reference(text: str | None, public_url: str, *, field: str = "url") -> Ref | ShortLink:
    """A URI, or a URL of one of our pages (`/track/<id>`, `/embed/track/<id>`, `/s/<code>`, ...).

    Raises BadRequest for what is not a URI or an absolute URL at all, and NotFound for a
    well-formed reference to anything else (another host, another scheme, another path)."""
    text = (text or "").strip()
    if not text:
        raise BadRequest(f"{field}: missing; give a Tonearm page URL or a tonearm: URI")
    if len(text) > MAX_LENGTH:
        raise BadRequest(f"{field}: longer than {MAX_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise BadRequest(f"{field}: must not contain spaces or control characters")
    scheme = text.split(":", 1)[0].lower()
    if scheme in ("tonearm", "spotify"):
        return parse_uri(text, field=field)
    try:
        url = urlsplit(text)
        port = url.port  # raises ValueError for a port that is not a number in range
    except ValueError as exc:
        raise BadRequest(f"{field}: {text[:60]!r} is not a valid URL") from exc
    if not url.scheme or (url.scheme in _DEFAULT_PORTS and not url.netloc):
        raise BadRequest(f"{field}: {text[:60]!r} is not an absolute URL or a tonearm: URI")
    if not _ours(url, port, urlsplit(public_url)):  # file:, ftp:, another host: not ours
        raise NotFound(f"{field}: not a Tonearm page on this server")
    return _route(url.path, field)


def _ours(url: SplitResult, port: int | None, public: SplitResult) -> bool:
    scheme = url.scheme.lower()
    if scheme not in _DEFAULT_PORTS or url.username is not None or url.password is not None:
        return False
    if (url.hostname or "") != (public.hostname or "").lower():
        return False
    if port is None and public.port is None:
        return True  # http and https of our host are both ours
    return (port or _DEFAULT_PORTS[scheme]) == (public.port or _DEFAULT_PORTS.get(public.scheme, 0))


def _route(path: str, field: str) -> Ref | ShortLink:
    parts = [p for p in path.split("/") if p]
    if parts and parts[0] == "embed":
        parts = parts[1:]
    if len(parts) == 2 and parts[0] == "s" and is_code(parts[1]):
        return ShortLink(parts[1])
    kind = kind_of(parts[0]) if len(parts) == 2 else None
    if kind is None:
        raise NotFound(f"{field}: not a link to a Tonearm track, album, artist, playlist or user page")
    if not is_valid_id(parts[1]):
        raise NotFound(f"{field}: no {kind} has the id {parts[1][:40]!r} (ids are 22 base-62 characters)")
    return Ref(kind, parts[1])
