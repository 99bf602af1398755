"""One contract for every blob store adapter."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests import s3server
from tonearm.adapters.blobs.local import LocalBlobStore
from tonearm.adapters.blobs.memory import MemoryBlobStore
from tonearm.adapters.blobs.s3 import S3BlobStore
from tonearm.bootstrap import blob_store_for
from tonearm.ports.blobs import BlobKeyError, BlobNotFound, BlobStore, local_copy


@pytest.fixture
def s3_url(monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the moto server (a real S3 API over HTTP), with a key prefix."""
    s3server.use_test_credentials(monkeypatch)
    return f"s3://{s3server.new_bucket()}/tonearm?endpoint={s3server.endpoint()}&region=us-east-1"


@pytest.fixture(params=["local", "memory", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    if request.param == "s3":
        return blob_store_for(request.getfixturevalue("s3_url"))
    return MemoryBlobStore()


def test_put_open_size_delete(store: BlobStore, tmp_path: Path) -> None:
    assert store.put_bytes("a/b.bin", b"hello") == 5
    with store.open("a/b.bin") as fh:
        assert fh.read() == b"hello"
    assert store.size("a/b.bin") == 5 and store.exists("a/b.bin")
    src = tmp_path / "src.bin"
    src.write_bytes(b"x" * 1000)
    assert store.put_file("tracks/T1/original.flac", src) == 1000
    assert store.size("tracks/T1/original.flac") == 1000
    store.delete("a/b.bin")
    store.delete("a/b.bin")  # idempotent
    assert not store.exists("a/b.bin")
    with pytest.raises(BlobNotFound):
        store.open("a/b.bin")


@pytest.mark.parametrize(
    "key",
    ["../etc/passwd", "a/../../x", "/abs", "a//b", "a/\x00b", "a\\b", "", ".hidden", "a/%2e%2e/b", "x" * 300],
)
def test_hostile_keys_are_refused(store: BlobStore, key: str) -> None:
    with pytest.raises(BlobKeyError):
        store.put_bytes(key, b"x")
    with pytest.raises(BlobKeyError):
        store.exists(key)


def test_local_store_never_leaves_its_root(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "root")
    (tmp_path / "secret").write_text("no")
    (tmp_path / "root" / "link").symlink_to(tmp_path)
    with pytest.raises(BlobNotFound):
        store.open("link/secret")


def test_overwrite_replaces_the_whole_blob(store: BlobStore) -> None:
    store.put_bytes("k/v", b"a much longer first version")
    store.put_bytes("k/v", b"short")
    assert store.size("k/v") == 5
    with store.open("k/v") as fh:
        assert fh.read() == b"short"


def test_missing_keys(store: BlobStore) -> None:
    assert not store.exists("no/such/blob")
    with pytest.raises(BlobNotFound):
        store.size("no/such/blob")
    with pytest.raises(BlobNotFound):
        store.open("no/such/blob")
    store.delete("no/such/blob")  # not an error


def test_big_file_streams_in_and_out(store: BlobStore, tmp_path: Path) -> None:
    """Big enough for a multipart upload on S3; read back in chunks and through `local_copy`."""
    data = os.urandom(1 << 20) * 20 + b"tail"
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    assert store.put_file("tracks/T2/original.flac", src) == len(data)
    assert store.size("tracks/T2/original.flac") == len(data)
    with store.open("tracks/T2/original.flac") as fh:
        chunks = []
        while chunk := fh.read(1 << 20):
            assert len(chunk) <= 1 << 20
            chunks.append(chunk)
    assert b"".join(chunks) == data
    with local_copy(store, "tracks/T2/original.flac", tmp_path / "work") as path:
        assert path.read_bytes() == data
    assert path.exists() == (store.local_path("tracks/T2/original.flac") is not None)  # copies are removed


def test_presigned_url_serves_bytes_and_ranges(store: BlobStore) -> None:
    data = bytes(range(256)) * 40
    store.put_bytes("tracks/T3/aac_160.m4a", data)
    url = store.presigned_url("tracks/T3/aac_160.m4a", 600)
    if isinstance(store, LocalBlobStore | MemoryBlobStore):
        assert url is None  # bytes come from local_path (sendfile) or from open()
        return
    assert url is not None
    whole = httpx.get(url)
    assert whole.status_code == 200 and whole.content == data
    part = httpx.get(url, headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == data[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
    assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == ["600"]
    with pytest.raises(BlobKeyError):
        store.presigned_url("../escape", 600)


def test_s3_store_layout_multipart_and_public_endpoint(s3_url: str, tmp_path: Path) -> None:
    """What only S3 has: the key prefix, real multipart uploads, and URLs signed for the public host."""
    store = blob_store_for(s3_url)
    assert isinstance(store, S3BlobStore) and store.local_path("a/b") is None
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(40 << 20))
    store.put_file("tracks/T4/original.wav", big)
    store.put_bytes("a/b", b"x")
    client = s3server.client()
    listed = client.list_objects_v2(Bucket=store.bucket)["Contents"]
    assert sorted(o["Key"] for o in listed) == ["tonearm/a/b", "tonearm/tracks/T4/original.wav"]
    head = client.head_object(Bucket=store.bucket, Key="tonearm/tracks/T4/original.wav")
    assert head["ETag"].strip('"').endswith("-3")  # 40 MiB went up as a three-part upload
    assert head["ContentType"] == "audio/wav"  # what a player fetching it directly is told

    public = s3server.endpoint().replace("127.0.0.1", "localhost")
    outside = blob_store_for(f"{s3_url}&public_endpoint={public}")
    url = outside.presigned_url("a/b", 60)
    assert url is not None and url.startswith(f"{public}/{store.bucket}/tonearm/a/b?")
    assert httpx.get(url).content == b"x"


def test_s3_url_is_parsed_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    s3server.use_test_credentials(monkeypatch)
    # Port 9 (discard) on a TEST-NET address: any connection attempt would hang or fail.
    store = blob_store_for("s3://bucket/a//b/?endpoint=http://192.0.2.1:9&region=eu-west-1")
    assert isinstance(store, S3BlobStore) and store.prefix == "a/b"
    url = store.presigned_url("x/y.mp4", 30)
    assert url is not None and url.startswith("http://192.0.2.1:9/bucket/a/b/x/y.mp4?")
    assert "eu-west-1" in parse_qs(urlsplit(url).query)["X-Amz-Credential"][0]
    with pytest.raises(ValueError, match="unknown"):
        blob_store_for("s3://bucket?endpont=http://x")
    with pytest.raises(ValueError, match="bucket"):
        blob_store_for("s3:///prefix")
