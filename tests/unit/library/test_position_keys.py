"""The fractional position keys of playlist entries: any two keys have room between them, order
is byte order (and the same under linguistic collations), and keys stay short where it matters."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tonearm.domains.library.positions import (
    DIGITS,
    FIRST_KEY,
    RENUMBER_ABOVE,
    key_between,
    keys_between,
    validate,
)


def test_the_digits_sort_alike_in_bytes_and_case_insensitive_collations() -> None:
    assert list(DIGITS) == sorted(DIGITS) == sorted(DIGITS, key=str.casefold)
    assert DIGITS.islower()


def test_first_keys_count_up_and_down() -> None:
    assert key_between(None, None) == FIRST_KEY == "i0"
    assert key_between("i0", None) == "i1"
    assert key_between("iz", None) == "j00"  # one more digit, as numbers do
    assert key_between(None, "i0") == "hz"  # below zero: negative numbers
    assert key_between(None, "h0") == "gzz"
    assert key_between("i0", "i1") == "i0i"  # no integer between: a fraction
    assert key_between("i0", "i0i") == "i09"
    assert key_between("i0i", "i1") == "i0r"


@pytest.mark.parametrize(
    ("a", "b"),
    [("i1", "i0"), ("i0", "i0")],
)
def test_out_of_order_bounds_are_refused(a: str, b: str) -> None:
    with pytest.raises(ValueError, match="out of order"):
        key_between(a, b)


@pytest.mark.parametrize("bad", ["", "i", "i00", "iA", "I0", "j0", "i0~", "0" * 19])
def test_malformed_keys_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="position key"):
        validate(bad)
    with pytest.raises(ValueError, match="position key"):
        key_between(bad, None)


def test_appending_and_prepending_keep_keys_logarithmically_short() -> None:
    keys = keys_between(None, None, 10_000)
    assert keys == sorted(keys) and len(set(keys)) == 10_000
    assert max(map(len, keys)) == 4  # i0..iz, j00..jzz, k000..
    up = [FIRST_KEY]
    for _ in range(5000):
        up.append(key_between(up[-1], None))
    down = [FIRST_KEY]
    for _ in range(5000):
        down.insert(0, key_between(None, down[0]))
    assert max(map(len, up + down)) <= 5


def test_a_batch_between_neighbours_adds_a_few_characters() -> None:
    for a, b in (("i0", "i1"), ("i0", None), (None, "i0"), ("k2tw", "k2twi")):
        keys = keys_between(a, b, 10_000)
        assert len(set(keys)) == 10_000 and keys == sorted(keys)
        assert (a is None or a < keys[0]) and (b is None or keys[-1] < b)
        assert max(map(len, keys)) <= len(b or a or "") + 15  # the bound the 64-char column relies on


def test_inserting_at_one_spot_grows_a_character_every_few_inserts() -> None:
    """The case renumbering exists for: ~5 inserts per character."""
    keys = [FIRST_KEY, key_between(FIRST_KEY, None)]
    for _ in range(200):
        keys.insert(1, key_between(keys[0], keys[1]))
    assert keys == sorted(keys)
    assert 30 < len(keys[1]) < RENUMBER_ABOVE


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.integers(1, 5)), min_size=1, max_size=120))
def test_random_inserts_keep_order_and_validity(ops: list[tuple[float, int]]) -> None:
    keys: list[str] = []
    for where, n in ops:
        at = round(where * len(keys))
        before = keys[at - 1] if at > 0 else None
        after = keys[at] if at < len(keys) else None
        new = keys_between(before, after, n)
        assert all(validate(k) for k in new)
        keys[at:at] = new
    assert keys == sorted(keys) and len(set(keys)) == len(keys)


@settings(max_examples=300, deadline=None)
@given(st.randoms(use_true_random=False), st.integers(2, 80))
def test_between_any_two_keys(rng: random.Random, n: int) -> None:
    """Any two keys of a list built by random inserts, not only neighbours."""
    keys = [FIRST_KEY]
    for _ in range(n):
        at = rng.randint(0, len(keys))
        keys.insert(at, key_between(keys[at - 1] if at else None, keys[at] if at < len(keys) else None))
    a, b = sorted(rng.sample(keys, 2))
    mid = key_between(a, b)
    assert a < mid < b and validate(mid)
    assert key_between(None, a) < a < key_between(a, None)


def test_renumbered_keys_are_short_and_sorted() -> None:
    keys = keys_between(None, None, 10_000)
    assert all(validate(k) for k in keys)
    assert keys[0] == FIRST_KEY and len(keys[-1]) <= 4
