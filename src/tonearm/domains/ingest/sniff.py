"""A first look at an upload's leading bytes, so obvious non-audio is refused before it is stored.

This is only the edge check; the pipeline then verifies every file with ffprobe (content, not name).
"""

from __future__ import annotations

import re

_FILENAME_BAD = re.compile(r"[\x00-\x1f\x7f/\\]")


def looks_like_audio(head: bytes) -> bool:
    if head.startswith(b"ID3") or head.startswith(b"fLaC") or head.startswith(b"OggS"):
        return True
    if head.startswith(b"RIFF") and head[8:12] in (b"WAVE",):
        return True
    if head[4:8] == b"ftyp":  # MP4 / M4A
        return True
    # A bare MPEG audio frame: 11 sync bits, a valid layer and a bitrate index that is not "bad".
    return len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0 and (head[1] & 0x06) != 0


def safe_filename(name: str | None) -> str:
    """A display name: no path parts, control characters or NULs; never used to build a path."""
    base = (name or "upload").replace("\\", "/").rsplit("/", 1)[-1]
    base = _FILENAME_BAD.sub("", base).strip().lstrip(".")
    return (base or "upload")[:255]
