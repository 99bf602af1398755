"""Domain errors. The HTTP layer maps each to the Spotify error object `{"error": {status, message}}`."""

from __future__ import annotations


class TonearmError(Exception):
    """Base of every error a user can cause. `status` is the HTTP status the API answers with."""

    status = 400
    reason = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(TonearmError):
    status = 400
    reason = "bad_request"


class Unauthorized(TonearmError):
    status = 401
    reason = "unauthorized"


class Forbidden(TonearmError):
    status = 403
    reason = "forbidden"


class NotFound(TonearmError):
    status = 404
    reason = "not_found"


class Conflict(TonearmError):
    status = 409
    reason = "conflict"


class PayloadTooLarge(TonearmError):
    status = 413
    reason = "payload_too_large"


class UnsupportedMedia(TonearmError):
    status = 415
    reason = "unsupported_media_type"


class TooManyRequests(TonearmError):
    status = 429
    reason = "rate_limited"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ServiceUnavailable(TonearmError):
    """Temporarily unable (a rendition still being made, a dependency down): retry after a while."""

    status = 503
    reason = "unavailable"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
