"""A sliding-window rate limiter (in process). Login and upload endpoints use it."""

from __future__ import annotations

import threading
from collections import deque

from tonearm.kernel.clock import Clock


class RateLimiter:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, key: str, limit: int, window_s: float) -> float:
        """Seconds until `key` may act again (0 if it may act now). Does not record a hit."""
        now = self._clock.monotonic()
        with self._lock:
            hits = self._hits.get(key)
            if not hits:
                return 0.0
            while hits and hits[0] <= now - window_s:
                hits.popleft()
            if len(hits) < limit:
                return 0.0
            return hits[0] + window_s - now

    def hit(self, key: str) -> None:
        with self._lock:
            self._hits.setdefault(key, deque()).append(self._clock.monotonic())
            if len(self._hits) > 100_000:  # bound memory under a credential-stuffing flood
                self._hits.pop(next(iter(self._hits)))

    def reset(self, key: str) -> None:
        with self._lock:
            self._hits.pop(key, None)
