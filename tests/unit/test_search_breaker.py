"""The search circuit breaker's states, on a clock the tests move by hand."""

from __future__ import annotations

import threading

import pytest

from tonearm.domains.search.breaker import CircuitBreaker
from tonearm.kernel.clock import FrozenClock


class Transitions:
    def __init__(self) -> None:
        self.log: list[tuple[str, object]] = []

    def opened(self, reason: str, failures: int) -> None:
        self.log.append(("open", (reason, failures)))

    def closed(self, open_s: float) -> None:
        self.log.append(("closed", open_s))


def make(threshold: int = 3, reset_s: float = 10.0) -> tuple[CircuitBreaker, FrozenClock, Transitions]:
    clock = FrozenClock()
    seen = Transitions()
    breaker = CircuitBreaker(
        clock, threshold=threshold, reset_s=reset_s, on_open=seen.opened, on_close=seen.closed
    )
    return breaker, clock, seen


def test_consecutive_failures_open_it_and_a_success_resets_the_count() -> None:
    b, _, seen = make(threshold=3)
    b.failure("x")
    b.failure("x")
    b.success()  # not consecutive any more
    b.failure("x")
    b.failure("x")
    assert b.state == "closed" and b.allow() and seen.log == []
    b.failure("slow: 900 ms")
    assert b.state == "open" and b.is_open and not b.allow()
    assert seen.log == [("open", ("slow: 900 ms", 3))]


def test_after_the_reset_timeout_one_probe_goes_through() -> None:
    b, clock, seen = make(threshold=1, reset_s=10)
    b.failure("down")
    clock.advance(9.9)
    assert not b.allow()
    clock.advance(0.1)
    assert b.allow() and b.state == "half_open"
    assert not b.allow()  # only one probe at a time
    b.success()
    assert b.state == "closed" and b.allow() and not b.is_open
    assert seen.log == [("open", ("down", 1)), ("closed", 10.0)]


def test_a_failed_probe_keeps_it_open_for_another_period() -> None:
    b, clock, seen = make(threshold=1, reset_s=10)
    b.failure("down")
    clock.advance(10)
    assert b.allow()
    b.failure("still down")
    assert b.state == "open" and not b.allow()
    clock.advance(9)
    assert not b.allow()
    clock.advance(1)
    assert b.allow()
    b.success()
    assert seen.log == [("open", ("down", 1)), ("closed", 20.0)]  # one outage, one line each way


def test_a_lost_probe_is_replaced_and_stragglers_do_not_reopen() -> None:
    b, clock, seen = make(threshold=2, reset_s=10)
    b.failure("a")
    b.failure("b")
    clock.advance(10)
    assert b.allow()  # the probe never reports
    clock.advance(9)
    assert not b.allow()
    clock.advance(1)
    assert b.allow()  # presumed lost: another probe
    b.failure("a call let through before it opened")  # the probe failing: open again
    b.failure("a late one")  # already open: nothing more happens
    assert [kind for kind, _ in seen.log] == ["open"]


def test_threshold_must_be_positive() -> None:
    with pytest.raises(ValueError, match="threshold"):
        CircuitBreaker(FrozenClock(), threshold=0, reset_s=1)


def test_concurrent_failures_open_it_once() -> None:
    b, _, seen = make(threshold=50)
    barrier = threading.Barrier(8)

    def fail() -> None:
        barrier.wait()
        for _ in range(100):
            b.failure("x")

    threads = [threading.Thread(target=fail) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [kind for kind, _ in seen.log] == ["open"]
