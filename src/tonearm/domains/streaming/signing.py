"""Signed, expiring stream URLs.

A URL is a capability: `?u=<user>&exp=<unix s>&sig=<mac>` where the MAC (HMAC-SHA256, 144 bits)
covers the track, the resource (which rendition, and whether playlist or bytes), the user, the
expiry and any extra parameter (the quality cap of a master playlist). Changing any of them, or
using the URL after `exp`, fails. Nothing in the URL is a file path: resources are names we
validate against a fixed grammar, and blob keys never leave the server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import quote

from tonearm.kernel.errors import Forbidden


class UrlSigner:
    def __init__(self, secret_key: str) -> None:
        self._key = hashlib.sha256(b"stream:" + secret_key.encode()).digest()

    def sign(self, track_id: str, resource: str, user_id: str, exp: int, extra: str = "") -> str:
        msg = f"{track_id}|{resource}|{user_id}|{exp}|{extra}".encode()
        return base64.urlsafe_b64encode(hmac.new(self._key, msg, hashlib.sha256).digest()[:18]).decode()

    def query(self, track_id: str, resource: str, user_id: str, exp: int, extra: str = "") -> str:
        """The query string (without `?`) that makes a URL for `resource` valid until `exp`."""
        sig = self.sign(track_id, resource, user_id, exp, extra)
        q = f"u={quote(user_id)}&exp={exp}&sig={sig}"
        return f"{q}&q={quote(extra)}" if extra else q

    def verify(self, track_id: str, resource: str, user_id: str, exp: str, sig: str, extra: str = "") -> int:
        """Returns the expiry, or raises Forbidden saying precisely what is wrong."""
        if not (user_id and exp and sig):
            raise Forbidden("this stream URL is not signed; ask for a playback grant first")
        if not exp.isdigit() or len(exp) > 12:
            raise Forbidden("invalid stream URL expiry")
        expires = int(exp)
        if expires < time.time():  # first: an old URL says so, whatever else is wrong with it
            raise Forbidden("this stream URL has expired; ask for a new playback grant")
        if not hmac.compare_digest(self.sign(track_id, resource, user_id, expires, extra), sig):
            raise Forbidden("invalid stream signature: the URL was altered or belongs to another grant")
        return expires
