"""RFC 9110 range and conditional requests: the pure `evaluate`, and `BlobResponse` driven as an
ASGI app by hand (a real file, real os.pread; the server is a pair of recording callables)."""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import anyio
import pytest
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.types import Message

from tonearm.http.byteranges import (
    AccelResponse,
    BlobResponse,
    Plan,
    Representation,
    error_response_for,
    evaluate,
)

SIZE = 10_000
LM = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
LM_HTTP = "Wed, 01 May 2024 12:00:00 GMT"
REP = Representation(size=SIZE, etag='"v1"', last_modified=LM, content_type="audio/flac")
DATA = random.Random(9110).randbytes(SIZE)
FORMS = "bytes=first-last, bytes=first- and bytes=-suffix"


def plan(headers: dict[str, str], method: str = "GET", rep: Representation = REP, **kw: Any) -> Plan:
    return evaluate(method, {k.lower(): v for k, v in headers.items()}, rep, **kw)


def parse_byteranges(content_type: str, body: bytes) -> list[tuple[str, str, bytes]]:
    """Strictly parses a multipart/byteranges body into (Content-Type, Content-Range, data) parts,
    using each part's Content-Range for its length (so data that looks like a boundary is fine)."""
    m = re.fullmatch(r"multipart/byteranges; boundary=([0-9a-f]{32})", content_type)
    assert m, content_type
    delimiter = b"--" + m.group(1).encode()
    parts: list[tuple[str, str, bytes]] = []
    pos = 0
    while True:
        lead = delimiter if pos == 0 else b"\r\n" + delimiter
        assert body.startswith(lead, pos), body[pos : pos + 80]
        pos += len(lead)
        if body[pos:] == b"--\r\n":
            return parts
        assert body.startswith(b"\r\n", pos)
        head_end = body.index(b"\r\n\r\n", pos)
        lines = body[pos + 2 : head_end].decode("latin-1").split("\r\n")
        fields = dict(line.split(": ", 1) for line in lines)
        assert set(fields) == {"Content-Type", "Content-Range"}
        cr = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", fields["Content-Range"])
        assert cr
        length = int(cr.group(2)) - int(cr.group(1)) + 1
        pos = head_end + 4
        parts.append((fields["Content-Type"], fields["Content-Range"], body[pos : pos + length]))
        pos += length


# ---------------------------------------------------------------- evaluate: ranges


@pytest.mark.parametrize(
    ("header", "ranges"),
    [
        # RFC 9110 §14.1.2's examples for a 10,000-byte representation
        ("bytes=0-499", ((0, 499),)),
        ("bytes=500-999", ((500, 999),)),
        ("bytes=-500", ((9500, 9999),)),
        ("bytes=9500-", ((9500, 9999),)),
        ("bytes=0-0,-1", ((0, 0), (9999, 9999))),
        ("bytes=500-600,601-999", ((500, 999),)),  # adjacent: coalesced
        ("bytes=500-700,601-999", ((500, 999),)),  # overlapping: coalesced
        # and beyond
        ("bytes=-20000", ((0, 9999),)),  # suffix longer than the representation: all of it
        ("bytes=0-99999", ((0, 9999),)),  # last-pos clamped
        ("bytes=9999-20000", ((9999, 9999),)),
        ("bytes=0-", ((0, 9999),)),
        ("bytes=900-999,0-99", ((0, 99), (900, 999))),  # sorted
        ("bytes=20000-,0-9", ((0, 9),)),  # the unsatisfiable spec is dropped
        ("bytes=-0,5-9", ((5, 9),)),
        ("Bytes=0-4", ((0, 4),)),  # the unit is case-insensitive
        (" bytes = 0-4 ,\t6-9 ", ((0, 4), (6, 9))),  # OWS around '=' and ','
        ("bytes=0-1,,3-4,", ((0, 1), (3, 4))),  # empty list members are skipped
        ("bytes=007-010", ((7, 10),)),
        ("bytes=-" + "9" * 18, ((0, 9999),)),  # 18 digits are fine
        ("bytes=0-0,0-,0-", ((0, 9999),)),
    ],
)
def test_satisfiable_ranges(header: str, ranges: tuple[tuple[int, int], ...]) -> None:
    p = plan({"Range": header})
    assert p.status == 206 and p.ranges == ranges and p.error is None
    assert p.headers["Accept-Ranges"] == "bytes" and p.headers["ETag"] == '"v1"'
    assert p.headers["Last-Modified"] == LM_HTTP
    if len(ranges) == 1:
        (first, last) = ranges[0]
        assert p.boundary is None
        assert p.headers["Content-Type"] == "audio/flac"
        assert p.headers["Content-Range"] == f"bytes {first}-{last}/{SIZE}"
        assert p.headers["Content-Length"] == str(last - first + 1)
    else:
        assert p.boundary is not None and re.fullmatch(r"[0-9a-f]{32}", p.boundary)
        assert p.headers["Content-Type"] == f"multipart/byteranges; boundary={p.boundary}"
        assert "Content-Range" not in p.headers


def test_no_range_is_the_whole_body_with_every_header() -> None:
    assert plan({}) == Plan(
        200,
        (),
        {
            "Accept-Ranges": "bytes",
            "ETag": '"v1"',
            "Last-Modified": LM_HTTP,
            "Content-Type": "audio/flac",
            "Content-Length": "10000",
        },
        None,
    )


@pytest.mark.parametrize("header", ["bytes=10000-", "bytes=-0", "bytes=10000-10005,20000-", "bytes=-0,-0"])
def test_unsatisfiable_is_416_with_content_range_star(header: str) -> None:
    p = plan({"Range": header})
    assert p.status == 416 and p.ranges == ()
    assert p.headers["Content-Range"] == "bytes */10000"
    assert p.error is not None and p.error.startswith("range not satisfiable: no range in")
    assert "10000-byte representation (positions 0-9999)" in p.error


def test_first_pos_equal_to_size_is_unsatisfiable() -> None:
    rep = Representation(size=500, etag='"x"', last_modified=LM, content_type="audio/flac")
    p = plan({"Range": "bytes=500-"}, rep=rep)
    assert p.status == 416 and p.headers["Content-Range"] == "bytes */500"


@pytest.mark.parametrize("header", ["bytes=0-", "bytes=-5", "bytes=0-0", "bytes=-0"])
def test_zero_size_representation_makes_any_range_416(header: str) -> None:
    rep = Representation(size=0, etag='"e"', last_modified=LM, content_type="audio/flac")
    p = plan({"Range": header}, rep=rep)
    assert p.status == 416 and p.headers["Content-Range"] == "bytes */0"
    assert p.error is not None and "empty (0-byte) representation" in p.error
    assert plan({}, rep=rep).headers["Content-Length"] == "0"


@pytest.mark.parametrize(
    ("header", "fault"),
    [
        ("bytes=abc", "'abc' contains 'a', which is neither an ASCII digit nor '-'"),
        ("bytes=", "no byte range after 'bytes='"),
        ("bytes= , ", "no byte range after 'bytes='"),
        ("bytes", "'bytes' is not followed by '='"),
        ("bytes=5-2", "'5-2' ends before it starts (last-pos 2 < first-pos 5)"),
        ("bytes=-5-10", "'-5-10' must contain exactly one '-'"),
        ("bytes=--5", "'--5' must contain exactly one '-'"),
        ("bytes=5", "'5' must contain exactly one '-'"),
        ("bytes=-", "'-' has neither a first-pos nor a suffix-length"),
        ("bytes=\u0663-5", "contains '\u0663', which is neither an ASCII digit nor '-'"),  # Arabic-Indic 3
        ("bytes=0-\uff12", "contains '\uff12'"),  # fullwidth 2
        ("bytes=0-1 2", "'0-1 2' contains ' '"),
        ("bytes=0-1;5-6", "contains ';'"),
        ("bytes=" + "1" * 19 + "-", "has a number longer than 18 digits"),
        ("bytes=0-" + "9" * 19, "has a number longer than 18 digits"),
        ("bytes=" + ",".join(["0-1"] * 300), "the header is 1,205 characters long (at most 1,000)"),
    ],
)
def test_malformed_byte_ranges_are_416_naming_the_fault_and_the_forms(header: str, fault: str) -> None:
    p = plan({"Range": header})
    assert p.status == 416 and p.ranges == ()
    assert p.headers["Content-Range"] == "bytes */10000"
    assert p.error is not None and p.error.startswith("malformed Range ")
    assert fault in p.error and FORMS in p.error
    assert len(p.error) < 400  # the echo of a long header is cut short


@pytest.mark.parametrize("header", ["items=0-5", "0-5", "=0-5", "bytesx=0-5", "none"])
def test_other_units_are_ignored(header: str) -> None:
    p = plan({"Range": header})
    assert p.status == 200 and p.ranges == () and p.headers["Content-Length"] == "10000"


def test_too_many_ranges() -> None:
    nine = "bytes=" + ",".join(f"{i * 100}-{i * 100 + 9}" for i in range(9))
    p = plan({"Range": nine})
    assert p.status == 416 and p.error is not None
    assert p.error.startswith("too many ranges (at most 8)") and "has 9" in p.error
    assert p.headers["Content-Range"] == "bytes */10000"
    eight = plan({"Range": nine.rsplit(",", 1)[0]})
    assert eight.status == 206 and len(eight.ranges) == 8
    assert plan({"Range": "bytes=0-1,5-6,9-10"}, max_ranges=2).status == 416


def test_head_plans_like_get_and_other_methods_ignore_range() -> None:
    for header in ("bytes=0-499", "bytes=-500", "bytes=abc", "bytes=20000-", "items=1-2"):
        get, head = plan({"Range": header}), plan({"Range": header}, method="HEAD")
        assert (head.status, head.ranges, head.headers, head.error) == (
            get.status,
            get.ranges,
            get.headers,
            get.error,
        )
    assert plan({"Range": "bytes=0-0,-1"}, method="head").ranges == ((0, 0), (9999, 9999))
    post = plan({"Range": "bytes=0-499"}, method="POST")
    assert post.status == 200 and post.ranges == ()


def test_starlette_headers_are_looked_up_case_insensitively() -> None:
    headers = Headers(raw=[(b"range", b"bytes=0-4"), (b"if-range", b'"v1"')])
    assert evaluate("GET", headers, REP).ranges == ((0, 4),)
    assert evaluate("GET", Headers(headers={"If-None-Match": '"v1"'}), REP).status == 304


# ---------------------------------------------------------------- evaluate: If-Range


@pytest.mark.parametrize(
    ("if_range", "status"),
    [
        ('"v1"', 206),
        (' "v1" ', 206),
        ('"v2"', 200),
        ('W/"v1"', 200),  # a weak tag never matches
        ('"v1", "v2"', 200),  # not an entity-tag
        (LM_HTTP, 206),  # the exact date
        ("Wed, 01 May 2024 12:00:01 GMT", 200),
        ("Wed, 01 May 2024 11:59:59 GMT", 200),
        ("Wednesday, 01-May-24 12:00:00 GMT", 206),  # RFC 850, same instant
        ("not a date", 200),
    ],
)
def test_if_range(if_range: str, status: int) -> None:
    p = plan({"Range": "bytes=0-499", "If-Range": if_range})
    assert p.status == status
    assert p.ranges == (((0, 499),) if status == 206 else ())


def test_failed_if_range_ignores_even_a_malformed_range() -> None:
    assert plan({"Range": "bytes=abc", "If-Range": '"old"'}).status == 200
    assert plan({"Range": "bytes=abc", "If-Range": '"v1"'}).status == 416


def test_if_range_without_range_is_ignored() -> None:
    assert plan({"If-Range": '"old"'}).status == 200


# ---------------------------------------------------------------- evaluate: preconditions


@pytest.mark.parametrize(
    "inm", ['"v1"', '"a", "v1"', '"a","v1" ,"b"', 'W/"v1"', "*", ' "x,y" , "v1"', 'junk, "v1"']
)
def test_if_none_match_that_matches_is_304(inm: str) -> None:
    for method in ("GET", "HEAD"):
        p = plan({"If-None-Match": inm, "Range": "bytes=0-4"}, method=method)
        assert p == Plan(304, (), {"Accept-Ranges": "bytes", "ETag": '"v1"', "Last-Modified": LM_HTTP}, None)


@pytest.mark.parametrize("inm", ['"v2"', '"a", "b"', 'W/"v2"', '"v1', "v1", ""])
def test_if_none_match_that_does_not_match_goes_on(inm: str) -> None:
    assert plan({"If-None-Match": inm}).status == 200
    assert plan({"If-None-Match": inm, "Range": "bytes=0-4"}).status == 206


def test_if_none_match_matching_on_other_methods_is_412() -> None:
    p = plan({"If-None-Match": '"v1"'}, method="PUT")
    assert p.status == 412 and p.error is not None and "If-None-Match" in p.error


@pytest.mark.parametrize(
    "ims",
    [
        LM_HTTP,
        "Thu, 02 May 2024 00:00:00 GMT",
        "Wednesday, 01-May-24 12:00:00 GMT",
        "Wed May  1 12:00:00 2024",
    ],
)
def test_if_modified_since_not_modified_is_304(ims: str) -> None:
    p = plan({"If-Modified-Since": ims})
    assert p.status == 304 and p.ranges == () and "Content-Length" not in p.headers
    assert plan({"If-Modified-Since": ims}, method="POST").status == 200  # GET/HEAD only


@pytest.mark.parametrize(
    "ims", ["Wed, 01 May 2024 11:59:59 GMT", "yesterday", "Wed, 01 May 2024 25:00:00 GMT"]
)
def test_if_modified_since_modified_or_unparseable_is_ignored(ims: str) -> None:
    assert plan({"If-Modified-Since": ims}).status == 200


def test_if_none_match_takes_precedence_over_if_modified_since() -> None:
    assert plan({"If-None-Match": '"v0"', "If-Modified-Since": LM_HTTP}).status == 200


@pytest.mark.parametrize("im", ['"v2"', 'W/"v1"', '"a", "b"', "junk"])
def test_if_match_mismatch_is_412(im: str) -> None:
    for method in ("GET", "HEAD", "PUT"):
        p = plan({"If-Match": im, "Range": "bytes=0-4"}, method=method)
        assert p.status == 412 and p.ranges == ()
        assert p.headers == {"Accept-Ranges": "bytes", "ETag": '"v1"', "Last-Modified": LM_HTTP}
        assert p.error is not None and p.error.startswith(f"precondition failed: If-Match {im!r}")
        assert 'current ETag "v1"' in p.error


@pytest.mark.parametrize("im", ['"v1"', "*", '"a", "v1"'])
def test_if_match_that_matches_goes_on(im: str) -> None:
    assert plan({"If-Match": im, "Range": "bytes=0-4"}).status == 206


def test_if_match_is_evaluated_before_if_none_match() -> None:
    assert plan({"If-Match": '"v2"', "If-None-Match": '"v1"'}).status == 412


def test_if_unmodified_since() -> None:
    p = plan({"If-Unmodified-Since": "Wed, 01 May 2024 11:59:59 GMT"})
    assert p.status == 412 and p.error is not None
    assert "modified at Wed, 01 May 2024 12:00:00 GMT, after If-Unmodified-Since" in p.error
    assert plan({"If-Unmodified-Since": LM_HTTP}).status == 200
    assert plan({"If-Unmodified-Since": "garbage"}).status == 200
    # If-Match present: If-Unmodified-Since is not evaluated (RFC 9110 §13.2.2 step 2)
    assert plan({"If-Match": '"v1"', "If-Unmodified-Since": "Wed, 01 May 2024 11:59:59 GMT"}).status == 200


def test_preconditions_come_before_range() -> None:
    assert plan({"If-None-Match": '"v1"', "Range": "bytes=abc"}).status == 304
    assert plan({"If-Match": '"no"', "Range": "bytes=20000-"}).status == 412


# ---------------------------------------------------------------- Representation


def test_representation_validates_its_fields() -> None:
    with pytest.raises(ValueError, match="quoted strong entity-tag"):
        Representation(size=1, etag="v1", last_modified=LM, content_type="audio/flac")
    with pytest.raises(ValueError, match="quoted strong entity-tag"):
        Representation(size=1, etag='W/"v1"', last_modified=LM, content_type="audio/flac")
    with pytest.raises(ValueError, match="timezone-aware"):
        Representation(size=1, etag='"v1"', last_modified=datetime(2024, 5, 1), content_type="x/y")
    with pytest.raises(ValueError, match="size must be >= 0"):
        Representation(size=-1, etag='"v1"', last_modified=LM, content_type="x/y")


def test_last_modified_is_sent_in_gmt_whole_seconds() -> None:
    paris = LM.astimezone(ZoneInfo("Europe/Paris")) + timedelta(microseconds=999_999)
    rep = Representation(size=1, etag='"v1"', last_modified=paris, content_type="x/y")
    assert plan({}, rep=rep).headers["Last-Modified"] == LM_HTTP
    assert plan({"If-Modified-Since": LM_HTTP}, rep=rep).status == 304


# ---------------------------------------------------------------- BlobResponse as an ASGI app


class Harness:
    """A server stand-in: a receive that delivers the (empty) request and then waits, optionally
    for a disconnect, and a send that records messages (and may fail or set the disconnect)."""

    def __init__(self, *, fail_after: int | None = None, exc: Exception | None = None) -> None:
        self.messages: list[Message] = []
        self.fail_after = fail_after
        self.exc = exc or OSError("connection reset")
        self.gone = anyio.Event()
        self.disconnect_after: int | None = None
        self._requested = False

    async def receive(self) -> Message:
        if not self._requested:
            self._requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if self.gone.is_set():
            return  # what an ASGI 2.3 server (uvicorn) does: drop it, without yielding
        if self.fail_after is not None and len(self.messages) >= self.fail_after:
            raise self.exc
        self.messages.append(message)
        if self.disconnect_after is not None and len(self.messages) >= self.disconnect_after:
            self.gone.set()

    @property
    def status(self) -> int:
        return int(self.messages[0]["status"])

    @property
    def headers(self) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in self.messages[0]["headers"]}

    @property
    def body(self) -> bytes:
        return b"".join(m["body"] for m in self.messages[1:])


def serve(response: BlobResponse, harness: Harness | None = None, method: str = "GET") -> Harness:
    h = harness or Harness()
    scope = {"type": "http", "method": method, "asgi": {"version": "3.0", "spec_version": "2.3"}}
    anyio.run(response, scope, h.receive, h.send)
    return h


@pytest.fixture
def blob(tmp_path: Path) -> Path:
    path = tmp_path / "blob.flac"
    path.write_bytes(DATA)
    return path


def response(path: Path, headers: dict[str, str], method: str = "GET", **kw: Any) -> BlobResponse:
    return BlobResponse(path, REP, Headers(headers=headers), method, **kw)


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("chunk_size", [7, 4096, 256 * 1024])
@pytest.mark.parametrize(
    ("header", "slices"),
    [
        (None, [(0, 9999)]),
        ("bytes=0-499", [(0, 499)]),
        ("bytes=-500", [(9500, 9999)]),
        ("bytes=0-0,-1", [(0, 0), (9999, 9999)]),
        ("bytes=500-600,601-999", [(500, 999)]),
        ("bytes=9000-,0-99,5000-5999", [(0, 99), (5000, 5999), (9000, 9999)]),
    ],
)
def test_blob_response_sends_exact_bytes_in_chunks(
    blob: Path, chunk_size: int, header: str | None, slices: list[tuple[int, int]]
) -> None:
    h = serve(response(blob, {"Range": header} if header else {}, chunk_size=chunk_size))
    assert h.messages[0]["type"] == "http.response.start"
    bodies = h.messages[1:]
    assert all(m["type"] == "http.response.body" for m in bodies)
    assert [m.get("more_body", False) for m in bodies] == [True] * (len(bodies) - 1) + [False]
    assert int(h.headers["content-length"]) == len(h.body)
    if len(slices) == 1:
        first, last = slices[0]
        assert all(len(m["body"]) <= chunk_size for m in bodies)
        assert h.status == (200 if header is None else 206)
        assert h.body == DATA[first : last + 1]
    else:
        parts = parse_byteranges(h.headers["content-type"], h.body)
        assert parts == [("audio/flac", f"bytes {a}-{b}/{SIZE}", DATA[a : b + 1]) for a, b in slices]


def test_blob_response_head_has_get_headers_and_no_body(blob: Path) -> None:
    for headers in ({}, {"Range": "bytes=0-499"}, {"Range": "bytes=x"}, {"If-None-Match": "*"}):
        get = serve(response(blob, headers))
        head = serve(response(blob, headers, method="HEAD"), method="HEAD")
        assert head.status == get.status and head.headers == get.headers
        assert head.body == b"" and head.messages[-1].get("more_body", False) is False


def test_blob_response_renders_412_and_416_as_json(blob: Path) -> None:
    extra = {"Cache-Control": "private", "Content-Length": "999", "ETag": '"spoof"'}
    h = serve(response(blob, {"Range": "bytes=5-2"}, extra_headers=extra))
    assert h.status == 416
    body = json.loads(h.body)
    assert body["error"]["status"] == 416 and "'5-2' ends before it starts" in body["error"]["message"]
    assert h.headers["content-type"] == "application/json"
    assert h.headers["content-length"] == str(len(h.body))
    assert h.headers["content-range"] == "bytes */10000"
    assert h.headers["cache-control"] == "private" and h.headers["etag"] == '"v1"'

    h = serve(response(blob, {"If-Match": '"v0"'}))
    assert h.status == 412 and json.loads(h.body)["error"]["status"] == 412
    assert "content-range" not in h.headers


def test_blob_response_304_has_validators_and_no_body(blob: Path) -> None:
    h = serve(response(blob, {"If-None-Match": '"v1"'}, extra_headers={"Cache-Control": "private"}))
    assert h.status == 304 and h.body == b""
    assert h.headers == {
        "cache-control": "private",
        "accept-ranges": "bytes",
        "etag": '"v1"',
        "last-modified": LM_HTTP,
    }


def test_truncated_file_stops_cleanly_with_a_short_incomplete_body(blob: Path, tmp_path: Path) -> None:
    short = tmp_path / "short.flac"
    short.write_bytes(DATA[:6000])
    before = open_fds()
    h = serve(response(short, {}, chunk_size=4096))
    assert h.headers["content-length"] == "10000"
    assert h.body == DATA[:6000]
    # never a final message: the server closes the connection, so the client sees the truncation
    assert all(m.get("more_body") is True for m in h.messages[1:])
    assert open_fds() == before

    h = serve(response(short, {"Range": "bytes=0-0,5000-7999"}, chunk_size=4096))
    assert h.body.endswith(DATA[5000:6000]) and all(m.get("more_body") for m in h.messages[1:])


@pytest.mark.parametrize("exc", [OSError("reset"), ClientDisconnect()])
@pytest.mark.parametrize("fail_after", [0, 1, 3])
def test_send_failing_on_disconnect_is_quiet_and_closes_the_file(
    blob: Path, exc: Exception, fail_after: int
) -> None:
    before = open_fds()
    h = serve(response(blob, {}, chunk_size=100), Harness(fail_after=fail_after, exc=exc))
    assert len(h.messages) == fail_after
    assert open_fds() == before


def test_disconnect_seen_by_receive_stops_reading(blob: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[int] = []
    real_pread: Callable[[int, int, int], bytes] = os.pread

    def counting_pread(fd: int, n: int, offset: int) -> bytes:
        reads.append(offset)
        return real_pread(fd, n, offset)

    monkeypatch.setattr(os, "pread", counting_pread)
    h = Harness()
    h.disconnect_after = 3  # start + 2 body chunks, then the client is gone
    before = open_fds()
    serve(response(blob, {}, chunk_size=100), h)
    assert len(h.messages) == 3
    assert 2 <= len(reads) < 10  # of 100 chunks: the stream was cancelled, not read to the end
    assert open_fds() == before


def test_missing_file_raises_before_anything_is_sent(tmp_path: Path) -> None:
    h = Harness()
    with pytest.raises(FileNotFoundError):
        serve(response(tmp_path / "nope", {}), h)
    assert h.messages == []


def test_chunk_size_must_be_positive(blob: Path) -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        response(blob, {}, chunk_size=0)


# ---------------------------------------------------------------- AccelResponse, error_response_for


def test_accel_response_hands_the_file_to_nginx_with_an_empty_body() -> None:
    r = AccelResponse(
        "/_blobs/ab/cd.flac", REP, extra_headers={"Cache-Control": "private", "Content-Length": "9"}
    )
    assert r.status_code == 200 and r.body == b""
    assert r.raw_headers == [
        (b"cache-control", b"private"),
        (b"x-accel-redirect", b"/_blobs/ab/cd.flac"),
        (b"content-type", b"audio/flac"),
        (b"etag", b'"v1"'),
        (b"last-modified", LM_HTTP.encode()),
        (b"accept-ranges", b"bytes"),
        (b"content-length", b"0"),
    ]
    h = Harness()
    anyio.run(r, {"type": "http", "method": "GET"}, h.receive, h.send)
    assert h.status == 200 and h.body == b"" and h.headers["content-length"] == "0"


@pytest.mark.parametrize("uri", ["relative/x", "/a b", "/a\r\nX-Evil: 1", ""])
def test_accel_response_refuses_odd_uris(uri: str) -> None:
    with pytest.raises(ValueError, match="internal_uri"):
        AccelResponse(uri, REP)


def test_error_response_for() -> None:
    r = error_response_for(plan({"Range": "bytes=20000-"}))
    assert r.status_code == 416 and r.headers["content-type"] == "application/json"
    assert r.headers["content-range"] == "bytes */10000"
    assert json.loads(bytes(r.body))["error"]["message"].startswith("range not satisfiable")
    with pytest.raises(ValueError, match="no error"):
        error_response_for(plan({}))
