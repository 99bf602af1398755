"""Money and billing periods (no I/O): properties checked with hypothesis over many amounts,
periods, splits and dates, plus the examples people check by hand."""

from __future__ import annotations

import calendar
import datetime as dt
import itertools
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tonearm.domains.billing.money import (
    MAX_AMOUNT_MINOR,
    add_months,
    allocate,
    check_amount,
    display,
    months_between,
    pieces,
    prorate,
)
from tonearm.kernel.errors import BadRequest

amounts = st.integers(min_value=0, max_value=MAX_AMOUNT_MINOR)
periods = st.integers(min_value=1, max_value=400 * 86400)
dates = st.datetimes(
    min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2200, 12, 31), timezones=st.just(dt.UTC)
)


@st.composite
def period_and_instants(draw: st.DrawFn, n: int = 1) -> tuple[int, list[int]]:
    period = draw(periods)
    return period, sorted(draw(st.integers(0, period)) for _ in range(n))


# Validation -----------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [-1, MAX_AMOUNT_MINOR + 1, 10**30, True, False, 1.5, "100", None])
def test_amounts_outside_the_range_or_not_integers_are_refused(bad: object) -> None:
    with pytest.raises(BadRequest) as err:
        check_amount(bad)
    assert "amount_minor" in err.value.message


@given(amounts)
def test_amounts_in_range_pass(a: int) -> None:
    assert check_amount(a) == a


# Proration -------------------------------------------------------------------------------------
@given(amounts, periods)
def test_prorating_a_whole_period_is_the_amount_and_none_is_zero(a: int, period: int) -> None:
    assert prorate(a, period, period) == a
    assert prorate(a, 0, period) == 0


@given(amounts, period_and_instants(2))
def test_proration_is_monotonic_in_remaining_time(a: int, pi: tuple[int, list[int]]) -> None:
    period, (r1, r2) = pi
    assert prorate(a, r1, period) <= prorate(a, r2, period)


@given(amounts, amounts, period_and_instants(1))
def test_proration_is_monotonic_in_the_amount(a: int, b: int, pi: tuple[int, list[int]]) -> None:
    period, (r,) = pi
    lo, hi = sorted((a, b))
    assert prorate(lo, r, period) <= prorate(hi, r, period)


@given(amounts, period_and_instants(1))
def test_proration_rounds_to_nearest_halves_up(a: int, pi: tuple[int, list[int]]) -> None:
    period, (r,) = pi
    exact = Fraction(a * r, period)
    got = prorate(a, r, period)
    assert abs(got - exact) <= Fraction(1, 2)
    if abs(got - exact) == Fraction(1, 2):
        assert got > exact  # halves go up


def test_proration_examples() -> None:
    assert prorate(1199, 15, 30) == 600  # 599.5 -> 600 (half up)
    assert prorate(1999, 1, 3) == 666  # 666.33
    assert prorate(1999, 2, 3) == 1333  # 1332.67


@given(amounts, period_and_instants(4))
def test_pieces_of_a_split_period_add_up_exactly(a: int, pi: tuple[int, list[int]]) -> None:
    period, cuts = pi
    parts = pieces(a, cuts, period)
    assert len(parts) == len(cuts) + 1
    assert sum(parts) == a
    assert all(p >= 0 for p in parts)
    bounds = [0, *cuts, period]
    for part, (s, e) in zip(parts, itertools.pairwise(bounds), strict=True):
        assert abs(part - Fraction(a * (e - s), period)) < 1  # each piece is within a cent of exact


@given(amounts, amounts, period_and_instants(1))
def test_upgrade_credit_and_charge_never_drift(old: int, new: int, pi: tuple[int, list[int]]) -> None:
    """Upgrading at `t`: the old plan's used part + its credit is exactly what was paid, and the
    new plan's remaining part + what a whole new period would have cost before t adds up too."""
    period, (t,) = pi
    remaining = period - t
    used_old, credit = pieces(old, [t], period)
    before_new, charge_new = pieces(new, [t], period)
    assert used_old + credit == old
    assert before_new + charge_new == new
    assert abs(credit - prorate(old, remaining, period)) <= 1
    if new >= old:
        assert charge_new - credit >= 0  # an upgrade never charges a negative amount


def test_pieces_refuse_cuts_out_of_order() -> None:
    with pytest.raises(ValueError, match="in order"):
        pieces(100, [5, 3], 10)
    with pytest.raises(ValueError, match="in order"):
        pieces(100, [11], 10)


@pytest.mark.parametrize(("remaining", "period"), [(-1, 10), (11, 10), (0, 0), (1.5, 10)])
def test_proration_refuses_impossible_times(remaining: int, period: int) -> None:
    with pytest.raises(ValueError, match="_s"):
        prorate(100, remaining, period)


def test_proration_refuses_bad_amounts() -> None:
    with pytest.raises(BadRequest):
        prorate(-5, 1, 2)
    with pytest.raises(BadRequest):
        prorate(MAX_AMOUNT_MINOR + 1, 1, 2)


# Allocation ------------------------------------------------------------------------------------
@given(amounts, st.lists(st.integers(0, 10**6), min_size=1, max_size=12).filter(lambda w: sum(w) > 0))
def test_allocation_sums_exactly_and_each_part_is_its_share_rounded(a: int, weights: list[int]) -> None:
    parts = allocate(a, weights)
    assert sum(parts) == a
    assert all(p >= 0 for p in parts)
    total = sum(weights)
    for p, w in zip(parts, weights, strict=True):
        share = Fraction(a * w, total)
        assert share - 1 < p < share + 1
        if w == 0:
            assert p == 0


def test_allocation_examples() -> None:
    assert allocate(100, [1, 1, 1]) == [34, 33, 33]
    assert allocate(1999, [1] * 6) == [334, 333, 333, 333, 333, 333]
    assert allocate(5, [0, 3, 1]) == [0, 4, 1]
    with pytest.raises(ValueError, match="positive"):
        allocate(5, [0, 0])
    with pytest.raises(ValueError, match="non-negative"):
        allocate(5, [1, -1])


# Calendar months -------------------------------------------------------------------------------
@given(dates, st.integers(-1200, 1200))
def test_add_months_lands_in_the_right_month_with_the_day_clamped(d: dt.datetime, n: int) -> None:
    out = add_months(d, n)
    assert months_between(d, out) == n
    assert out.day == min(d.day, calendar.monthrange(out.year, out.month)[1])
    assert (out.hour, out.minute, out.second, out.microsecond, out.tzinfo) == (
        d.hour,
        d.minute,
        d.second,
        d.microsecond,
        d.tzinfo,
    )


@given(dates, st.integers(0, 600), st.integers(0, 600))
def test_add_months_is_monotonic_and_anchored_periods_do_not_drift(d: dt.datetime, m: int, n: int) -> None:
    lo, hi = sorted((m, n))
    assert add_months(d, lo) <= add_months(d, hi)
    # Counting from the anchor comes back to the anchor's day whenever the month has it.
    out = add_months(d, hi)
    if calendar.monthrange(out.year, out.month)[1] >= d.day:
        assert out.day == d.day
    # Periods counted from an anchor tile time: each ends where the next starts, none is empty.
    assert add_months(d, lo + 1) > add_months(d, lo)


def test_add_months_examples() -> None:
    jan31 = dt.datetime(2026, 1, 31, 12, tzinfo=dt.UTC)
    assert add_months(jan31, 1) == dt.datetime(2026, 2, 28, 12, tzinfo=dt.UTC)
    assert add_months(jan31, 2) == dt.datetime(2026, 3, 31, 12, tzinfo=dt.UTC)
    assert add_months(jan31, 3) == dt.datetime(2026, 4, 30, 12, tzinfo=dt.UTC)
    assert add_months(dt.datetime(2028, 1, 31, tzinfo=dt.UTC), 1).day == 29  # leap year
    assert add_months(dt.datetime(2026, 12, 15, tzinfo=dt.UTC), 1) == dt.datetime(2027, 1, 15, tzinfo=dt.UTC)
    assert add_months(dt.datetime(2026, 1, 15, tzinfo=dt.UTC), -1) == dt.datetime(2025, 12, 15, tzinfo=dt.UTC)


# Display ---------------------------------------------------------------------------------------
def test_display() -> None:
    assert display(1199, "USD") == "$11.99"
    assert display(5, "usd") == "$0.05"
    assert display(-120, "USD") == "-$1.20"
    assert display(123456789, "EUR") == "€1,234,567.89"
    assert display(1000, "JPY") == "¥1,000"
    assert display(1250, "CHF") == "12.50 CHF"
