"""Money and billing periods, in exact integer arithmetic.

Amounts are integers in minor units (cents) with an ISO 4217 currency, never floats. Proration
rounds to the nearest minor unit, halves up; a period split into pieces is charged as the
differences of cumulative prorations (`pieces`), so the pieces always add up to the whole
amount exactly, whatever the rounding did to each piece.

Billing periods are calendar months counted from an anchor (the day the subscription started):
a subscription started on 31 January renews on 28 (or 29) February, 31 March, 30 April ...,
never drifting to the 28th for good (`add_months(anchor, n)`, not `add_months` applied n times).
"""

from __future__ import annotations

import calendar
import datetime as dt
import itertools
from collections.abc import Sequence

from tonearm.kernel.errors import BadRequest

MAX_AMOUNT_MINOR = 99_999_999  # 999,999.99 in a two-decimal currency (a gateway's usual maximum)

# Minor units per major unit, for display; ISO 4217 exponents other than 2.
_EXPONENTS = {"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "BHD": 3, "KWD": 3, "JOD": 3, "OMR": 3}
_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "KRW": "₩"}


def check_amount(amount_minor: object, field: str = "amount_minor") -> int:
    """`amount_minor` if it is an int (not a bool) in 0..MAX_AMOUNT_MINOR, else BadRequest."""
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise BadRequest(f"{field}: must be an integer number of minor units (cents)")
    if amount_minor < 0:
        raise BadRequest(f"{field}: must not be negative (got {amount_minor})")
    if amount_minor > MAX_AMOUNT_MINOR:
        raise BadRequest(f"{field}: must be at most {MAX_AMOUNT_MINOR} minor units (got {amount_minor})")
    return amount_minor


def check_currency(currency: str) -> str:
    if len(currency) != 3 or not currency.isascii() or not currency.isalpha():
        raise BadRequest(f"currency: {currency[:10]!r} is not a three-letter ISO 4217 code")
    return currency.upper()


def prorate(amount_minor: int, remaining_s: int, period_s: int) -> int:
    """The share of `amount_minor` for `remaining_s` of a `period_s`-long period: the exact
    fraction amount * remaining / period rounded to the nearest minor unit, halves up.

    A whole period gives the amount, none gives 0, and more time never gives less money."""
    check_amount(amount_minor)
    if isinstance(period_s, bool) or not isinstance(period_s, int) or period_s <= 0:
        raise ValueError("period_s: must be a positive integer number of seconds")
    if isinstance(remaining_s, bool) or not isinstance(remaining_s, int) or not 0 <= remaining_s <= period_s:
        raise ValueError("remaining_s: must be an integer number of seconds within the period")
    return (2 * amount_minor * remaining_s + period_s) // (2 * period_s)


def pieces(amount_minor: int, cuts_s: Sequence[int], period_s: int) -> list[int]:
    """`amount_minor` split at the given instants of a period (seconds from its start, in
    order): one piece per stretch between consecutive cuts (the start and the end implied).
    Each piece is the difference of two cumulative prorations, so they sum to the amount."""
    points = [0, *cuts_s, period_s]
    if any(b < a for a, b in itertools.pairwise(points)):
        raise ValueError("cuts_s: must be in order and within the period")
    marks = [prorate(amount_minor, p, period_s) for p in points]
    return [b - a for a, b in itertools.pairwise(marks)]


def allocate(amount_minor: int, weights: Sequence[int]) -> list[int]:
    """`amount_minor` shared in proportion to non-negative integer `weights` by the largest
    remainder method: the parts sum to the amount exactly, and each is its exact share rounded
    down or up (ties go to the earlier weight)."""
    check_amount(amount_minor)
    if not weights:
        raise ValueError("weights: at least one")
    if any(isinstance(w, bool) or not isinstance(w, int) or w < 0 for w in weights):
        raise ValueError("weights: non-negative integers")
    total = sum(weights)
    if total == 0:
        raise ValueError("weights: at least one must be positive")
    parts = [amount_minor * w // total for w in weights]
    short = amount_minor - sum(parts)
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(amount_minor * weights[i] % total), i))
    for i in by_remainder[:short]:
        parts[i] += 1
    return parts


def add_months(when: dt.datetime, n: int) -> dt.datetime:
    """`when` moved by `n` calendar months, the day clamped to the month's last (31 January + 1
    month = 28 or 29 February); the time of day and time zone are kept."""
    month0 = when.month - 1 + n
    year, month = when.year + month0 // 12, month0 % 12 + 1
    if not dt.MINYEAR <= year <= dt.MAXYEAR:
        raise ValueError("add_months: the result is out of the calendar's range")
    day = min(when.day, calendar.monthrange(year, month)[1])
    return when.replace(year=year, month=month, day=day)


def months_between(start: dt.datetime, end: dt.datetime) -> int:
    """How many calendar months `end` is after `start`, counting months (not days): used with
    `add_months` to find which period of an anchor `end` closes."""
    return (end.year - start.year) * 12 + (end.month - start.month)


def exponent(currency: str) -> int:
    return _EXPONENTS.get(currency.upper(), 2)


def display(amount_minor: int, currency: str) -> str:
    """`amount_minor` as people read it: "$11.99", "-$1.20", "¥1,000", "12.50 CHF"."""
    currency = currency.upper()
    exp = exponent(currency)
    sign = "-" if amount_minor < 0 else ""
    major, minor = divmod(abs(amount_minor), 10**exp)
    number = f"{major:,}" + (f".{minor:0{exp}d}" if exp else "")
    symbol = _SYMBOLS.get(currency)
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{number} {currency}"
