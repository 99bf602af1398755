"""Offline licences and encrypted files: the cryptography of downloads (format: docs/offline.md).

Keys. `K` is the server's `secret_key` (UTF-8). Every key is an HMAC-SHA256 of `K` over a
labelled message, so no key is stored and the labels keep their uses apart:

* device key  = HMAC(K, "tonearm-device-key|" + device_id): 32 bytes, handed to the device once,
  when it registers. It only ever unwraps this device's licences.
* content key = HMAC(K, "tonearm-offline-content|" + track_id + "|" + rendition): 32 bytes, the
  same for every device, so each (track, rendition) is encrypted once and the file is shared.
* key id      = base64url(SHA-256("tonearm-key-id|" + content key)[:8]): names a content key in
  file headers and licences without revealing it.

Licence (one per device and track; JSON, binary fields base64url without padding):

    {"v": 1, "device_id", "track_id", "rendition", "key_id",
     "wrapped_key": nonce (12, random) || AES-256-GCM(device key, content key, aad),
     "issued_at", "expires_at",            # Unix seconds
     "signature": HMAC(K, "tonearm-licence-signature|" + canonical)}

    aad       = "tonearm-licence-v1|" + device_id + "|" + track_id + "|" + rendition + "|" + expires_at
    canonical = the fields v .. expires_at above, in that order, joined with "\\n"

The AAD binds the wrapped key to its device, track, rendition and expiry: a client that edits
`expires_at` can no longer unwrap the key. The signature lets the server verify any licence a
device shows it (the device cannot compute it).

Encrypted file (`.tenc`): a 36-byte header, then the plaintext in chunks of `chunk_size` bytes
(64 KiB; the last one shorter, or empty for an empty file), each sealed with AES-256-GCM under
the content key:

    header = "TENC" | version u8 (1) | 3 zero bytes | chunk_size u32 | key id (8 raw bytes)
             | nonce prefix (8) | plaintext size u64          (big-endian)
    chunk i: nonce = nonce prefix || i (u32)
             aad   = header || i (u32) || last (u8: 1 for the final chunk, else 0)
             bytes = ciphertext || tag (16)

Chunk `i` starts at `36 + i * (chunk_size + 16)`, so a player can decrypt any part of the file
(seek) with one Range request. Reordered, altered, dropped or appended chunks fail their tag;
a file cut at a chunk boundary fails because its new final chunk was not sealed as the last one;
an altered header fails every chunk.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import os
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def offline_key(track_id: str, rendition_id: str) -> str:
    """Where a rendition's encrypted file is kept: named by the rendition row, so a re-made
    rendition gets a new file, and whoever deletes a track's renditions deletes these too."""
    return f"tracks/{track_id}/offline/{rendition_id}.tenc"


LICENCE_VERSION = 1
FILE_VERSION = 1
MAGIC = b"TENC"
CHUNK_SIZE = 64 * 1024
TAG_SIZE = 16
KEY_SIZE = 32
NONCE_SIZE = 12
HEADER = struct.Struct(">4sB3xI8s8sQ")  # magic, version, chunk size, key id, nonce prefix, size
MAX_CHUNK_SIZE = 16 * 1024 * 1024
FILE_CONTENT_TYPE = "application/vnd.tonearm.offline"


class LicenceError(ValueError):
    """A licence or encrypted file that does not check out: wrong key, tampered, truncated."""


def b64e(data: bytes) -> str:
    """base64url without padding (how every binary field of a licence is written)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64d(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise LicenceError(f"not base64url: {text[:20]!r}") from exc


def key_id(content_key: bytes) -> bytes:
    """The 8 raw bytes naming a content key (base64url in licences)."""
    return hashlib.sha256(b"tonearm-key-id|" + content_key).digest()[:8]


def licence_aad(device_id: str, track_id: str, rendition: str, expires_at: int) -> bytes:
    return f"tonearm-licence-v{LICENCE_VERSION}|{device_id}|{track_id}|{rendition}|{expires_at}".encode()


_FIELDS = ("v", "device_id", "track_id", "rendition", "key_id", "wrapped_key", "issued_at", "expires_at")


def _canonical(licence: dict[str, Any]) -> bytes:
    return "\n".join(str(licence[f]) for f in _FIELDS).encode()


# Client side -------------------------------------------------------------------------------------
def unwrap_content_key(licence: dict[str, Any], device_key: bytes) -> bytes:
    """The content key a licence carries, unwrapped with the device's key (what a player does
    before playing a download). Raises LicenceError for another device's key or an edited licence."""
    try:
        wrapped = b64d(str(licence["wrapped_key"]))
        aad = licence_aad(
            str(licence["device_id"]),
            str(licence["track_id"]),
            str(licence["rendition"]),
            int(licence["expires_at"]),
        )
    except (KeyError, ValueError) as exc:
        raise LicenceError(f"malformed licence: {exc}") from exc
    if len(device_key) != KEY_SIZE or len(wrapped) != NONCE_SIZE + KEY_SIZE + TAG_SIZE:
        raise LicenceError("malformed licence or device key")
    try:
        key = AESGCM(device_key).decrypt(wrapped[:NONCE_SIZE], wrapped[NONCE_SIZE:], aad)
    except InvalidTag as exc:
        raise LicenceError(
            "this licence does not open with this device key (another device's, or edited)"
        ) from exc
    if b64e(key_id(key)) != licence.get("key_id"):
        raise LicenceError("the unwrapped key does not match the licence's key id")
    return key


@dataclass(frozen=True, slots=True)
class FileHeader:
    version: int
    chunk_size: int
    key_id: bytes
    nonce_prefix: bytes
    plaintext_size: int
    raw: bytes

    @property
    def chunks(self) -> int:
        return max(1, -(-self.plaintext_size // self.chunk_size))


def parse_header(data: bytes) -> FileHeader:
    if len(data) < HEADER.size:
        raise LicenceError("not an offline file: shorter than its header")
    magic, version, chunk_size, kid, prefix, size = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise LicenceError("not an offline file: bad magic")
    if version != FILE_VERSION:
        raise LicenceError(f"unsupported offline file version {version}")
    if not 0 < chunk_size <= MAX_CHUNK_SIZE:
        raise LicenceError(f"invalid chunk size {chunk_size}")
    return FileHeader(version, chunk_size, kid, prefix, size, bytes(data[: HEADER.size]))


def _chunk_aad(header: bytes, index: int, last: bool) -> bytes:
    return header + index.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


def decrypt_chunk(header: FileHeader, index: int, sealed: bytes, content_key: bytes) -> bytes:
    """Chunk `index` of a file (`sealed` = its ciphertext and tag), for players that seek."""
    last = index == header.chunks - 1
    nonce = header.nonce_prefix + index.to_bytes(4, "big")
    try:
        return AESGCM(content_key).decrypt(nonce, sealed, _chunk_aad(header.raw, index, last))
    except InvalidTag as exc:
        raise LicenceError(f"chunk {index} failed authentication (tampered, reordered or truncated)") from exc


def decrypt_file(data: bytes, content_key: bytes) -> bytes:
    """The plaintext of a whole `.tenc` file, checking every chunk, the order and the end.

    For client authors: unwrap the content key from the licence with `unwrap_content_key`, then
    call this (or `decrypt_chunk` per chunk to play while reading). Raises LicenceError."""
    header = parse_header(data)
    if key_id(content_key) != header.key_id:
        raise LicenceError("this file was encrypted with another key (wrong licence for this file)")
    aead = AESGCM(content_key)
    step = header.chunk_size + TAG_SIZE
    body = memoryview(data)[HEADER.size :]
    n = header.chunks
    if len(body) != header.plaintext_size + n * TAG_SIZE:
        # Still decrypt what is there first: a chunk that fails says more than a length.
        n = max(1, -(-len(body) // step))
    out = bytearray()
    for i in range(n):
        sealed = bytes(body[i * step : (i + 1) * step])
        last = i == n - 1
        try:
            out += aead.decrypt(
                header.nonce_prefix + i.to_bytes(4, "big"), sealed, _chunk_aad(header.raw, i, last)
            )
        except InvalidTag as exc:
            raise LicenceError(
                f"chunk {i} failed authentication (tampered, reordered or truncated file)"
            ) from exc
    if len(out) != header.plaintext_size:
        raise LicenceError("the file's length does not match its header (truncated or padded)")
    return bytes(out)


# Server side -------------------------------------------------------------------------------------
def encrypted_size(plaintext_size: int, chunk_size: int = CHUNK_SIZE) -> int:
    chunks = max(1, -(-plaintext_size // chunk_size))
    return HEADER.size + plaintext_size + chunks * TAG_SIZE


def _chunks(src: BinaryIO, size: int, chunk_size: int) -> Iterator[tuple[int, bytes, bool]]:
    total = max(1, -(-size // chunk_size))
    seen = 0
    for i in range(total):
        chunk = src.read(min(chunk_size, size - seen))
        seen += len(chunk)
        if i < total - 1 and len(chunk) != chunk_size:
            raise ValueError(f"the source is shorter than the {size} bytes announced")
        yield i, chunk, i == total - 1
    if seen != size or src.read(1):
        raise ValueError(f"the source is not the {size} bytes announced")


def encrypt_file(
    src: BinaryIO,
    dst: BinaryIO,
    content_key: bytes,
    size: int,
    *,
    nonce_prefix: bytes | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> int:
    """Writes `size` bytes of `src`, encrypted, to `dst`; returns the bytes written.

    `nonce_prefix` (8 bytes) MUST be unique per plaintext under one content key; random by
    default. The server derives it from the rendition's id (`file_nonce`), so the file is a
    function of the rendition: two processes making it at once write the same bytes."""
    prefix = os.urandom(8) if nonce_prefix is None else nonce_prefix
    if len(prefix) != 8 or not 0 < chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError("nonce_prefix must be 8 bytes and chunk_size 1..16 MiB")
    header = HEADER.pack(MAGIC, FILE_VERSION, chunk_size, key_id(content_key), prefix, size)
    aead = AESGCM(content_key)
    dst.write(header)
    written = len(header)
    for i, chunk, last in _chunks(src, size, chunk_size):
        sealed = aead.encrypt(prefix + i.to_bytes(4, "big"), chunk, _chunk_aad(header, i, last))
        dst.write(sealed)
        written += len(sealed)
    return written


def encrypt_bytes(data: bytes, content_key: bytes, **kw: Any) -> bytes:
    out = io.BytesIO()
    encrypt_file(io.BytesIO(data), out, content_key, len(data), **kw)
    return out.getvalue()


class LicenceIssuer:
    """Derives the keys from the server secret, issues licences in bulk and verifies them.

    The HMAC states for each label are computed once and copied per use, and the device's
    AES-GCM context is made once per batch: a licence costs ~10 us of CPU."""

    def __init__(self, secret_key: str) -> None:
        secret = secret_key.encode()
        self._device = hmac.new(secret, b"tonearm-device-key|", hashlib.sha256)
        self._content = hmac.new(secret, b"tonearm-offline-content|", hashlib.sha256)
        self._signature = hmac.new(secret, b"tonearm-licence-signature|", hashlib.sha256)

    def device_key(self, device_id: str) -> bytes:
        h = self._device.copy()
        h.update(device_id.encode())
        return h.digest()

    def content_key(self, track_id: str, rendition: str) -> bytes:
        h = self._content.copy()
        h.update(f"{track_id}|{rendition}".encode())
        return h.digest()

    def file_nonce(self, content_key: bytes, rendition_id: str) -> bytes:
        """The 8-byte nonce prefix of the file made from rendition row `rendition_id`."""
        return hmac.new(content_key, b"tonearm-file-nonce|" + rendition_id.encode(), hashlib.sha256).digest()[
            :8
        ]

    def _sign(self, licence: dict[str, Any]) -> str:
        h = self._signature.copy()
        h.update(_canonical(licence))
        return b64e(h.digest())

    def issue_many(
        self, device_id: str, items: Sequence[tuple[str, str]], issued_at: int, expires_at: int
    ) -> list[dict[str, Any]]:
        """One licence (as JSON-ready dicts) per (track_id, rendition), for one device."""
        aead = AESGCM(self.device_key(device_id))
        nonces = os.urandom(NONCE_SIZE * len(items))
        out: list[dict[str, Any]] = []
        for n, (track_id, rendition) in enumerate(items):
            ck = self.content_key(track_id, rendition)
            nonce = nonces[n * NONCE_SIZE : (n + 1) * NONCE_SIZE]
            wrapped = nonce + aead.encrypt(nonce, ck, licence_aad(device_id, track_id, rendition, expires_at))
            licence: dict[str, Any] = {
                "v": LICENCE_VERSION,
                "device_id": device_id,
                "track_id": track_id,
                "rendition": rendition,
                "key_id": b64e(key_id(ck)),
                "wrapped_key": b64e(wrapped),
                "issued_at": issued_at,
                "expires_at": expires_at,
            }
            licence["signature"] = self._sign(licence)
            out.append(licence)
        return out

    def issue(
        self, device_id: str, track_id: str, rendition: str, issued_at: int, expires_at: int
    ) -> dict[str, Any]:
        return self.issue_many(device_id, [(track_id, rendition)], issued_at, expires_at)[0]

    def verify(self, licence: dict[str, Any]) -> None:
        """Raises LicenceError unless the licence is exactly as this server issued it."""
        try:
            expected = self._sign(licence)
            if licence.get("v") != LICENCE_VERSION:
                raise LicenceError(f"unsupported licence version {licence.get('v')!r}")
        except KeyError as exc:
            raise LicenceError(f"malformed licence: missing {exc}") from exc
        if not hmac.compare_digest(expected, str(licence.get("signature", ""))):
            raise LicenceError("the licence's signature does not match: it was altered or not issued here")
