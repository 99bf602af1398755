"""In-memory blob store: a fast fake for unit tests, shipped with the package."""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import BinaryIO

from tonearm.ports.blobs import BlobNotFound, check_key


class MemoryBlobStore:
    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def put_file(self, key: str, src: Path) -> int:
        return self.put_bytes(key, src.read_bytes())

    def put_bytes(self, key: str, data: bytes) -> int:
        with self._lock:
            self._data[check_key(key)] = bytes(data)
        return len(data)

    def _get(self, key: str) -> bytes:
        try:
            return self._data[check_key(key)]
        except KeyError as exc:
            raise BlobNotFound(key) from exc

    def open(self, key: str) -> BinaryIO:
        return io.BytesIO(self._get(key))

    def size(self, key: str) -> int:
        return len(self._get(key))

    def exists(self, key: str) -> bool:
        return check_key(key) in self._data

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(check_key(key), None)

    def local_path(self, key: str) -> Path | None:
        return None

    def presigned_url(self, key: str, expires_s: int) -> str | None:
        return None
