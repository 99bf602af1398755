"""S3 blob store: the scale-out adapter, for any S3-compatible object store (AWS, MinIO, Ceph, R2).

URL: `s3://<bucket>[/<prefix>][?endpoint=http://host:port&region=us-east-1&public_endpoint=https://cdn]`

* `bucket` must exist; blobs are stored at `<prefix>/<key>` (no prefix: at `<key>`).
* `endpoint`: the S3 API this server talks to (omit for AWS). Given, addressing is path-style
  (`http://host:port/<bucket>/<key>`), which every S3-compatible server understands.
* `region`: the signing region (omit to use boto3's configuration chain).
* `public_endpoint`: where *clients* reach the store, when that differs from `endpoint` (a
  private MinIO behind a public hostname or a CDN). Presigned URLs are signed for that host.

Credentials come from boto3's standard chain (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`,
`AWS_PROFILE`, instance roles); they never appear in the URL. Constructing the store creates the
clients and nothing else: the first request is the first network traffic.

Writes are atomic by S3's semantics (an object, single-part or multipart, appears only once
complete). Bytes reach listeners by a redirect to a presigned GET URL, Range requests included,
so audio never flows through this process.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import parse_qs, urlparse

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from tonearm.ports.blobs import BlobNotFound, check_key

if TYPE_CHECKING:
    from botocore.response import StreamingBody
    from mypy_boto3_s3 import S3Client

_MiB = 1024 * 1024
_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})
_OPTIONS = frozenset({"endpoint", "region", "public_endpoint"})
# Listeners fetch objects straight from the store, so each carries the Content-Type players need.
# Tonearm's blobs are audio and cover art only: an .mp4 is an audio-only fMP4 (HLS).
_CONTENT_TYPES = {
    "m4a": "audio/mp4",
    "mp4": "audio/mp4",
    "ogg": "audio/ogg",
    "opus": "audio/ogg",
    "mp3": "audio/mpeg",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
}


def _content_type(key: str) -> str:
    name = key.rsplit("/", 1)[-1]
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return _CONTENT_TYPES.get(ext, "application/octet-stream")


def _not_found(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code", "")) in _NOT_FOUND


class _BodyReader(io.RawIOBase):
    """An S3 response body as a raw stream, so `open()` can hand out a real buffered file object
    (`with`, `read(n)`, `readinto`) that pulls bytes off the socket as they are read."""

    def __init__(self, body: StreamingBody) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._body.read(len(view))
        view[: len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        return self._body.read()

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


class S3BlobStore:
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint: str | None = None,
        region: str | None = None,
        public_endpoint: str | None = None,
    ) -> None:
        if not bucket:
            raise ValueError("s3 blob store: a bucket name is required")
        self.bucket = bucket
        self.prefix = "/".join(p for p in prefix.split("/") if p)
        path_style = endpoint is not None or public_endpoint is not None
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path" if path_style else "auto"},
            retries={"mode": "standard"},
            # boto3 >= 1.36 adds CRC checksums to every upload by default, which several
            # S3-compatible stores reject; send and check them only where the API requires.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            max_pool_connections=32,  # web threads and job workers share one client
        )
        # One session per store: sessions are not thread-safe, the clients made from them are.
        session = boto3.session.Session()
        self._client: S3Client = session.client(
            "s3", endpoint_url=endpoint, region_name=region, config=config
        )
        self._signer: S3Client = (
            session.client("s3", endpoint_url=public_endpoint, region_name=region, config=config)
            if public_endpoint
            else self._client
        )
        self._transfer = TransferConfig(multipart_threshold=16 * _MiB, multipart_chunksize=16 * _MiB)

    @classmethod
    def from_url(cls, url: str) -> S3BlobStore:
        parts = urlparse(url)
        if parts.scheme != "s3":
            raise ValueError(f"not an s3:// URL: {url!r}")
        query = parse_qs(parts.query, keep_blank_values=True)
        unknown = set(query) - _OPTIONS
        if unknown:
            raise ValueError(f"blob_url: unknown s3:// option(s) {sorted(unknown)} (use {sorted(_OPTIONS)})")

        def opt(name: str) -> str | None:
            values = query.get(name)
            return values[-1] if values and values[-1] else None

        return cls(
            parts.netloc,
            parts.path,
            endpoint=opt("endpoint"),
            region=opt("region"),
            public_endpoint=opt("public_endpoint"),
        )

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put_file(self, key: str, src: Path) -> int:
        # Managed transfer: one PUT for small files, a parallel multipart upload for big ones.
        self._client.upload_file(
            str(src),
            self.bucket,
            self._key(key),
            ExtraArgs={"ContentType": _content_type(key)},
            Config=self._transfer,
        )
        return os.stat(src).st_size

    def put_bytes(self, key: str, data: bytes) -> int:
        self._client.put_object(
            Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=_content_type(key)
        )
        return len(data)

    def open(self, key: str) -> BinaryIO:
        try:
            body = self._client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        except ClientError as exc:
            if _not_found(exc):
                raise BlobNotFound(key) from exc
            raise
        return io.BufferedReader(_BodyReader(body), buffer_size=256 * 1024)

    def size(self, key: str) -> int:
        try:
            head = self._client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if _not_found(exc):
                raise BlobNotFound(key) from exc
            raise
        return head["ContentLength"]

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except BlobNotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        # S3 answers 204 for a missing key too: deleting is idempotent by the protocol.
        self._client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def local_path(self, key: str) -> Path | None:
        return None

    def presigned_url(self, key: str, expires_s: int) -> str | None:
        # Signing is local computation (no request); the signature covers the public host.
        return self._signer.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self._key(key)},
            ExpiresIn=expires_s,
        )
