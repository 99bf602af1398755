"""One contract for every blob store adapter."""

from __future__ import annotations

from pathlib import Path

import pytest

from tonearm.adapters.blobs.local import LocalBlobStore
from tonearm.adapters.blobs.memory import MemoryBlobStore
from tonearm.ports.blobs import BlobKeyError, BlobNotFound, BlobStore


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
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
