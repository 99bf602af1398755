"""Domain errors. The HTTP layer maps each to the Spotify error object `{"error": {status, message}}`."""

from __future__ import annotations


class TonearmError(Exception):
    """Base of every error a user can cause. `status` is the HTTP status the API answers with."""

    status = 400
    reason = "bad_request"
    retry_after_s: int | None = None  # sent as Retry-After when set

    def __init__(
        self, message: str, *, reason: str | None = None, retry_after_s: int | None = None, **extra: object
    ) -> None:
        super().__init__(message)
        self.message = message
        # Members added to the error object beside status and message, for refusals a client must
        # act on (Spotify's player errors carry `reason`, e.g. PREMIUM_REQUIRED). Only an error
        # raised with a `reason` shows one; the class's reason stays internal.
        self.extra: dict[str, object] = dict(extra)
        if reason is not None:
            self.reason = reason
            self.extra = {"reason": reason, **extra}
        if retry_after_s is not None:
            self.retry_after_s = retry_after_s


class BadRequest(TonearmError):
    status = 400
    reason = "bad_request"


class Unauthorized(TonearmError):
    status = 401
    reason = "unauthorized"


class PaymentRequired(TonearmError):
    """A charge was declined (the gateway's plain words say why); nothing was granted."""

    status = 402
    reason = "payment_required"


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
