"""Spotify-style identifiers: 22-character base-62 strings from 128 random bits.

Random (not sequential) ids keep catalog size and sign-up order private, and match what
Spotify clients expect to parse (`tonearm:track:<22 chars>` mirrors `spotify:track:<id>`).
"""

from __future__ import annotations

import re
import secrets

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ID_LENGTH = 22
_ID_RE = re.compile(r"^[0-9A-Za-z]{22}$")


def new_id() -> str:
    """A fresh 22-character base-62 id (2**128 > 62**21, so 22 digits always suffice)."""
    n = secrets.randbits(128)
    out = []
    for _ in range(ID_LENGTH):
        n, r = divmod(n, 62)
        out.append(ALPHABET[r])
    return "".join(reversed(out))


def is_valid_id(value: str) -> bool:
    return bool(_ID_RE.match(value))


def uri(kind: str, id_: str) -> str:
    return f"tonearm:{kind}:{id_}"
