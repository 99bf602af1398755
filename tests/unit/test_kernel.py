"""The kernel's small pieces, with no I/O: ids, paging, the rate limiter, the TTL cache, sniffing."""

from __future__ import annotations

import pytest

from tonearm.domains.ingest.sniff import looks_like_audio, safe_filename
from tonearm.kernel.cache import TTLCache
from tonearm.kernel.clock import FrozenClock, iso
from tonearm.kernel.db import RawQuery
from tonearm.kernel.errors import BadRequest
from tonearm.kernel.ids import ID_LENGTH, is_valid_id, new_id, uri
from tonearm.kernel.paging import check_window, page
from tonearm.kernel.ratelimit import RateLimiter


def test_ids_are_22_base62_and_unique() -> None:
    ids = {new_id() for _ in range(5000)}
    assert len(ids) == 5000
    assert all(len(i) == ID_LENGTH and is_valid_id(i) for i in ids)
    assert (
        not is_valid_id("../../etc/passwd00000") and not is_valid_id("a" * 21) and not is_valid_id("a" * 23)
    )
    assert uri("track", "x" * 22) == "tonearm:track:" + "x" * 22


def test_paging_object_links() -> None:
    p = page("http://h/v1/x", list(range(10)), limit=10, offset=20, total=35, market=None)
    assert p["next"] == "http://h/v1/x?offset=30&limit=10"
    assert p["previous"] == "http://h/v1/x?offset=10&limit=10"
    last = page("http://h/v1/x", [1], limit=10, offset=30, total=31)
    assert last["next"] is None
    for limit, offset in ((0, 0), (51, 0), (10, -1), (10, 200_000)):
        with pytest.raises(BadRequest):
            check_window(limit, offset)


def test_rate_limiter_sliding_window() -> None:
    clock = FrozenClock()
    limiter = RateLimiter(clock)
    for _ in range(3):
        assert limiter.retry_after("k", 3, 60) == 0
        limiter.hit("k")
    assert 59 < limiter.retry_after("k", 3, 60) <= 60
    clock.advance(30)
    assert 29 < limiter.retry_after("k", 3, 60) <= 30
    clock.advance(31)
    assert limiter.retry_after("k", 3, 60) == 0
    limiter.hit("other")
    limiter.reset("other")
    assert limiter.retry_after("other", 1, 60) == 0


def test_ttl_cache_evicts_least_recent_and_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr("tonearm.kernel.cache.time.monotonic", lambda: now[0])
    cache: TTLCache[str, int] = TTLCache(maxsize=2, ttl_s=10)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now most recent
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    now[0] += 11
    assert cache.get("a") is None


def test_sniffing_and_display_names() -> None:
    assert looks_like_audio(b"ID3\x04") and looks_like_audio(b"fLaC") and looks_like_audio(b"OggS")
    assert looks_like_audio(b"RIFF\x00\x00\x00\x00WAVEfmt ") and looks_like_audio(b"\x00\x00\x00\x20ftypM4A ")
    assert looks_like_audio(b"\xff\xfb\x90\x00")  # an MPEG-1 layer III frame header
    assert (
        not looks_like_audio(b"\x89PNG\r\n") and not looks_like_audio(b"<html>") and not looks_like_audio(b"")
    )
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("a\x00b\nc.mp3") == "abc.mp3"
    assert safe_filename("C:\\music\\x.flac") == "x.flac"
    assert safe_filename("...") == "upload" and safe_filename(None) == "upload"
    assert len(safe_filename("x" * 1000)) == 255


def test_raw_query_translates_parameters_once() -> None:
    q = RawQuery("SELECT a FROM t WHERE id = :id AND b::text = :other_param")
    assert q._pyformat == "SELECT a FROM t WHERE id = %(id)s AND b::text = %(other_param)s"


def test_iso_timestamps() -> None:
    assert iso(FrozenClock().now()) == "2026-01-01T00:00:00Z"
    assert iso(None) is None
