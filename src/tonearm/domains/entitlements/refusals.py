"""What a refusal by the listener's plan looks like: a 403 with a machine-readable `reason` (and
what the client needs to act on it), plus the words stored in the decision log."""

from __future__ import annotations

import datetime as dt
import math

from tonearm.kernel.clock import iso
from tonearm.kernel.errors import Forbidden


class Refused(Forbidden):
    """403 with `reason` (premium_required, skip_limit, ad_playing) and extra members in the error
    object; `action` and `detail` are what the decision log keeps for support."""

    def __init__(
        self,
        message: str,
        *,
        action: str,
        reason: str,
        detail: str,
        retry_after_s: int | None = None,
        **extra: object,
    ) -> None:
        super().__init__(message, reason=reason, retry_after_s=retry_after_s, **extra)
        self.action = action
        self.detail = detail

    def as_rejection(self) -> dict[str, object]:
        """The members of a `rejected` entry of a player event batch."""
        return {"message": self.message, **self.extra}


def ceil_second(ts: dt.datetime) -> dt.datetime:
    """`ts` rounded up to a whole second: a client retrying at the time it is told is not early."""
    return ts if ts.microsecond == 0 else ts.replace(microsecond=0) + dt.timedelta(seconds=1)


def wait_words(now: dt.datetime, until: dt.datetime) -> tuple[int, str]:
    """Seconds to wait (for Retry-After) and the same in words ("12 minutes", "40 seconds")."""
    seconds = max(1, math.ceil((until - now).total_seconds()))
    if seconds < 60:
        return seconds, f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return seconds, f"{minutes} minute{'s' if minutes != 1 else ''}"


def clock_time(ts: dt.datetime, *, seconds: bool = False) -> str:
    """`10:41Z`: the minute rounded up (so "available at 10:41Z" is never early), or with seconds."""
    ts = ceil_second(ts).astimezone(dt.UTC)
    if seconds:
        return ts.strftime("%H:%M:%SZ")
    if ts.second:
        ts = ts.replace(second=0) + dt.timedelta(minutes=1)
    return ts.strftime("%H:%MZ")


def iso_up(ts: dt.datetime) -> str:
    out = iso(ceil_second(ts))
    assert out is not None
    return out
