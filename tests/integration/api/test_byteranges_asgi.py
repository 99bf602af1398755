"""BlobResponse through real parts: a tiny Starlette app under starlette's TestClient, and the same
app under a real uvicorn server (h11 and httptools) on a free port, called with httpx."""

from __future__ import annotations

import json
import random
import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from tonearm.http.byteranges import AccelResponse, BlobResponse, Representation

SIZE = 10_000
DATA = random.Random(14).randbytes(SIZE)
LM_HTTP = "Wed, 01 May 2024 12:00:00 GMT"
REP = Representation(
    size=SIZE, etag='"track-1"', last_modified=datetime(2024, 5, 1, 12, tzinfo=UTC), content_type="audio/flac"
)
EXTRA = {"Cache-Control": "private, max-age=60", "Access-Control-Allow-Origin": "*"}


def parse_byteranges(content_type: str, body: bytes) -> list[tuple[str, str, bytes]]:
    """Strictly parses multipart/byteranges into (Content-Type, Content-Range, data) parts; each
    part's length comes from its Content-Range, never from searching for the boundary."""
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
        fields = dict(
            line.split(": ", 1) for line in body[pos + 2 : head_end].decode("latin-1").split("\r\n")
        )
        assert set(fields) == {"Content-Type", "Content-Range"}
        cr = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", fields["Content-Range"])
        assert cr and int(cr.group(3)) == SIZE
        pos = head_end + 4
        end = pos + int(cr.group(2)) - int(cr.group(1)) + 1
        parts.append((fields["Content-Type"], fields["Content-Range"], body[pos:end]))
        pos = end


def make_app(blob: Path, short: Path) -> Starlette:
    async def whole(request: Request) -> BlobResponse:
        return BlobResponse(blob, REP, request.headers, request.method, extra_headers=EXTRA, chunk_size=1000)

    async def truncated(request: Request) -> BlobResponse:
        return BlobResponse(short, REP, request.headers, request.method, chunk_size=1000)

    async def accel(request: Request) -> AccelResponse:
        return AccelResponse("/_internal/blobs/track-1.flac", REP, extra_headers=EXTRA)

    return Starlette(
        routes=[
            Route("/blob", whole, methods=["GET", "HEAD", "PUT"]),
            Route("/short", truncated, methods=["GET"]),
            Route("/accel", accel, methods=["GET"]),
        ]
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("blobs")
    (d / "blob.flac").write_bytes(DATA)
    (d / "short.flac").write_bytes(DATA[:6500])  # truncated underneath a 10,000-byte representation
    return d / "blob.flac", d / "short.flac"


@pytest.fixture(scope="module")
def client(files: tuple[Path, Path]) -> Iterator[TestClient]:
    with TestClient(make_app(*files)) as tc:
        yield tc


@pytest.fixture(scope="module", params=["h11", "httptools"])
def server(request: pytest.FixtureRequest, files: tuple[Path, Path]) -> Iterator[httpx.Client]:
    """A real uvicorn on 127.0.0.1:<free port>, in a thread, serving the app above."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        make_app(*files), http=request.param, ws="none", lifespan="off", log_level="warning", access_log=False
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert thread.is_alive(), "uvicorn exited while starting"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            yield http
    finally:
        srv.should_exit = True
        thread.join(30)
        sock.close()
        assert not thread.is_alive()


RFC_EXAMPLES = [
    ("bytes=0-499", [(0, 499)]),
    ("bytes=500-999", [(500, 999)]),
    ("bytes=-500", [(9500, 9999)]),
    ("bytes=9500-", [(9500, 9999)]),
    ("bytes=0-0,-1", [(0, 0), (9999, 9999)]),
    ("bytes=500-600,601-999", [(500, 999)]),
    ("bytes=500-700,601-999", [(500, 999)]),
]


def check_ranged(r: httpx.Response, slices: list[tuple[int, int]]) -> None:
    assert r.status_code == 206, r.text
    assert r.headers["accept-ranges"] == "bytes" and r.headers["etag"] == '"track-1"'
    assert r.headers["last-modified"] == LM_HTTP and r.headers["cache-control"] == EXTRA["Cache-Control"]
    assert int(r.headers["content-length"]) == len(r.content)
    if len(slices) == 1:
        first, last = slices[0]
        assert r.headers["content-type"] == "audio/flac"
        assert r.headers["content-range"] == f"bytes {first}-{last}/{SIZE}"
        assert r.content == DATA[first : last + 1]
    else:
        assert "content-range" not in r.headers
        parts = parse_byteranges(r.headers["content-type"], r.content)
        assert parts == [("audio/flac", f"bytes {a}-{b}/{SIZE}", DATA[a : b + 1]) for a, b in slices]


def without_volatile(headers: httpx.Headers) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k not in ("date", "content-type")}


# ---------------------------------------------------------------- under TestClient


@pytest.mark.parametrize(("header", "slices"), RFC_EXAMPLES)
def test_rfc_9110_examples(client: TestClient, header: str, slices: list[tuple[int, int]]) -> None:
    check_ranged(client.get("/blob", headers={"Range": header}), slices)


def test_whole_body_and_head(client: TestClient) -> None:
    r = client.get("/blob")
    assert r.status_code == 200 and r.content == DATA
    assert r.headers["content-length"] == "10000" and r.headers["content-type"] == "audio/flac"
    for headers in ({}, {"Range": "bytes=100-199"}, {"Range": "bytes=0-0,-1"}, {"Range": "bytes=--1"}):
        get, head = client.get("/blob", headers=headers), client.head("/blob", headers=headers)
        assert head.status_code == get.status_code and head.content == b""
        assert without_volatile(head.headers) == without_volatile(get.headers)


def test_conditional_requests(client: TestClient) -> None:
    r = client.get("/blob", headers={"If-None-Match": 'W/"x", W/"track-1"', "Range": "bytes=0-9"})
    assert r.status_code == 304 and r.content == b""
    assert r.headers["etag"] == '"track-1"' and r.headers["last-modified"] == LM_HTTP
    assert "content-type" not in r.headers and "content-range" not in r.headers
    assert client.get("/blob", headers={"If-Modified-Since": LM_HTTP}).status_code == 304
    assert client.get("/blob", headers={"Range": "bytes=0-9", "If-Range": '"old"'}).content == DATA

    r = client.put("/blob", headers={"If-Match": '"old"'})
    assert r.status_code == 412 and r.headers["content-type"] == "application/json"
    assert r.json()["error"]["status"] == 412 and "If-Match" in r.json()["error"]["message"]
    r = client.get("/blob", headers={"If-Unmodified-Since": "Tue, 30 Apr 2024 00:00:00 GMT"})
    assert r.status_code == 412 and "after If-Unmodified-Since" in r.json()["error"]["message"]


def test_416_is_json(client: TestClient) -> None:
    r = client.get("/blob", headers={"Range": "bytes=10000-"})
    assert r.status_code == 416 and r.headers["content-range"] == "bytes */10000"
    assert r.json() == {
        "error": {
            "status": 416,
            "message": "range not satisfiable: no range in 'bytes=10000-' overlaps the 10000-byte "
            "representation (positions 0-9999)",
        }
    }


def test_accel_response(client: TestClient) -> None:
    r = client.get("/accel", headers={"Range": "bytes=0-9"})
    assert r.status_code == 200 and r.content == b""
    assert r.headers["x-accel-redirect"] == "/_internal/blobs/track-1.flac"
    assert r.headers["etag"] == '"track-1"' and r.headers["content-type"] == "audio/flac"
    assert r.headers["cache-control"] == EXTRA["Cache-Control"] and r.headers["content-length"] == "0"


def test_a_fastapi_route_may_return_it(files: tuple[Path, Path]) -> None:
    api = FastAPI()

    @api.get("/b")
    def b(request: Request) -> Response:
        return BlobResponse(files[0], REP, request.headers, request.method, extra_headers=EXTRA)

    with TestClient(api) as tc:
        check_ranged(tc.get("/b", headers={"Range": "bytes=-500"}), [(9500, 9999)])
        check_ranged(tc.get("/b", headers={"Range": "bytes=0-0,-1"}), [(0, 0), (9999, 9999)])


# ---------------------------------------------------------------- under a real uvicorn


@pytest.mark.parametrize(("header", "slices"), RFC_EXAMPLES)
def test_uvicorn_rfc_9110_examples(server: httpx.Client, header: str, slices: list[tuple[int, int]]) -> None:
    check_ranged(server.get("/blob", headers={"Range": header}), slices)


def test_uvicorn_multipart_with_many_parts(server: httpx.Client) -> None:
    r = server.get("/blob", headers={"Range": "bytes=9000-, 0-99 ,4000-4999,-1,4500-5500"})
    check_ranged(r, [(0, 99), (4000, 5500), (9000, 9999)])
    assert r.headers["content-type"].startswith("multipart/byteranges; boundary=")


def test_uvicorn_whole_body_head_and_304(server: httpx.Client) -> None:
    r = server.get("/blob")
    assert r.status_code == 200 and r.content == DATA and r.headers["content-length"] == "10000"
    head = server.head("/blob", headers={"Range": "bytes=0-0,-1"})
    get = server.get("/blob", headers={"Range": "bytes=0-0,-1"})
    assert head.status_code == get.status_code == 206 and head.content == b""
    assert without_volatile(head.headers) == without_volatile(get.headers)
    r = server.get("/blob", headers={"If-None-Match": "*"})
    assert r.status_code == 304 and r.content == b"" and r.headers["etag"] == '"track-1"'


def test_uvicorn_416_json(server: httpx.Client) -> None:
    r = server.get("/blob", headers={"Range": "bytes=5-2"})
    assert r.status_code == 416 and r.headers["content-type"] == "application/json"
    assert r.headers["content-range"] == "bytes */10000"
    assert int(r.headers["content-length"]) == len(r.content)
    error = json.loads(r.content)["error"]
    assert error["status"] == 416
    assert error["message"] == (
        "malformed Range 'bytes=5-2': '5-2' ends before it starts (last-pos 2 < first-pos 5); "
        "accepted forms are bytes=first-last, bytes=first- and bytes=-suffix, comma-separated"
    )


def test_uvicorn_truncated_file_gives_a_short_body_and_a_closed_connection(server: httpx.Client) -> None:
    received = bytearray()

    def read_all(r: httpx.Response) -> None:
        for chunk in r.iter_raw():
            received.extend(chunk)

    with server.stream("GET", "/short") as r:
        assert r.status_code == 200 and r.headers["content-length"] == "10000"
        with pytest.raises(httpx.RemoteProtocolError):
            read_all(r)
    assert received == DATA[:6500]
    # the server is fine afterwards
    assert server.get("/blob", headers={"Range": "bytes=0-9"}).content == DATA[:10]
