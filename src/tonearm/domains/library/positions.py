"""Fractional position keys: strings that sort in playlist order, so that an insert or a move
writes only the rows it places (a new key between two neighbours), never its neighbours.

A key is an *integer part* followed by an optional *fraction*:

    head  digits...        fraction
    "i"   "0"              ""         the first key ever made ("i0")
    "j"   "4k"             "i"        between "j4k" and "j4l"

The head says how many digits the integer part has ('i'..'z': 1..18 digits of a non-negative
number, 'h'..'0': 1..18 digits of a negative one), so appending one key after another counts
up ("i0", "i1", ... "iz", "j00", ...) and keys grow with the logarithm of the playlist's length,
not linearly; prepending counts down the same way. Between two keys with the same integer part
the fraction takes the midpoint (a fraction never ends in "0", so there is always room).

Digits are base 36, `0-9a-z`, not base 62: PostgreSQL databases created with a linguistic
collation (en_US, ICU) sort "a" before "B", which would scramble mixed-case keys; digits and
lowercase letters sort the same under every collation we know of, and byte order is theirs.

The keys of a playlist stay short in practice; `key_between` never fails, but inserting over and
over at the same spot adds a character every ~5 inserts, so callers renumber a playlist
(`keys_between(None, None, n)`) once a key outgrows `RENUMBER_ABOVE` characters.
"""

from __future__ import annotations

DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
BASE = len(DIGITS)
_INDEX = {d: i for i, d in enumerate(DIGITS)}
_MAX_INTEGER_DIGITS = 18
_FIRST_POSITIVE_HEAD = "i"  # DIGITS[18]: heads below it are negative integers
FIRST_KEY = "i0"
# The smallest integer part: nothing is below it, so it is only ever used with a fraction.
_SMALLEST = "0" + "0" * _MAX_INTEGER_DIGITS
# Keys longer than this make the playlist renumber (the column holds 64: a batch of 10,000 keys
# between two neighbours adds at most log2(10,000) + 1 = 15 characters to the longer one).
RENUMBER_ABOVE = 48


def _integer_digits(head: str) -> int:
    i = _INDEX.get(head)
    if i is None:
        raise ValueError(f"invalid position key head {head!r}")
    return i - 17 if head >= _FIRST_POSITIVE_HEAD else 18 - i


def _split(key: str) -> tuple[str, str]:
    """(integer part, fraction) of a valid key; ValueError for anything else."""
    if not key:
        raise ValueError("empty position key")
    n = 1 + _integer_digits(key[0])
    integer, fraction = key[:n], key[n:]
    if len(integer) < n or any(c not in _INDEX for c in key):
        raise ValueError(f"invalid position key {key!r}")
    if fraction.endswith("0") or key == _SMALLEST:
        raise ValueError(f"invalid position key {key!r}")
    return integer, fraction


def validate(key: str) -> str:
    _split(key)
    return key


def _increment(integer: str) -> str | None:
    head, digits = integer[0], list(integer[1:])
    for i in reversed(range(len(digits))):
        d = _INDEX[digits[i]] + 1
        if d < BASE:
            digits[i] = DIGITS[d]
            return head + "".join(digits)
        digits[i] = "0"
    if head == "h":  # -1 + 1
        return FIRST_KEY
    if head == "z":
        return None  # the largest integer: callers fall back to a fraction
    new_head = DIGITS[_INDEX[head] + 1]
    if head >= _FIRST_POSITIVE_HEAD:
        digits.append("0")  # one digit more
    else:
        digits.pop()  # a negative number one digit shorter
    return new_head + "".join(digits)


def _decrement(integer: str) -> str | None:
    head, digits = integer[0], list(integer[1:])
    for i in reversed(range(len(digits))):
        d = _INDEX[digits[i]] - 1
        if d >= 0:
            digits[i] = DIGITS[d]
            return head + "".join(digits)
        digits[i] = DIGITS[-1]
    if head == _FIRST_POSITIVE_HEAD:  # 0 - 1
        return "h" + DIGITS[-1]
    if head == "0":
        return None
    new_head = DIGITS[_INDEX[head] - 1]
    if head > _FIRST_POSITIVE_HEAD:
        digits.pop()
    else:
        digits.append(DIGITS[-1])
    return new_head + "".join(digits)


def _midpoint(a: str, b: str | None) -> str:
    """A fraction strictly between fractions `a` and `b` (None: 1), neither ending in "0"."""
    if b is not None:
        n = 0  # the common prefix, `a` padded with zeros
        while n < len(b) and (a[n] if n < len(a) else "0") == b[n]:
            n += 1
        if n:
            return b[:n] + _midpoint(a[n:], b[n:])
    da = _INDEX[a[0]] if a else 0
    db = _INDEX[b[0]] if b is not None else BASE
    if db - da > 1:
        return DIGITS[(da + db) // 2]
    if b is not None and len(b) > 1:
        return b[0]  # shorter than b, and above a (its first digit is a's plus one)
    return DIGITS[da] + _midpoint(a[1:], None)


def key_between(a: str | None, b: str | None) -> str:
    """A key that sorts strictly between `a` and `b` (None: the start or the end). Raises
    ValueError if a key is malformed or `a` is not before `b`."""
    if a is not None and b is not None and a >= b:
        raise ValueError(f"position keys out of order: {a!r} >= {b!r}")
    if a is None:
        if b is None:
            return FIRST_KEY
        ib, fb = _split(b)
        if ib == _SMALLEST:
            return ib + _midpoint("", fb)
        if fb:
            return ib  # b's integer part alone sorts just before b
        below = _decrement(ib)
        assert below is not None  # only the smallest integer has nothing below it
        return below + _midpoint("", None) if below == _SMALLEST else below
    ia, fa = _split(a)
    if b is None:
        above = _increment(ia)
        return ia + _midpoint(fa, None) if above is None else above
    ib, fb = _split(b)
    if ia == ib:
        return ia + _midpoint(fa, fb)
    above = _increment(ia)
    if above is not None and above < b:
        return above
    return ia + _midpoint(fa, None)


def keys_between(a: str | None, b: str | None, n: int) -> list[str]:
    """`n` ascending keys strictly between `a` and `b`. Bounded on both sides they split the gap
    evenly (each level of halving adds a character every ~5 levels); open-ended they count."""
    if n <= 0:
        return []
    if n == 1:
        return [key_between(a, b)]
    if b is None:
        out = [key_between(a, None)]
        for _ in range(n - 1):
            out.append(key_between(out[-1], None))
        return out
    if a is None:
        out = [key_between(None, b)]
        for _ in range(n - 1):
            out.append(key_between(None, out[-1]))
        out.reverse()
        return out
    mid = n // 2
    c = key_between(a, b)
    return [*keys_between(a, c, mid), c, *keys_between(c, b, n - mid - 1)]
