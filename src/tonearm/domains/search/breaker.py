"""A circuit breaker: stops calling something that keeps failing, and probes it now and then.

Closed, every call goes through; `threshold` consecutive failures (an error, or a call slower
than the caller's limit: the caller decides and reports it) open it. Open, `allow()` says no
until `reset_s` has passed; then it says yes to one caller at a time, the probe (half-open).
A success closes the breaker; a failed probe keeps it open for another `reset_s`.

Why not pybreaker: it holds its lock for the whole protected call (so concurrent searches would
run one at a time), counts only exceptions (a slow answer is a good answer to it) and reads the
wall clock (tests would have to sleep). This is small, and its time is the app's `Clock`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Literal

from tonearm.kernel.clock import Clock

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(
        self,
        clock: Clock,
        *,
        threshold: int,
        reset_s: float,
        on_open: Callable[[str, int], None] | None = None,
        on_close: Callable[[float], None] | None = None,
    ) -> None:
        """`on_open(reason, failures)` and `on_close(open_seconds)` are called on transitions,
        outside the lock, once per transition."""
        if threshold < 1:
            raise ValueError("threshold must be at least 1")
        self.clock = clock
        self.threshold = threshold
        self.reset_s = reset_s
        self._on_open = on_open
        self._on_close = on_close
        self._lock = threading.Lock()
        self._failures = 0  # consecutive, while closed
        self._open = False
        self._opened_at = 0.0  # when it opened, or when the last probe failed
        self._first_opened_at = 0.0  # when this outage began (for the log line that ends it)
        self._probe_started: float | None = None

    @property
    def state(self) -> State:
        with self._lock:
            if not self._open:
                return "closed"
            return "half_open" if self._probe_started is not None else "open"

    @property
    def is_open(self) -> bool:
        """True from the moment it opens until a probe succeeds (half-open included)."""
        return self._open

    def allow(self) -> bool:
        """Whether to make the protected call now. Always while closed; while open, yes to one
        caller (the probe) once `reset_s` has passed since it opened or the last probe failed.
        A probe that has not reported within `reset_s` is presumed lost and another is allowed.
        The caller MUST then report `success()` or `failure()`."""
        if not self._open:  # the hot path: no lock (a stale read only delays a transition)
            return True
        with self._lock:
            if not self._open:
                return True
            now = self.clock.monotonic()
            if now - self._opened_at < self.reset_s:
                return False
            if self._probe_started is not None and now - self._probe_started < self.reset_s:
                return False
            self._probe_started = now
            return True

    def success(self) -> None:
        if not self._open and not self._failures:
            return
        with self._lock:
            self._failures = 0
            if not self._open:
                return
            self._open = False
            self._probe_started = None
            open_s = self.clock.monotonic() - self._first_opened_at
        if self._on_close is not None:
            self._on_close(open_s)

    def failure(self, reason: str) -> None:
        with self._lock:
            now = self.clock.monotonic()
            if self._open:
                if self._probe_started is not None:  # the probe failed: wait another reset_s
                    self._probe_started = None
                    self._opened_at = now
                return  # a call let through before it opened: already counted
            self._failures += 1
            if self._failures < self.threshold:
                return
            failures = self._failures
            self._open = True
            self._opened_at = self._first_opened_at = now
            self._probe_started = None
            self._failures = 0
        if self._on_open is not None:
            self._on_open(reason, failures)
