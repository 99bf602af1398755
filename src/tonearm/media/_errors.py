"""The one exception type of tonearm.media."""

from __future__ import annotations

from typing import Final, Literal, get_args

MediaErrorCode = Literal[
    "empty",
    "not_audio",
    "corrupt",
    "too_long",
    "too_short",
    "too_large",
    "bad_image",
    "image_too_large",
    "timeout",
    "tool_failed",
]

ERROR_CODES: Final[frozenset[str]] = frozenset(get_args(MediaErrorCode))


class MediaError(Exception):
    """Raised for input that is not acceptable.

    `code` is machine-readable (one of ERROR_CODES) so callers can map it to an HTTP status or a
    per-file import report; `str(e)` is a precise human message that never contains server paths.
    """

    code: str

    def __init__(self, code: str, message: str) -> None:
        # An unknown code is a programming error in this package, not bad input: fail loudly.
        if code not in ERROR_CODES:
            raise ValueError(f"unknown MediaError code {code!r}")
        super().__init__(message)
        self.code = code

    def __reduce__(self) -> tuple[type[MediaError], tuple[str, str]]:
        # Ingest runs media work in process pools; the default Exception pickling would call
        # MediaError(message) and fail, turning a clean rejection into a BrokenProcessPool.
        return (type(self), (self.code, str(self)))

    def __repr__(self) -> str:
        return f"MediaError({self.code!r}, {str(self)!r})"
