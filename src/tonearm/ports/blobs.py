"""The blob store port: where audio, renditions and images live.

Keys are made by Tonearm (never by users): segments of `[A-Za-z0-9_.-]` separated by `/`,
with no `..`. `check_key` enforces it so no adapter can be tricked into leaving its root.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)*$")


class BlobKeyError(ValueError):
    pass


def check_key(key: str) -> str:
    if len(key) > 200 or not _KEY_RE.match(key) or ".." in key.split("/"):
        raise BlobKeyError(f"invalid blob key {key!r}")
    return key


class BlobNotFound(KeyError):
    pass


class BlobStore(Protocol):
    def put_file(self, key: str, src: Path) -> int:
        """MUST store the file's bytes under key atomically (readers never see half a blob) and
        return its size. MAY move `src` instead of copying it; callers must not reuse `src`."""
        ...

    def put_bytes(self, key: str, data: bytes) -> int:
        """MUST store data under key atomically and return its size."""
        ...

    def open(self, key: str) -> BinaryIO:
        """MUST return a readable binary file object, or raise BlobNotFound."""
        ...

    def size(self, key: str) -> int:
        """MUST return the blob's size in bytes, or raise BlobNotFound."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """MUST remove the blob; deleting a missing key is not an error."""
        ...

    def local_path(self, key: str) -> Path | None:
        """MAY return a path on this machine's file system so the server can sendfile() it.
        Remote stores return None."""
        ...

    def presigned_url(self, key: str, expires_s: int) -> str | None:
        """MAY return a time-limited URL a client can fetch the bytes from directly (S3)."""
        ...


@contextlib.contextmanager
def local_copy(store: BlobStore, key: str, tmp_dir: Path) -> Iterator[Path]:
    """A path to the blob's bytes on this machine, for tools that need a file (ffmpeg): the blob
    itself on a local store, otherwise a temporary copy removed on exit."""
    path = store.local_path(key)
    if path is not None:
        yield path
        return
    tmp_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tmp_dir) as tmp:
        dst = Path(tmp) / "blob"
        with store.open(key) as src, dst.open("wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
        yield dst
