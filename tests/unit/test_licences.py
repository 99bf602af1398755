"""Offline licences and encrypted files: wrap/unwrap, chunked encryption, and tampering detected."""

from __future__ import annotations

import io
import os

import pytest

from tonearm.domains.devices.licences import (
    HEADER,
    TAG_SIZE,
    LicenceError,
    LicenceIssuer,
    decrypt_chunk,
    decrypt_file,
    encrypt_bytes,
    encrypt_file,
    encrypted_size,
    parse_header,
    unwrap_content_key,
)

DEVICE = "D" * 22
OTHER_DEVICE = "E" * 22
TRACK = "T" * 22


@pytest.fixture
def issuer() -> LicenceIssuer:
    return LicenceIssuer("unit-secret-" + "k" * 32)


def test_keys_are_derived_deterministically_and_kept_apart(issuer: LicenceIssuer) -> None:
    assert issuer.device_key(DEVICE) == issuer.device_key(DEVICE)
    assert len(issuer.device_key(DEVICE)) == 32
    assert issuer.device_key(DEVICE) != issuer.device_key(OTHER_DEVICE)
    assert issuer.content_key(TRACK, "aac_320") == LicenceIssuer("unit-secret-" + "k" * 32).content_key(
        TRACK, "aac_320"
    )
    assert issuer.content_key(TRACK, "aac_320") != issuer.content_key(TRACK, "aac_160")
    assert issuer.content_key(TRACK, "aac_320") != LicenceIssuer("another").content_key(TRACK, "aac_320")


def test_licence_unwraps_with_its_device_key_only(issuer: LicenceIssuer) -> None:
    licence = issuer.issue(DEVICE, TRACK, "aac_320", issued_at=1_800_000_000, expires_at=1_802_592_000)
    key = unwrap_content_key(licence, issuer.device_key(DEVICE))
    assert key == issuer.content_key(TRACK, "aac_320")
    with pytest.raises(LicenceError, match="does not open"):
        unwrap_content_key(licence, issuer.device_key(OTHER_DEVICE))
    issuer.verify(licence)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("expires_at", 1_900_000_000),  # a device extending its own licence
        ("device_id", OTHER_DEVICE),
        ("track_id", "U" * 22),
        ("rendition", "aac_160"),
    ],
)
def test_edited_licences_neither_unwrap_nor_verify(issuer: LicenceIssuer, field: str, value: object) -> None:
    licence = issuer.issue(DEVICE, TRACK, "aac_320", issued_at=1_800_000_000, expires_at=1_802_592_000)
    edited = {**licence, field: value}
    with pytest.raises(LicenceError, match="signature"):
        issuer.verify(edited)
    key = issuer.device_key(OTHER_DEVICE if field == "device_id" else DEVICE)
    with pytest.raises(LicenceError):
        unwrap_content_key(edited, key)


def test_a_forged_signature_is_detected(issuer: LicenceIssuer) -> None:
    licence = issuer.issue(DEVICE, TRACK, "aac_320", issued_at=1, expires_at=2)
    sig = licence["signature"]
    forged = {**licence, "signature": ("A" if sig[0] != "A" else "B") + sig[1:]}
    with pytest.raises(LicenceError, match="signature"):
        issuer.verify(forged)
    with pytest.raises(LicenceError, match="signature"):
        LicenceIssuer("another secret").verify(licence)


def test_licences_are_fresh_each_time(issuer: LicenceIssuer) -> None:
    a, b = issuer.issue_many(DEVICE, [(TRACK, "aac_320"), (TRACK, "aac_320")], 1, 2)
    assert a["wrapped_key"] != b["wrapped_key"]  # random nonces
    assert a["key_id"] == b["key_id"]


@pytest.mark.parametrize("size", [0, 1, 1000, 4096, 4097, 3 * 4096, 50_000])
def test_chunked_encryption_round_trips(issuer: LicenceIssuer, size: int) -> None:
    key = issuer.content_key(TRACK, "aac_320")
    plain = os.urandom(size)
    sealed = encrypt_bytes(plain, key, chunk_size=4096)
    assert len(sealed) == encrypted_size(size, 4096)
    header = parse_header(sealed)
    assert header.plaintext_size == size and header.chunk_size == 4096
    assert decrypt_file(sealed, key) == plain
    assert size < 1000 or plain[:64] not in sealed


def test_chunks_decrypt_one_by_one_for_seeking(issuer: LicenceIssuer) -> None:
    key = issuer.content_key(TRACK, "aac_320")
    plain = os.urandom(10_000)
    sealed = encrypt_bytes(plain, key, chunk_size=4096)
    header = parse_header(sealed)
    step = 4096 + TAG_SIZE
    second = sealed[HEADER.size + step : HEADER.size + 2 * step]
    assert decrypt_chunk(header, 1, second, key) == plain[4096:8192]
    with pytest.raises(LicenceError):
        decrypt_chunk(header, 2, second, key)


def test_the_same_nonce_prefix_makes_the_same_file(issuer: LicenceIssuer) -> None:
    key = issuer.content_key(TRACK, "aac_320")
    prefix = issuer.file_nonce(key, "R" * 22)
    plain = os.urandom(9000)
    assert encrypt_bytes(plain, key, nonce_prefix=prefix) == encrypt_bytes(plain, key, nonce_prefix=prefix)
    assert encrypt_bytes(plain, key) != encrypt_bytes(plain, key)  # random prefixes otherwise
    assert issuer.file_nonce(key, "S" * 22) != prefix


def _sealed(issuer: LicenceIssuer, n_chunks: int = 4) -> tuple[bytes, bytes, bytes]:
    key = issuer.content_key(TRACK, "aac_320")
    plain = os.urandom(4096 * n_chunks - 100)
    return key, plain, encrypt_bytes(plain, key, chunk_size=4096)


def test_truncation_at_a_chunk_boundary_is_detected(issuer: LicenceIssuer) -> None:
    key, _, sealed = _sealed(issuer)
    step = 4096 + TAG_SIZE
    for chunks in (1, 2, 3):
        with pytest.raises(LicenceError, match="truncated"):
            decrypt_file(sealed[: HEADER.size + chunks * step], key)
    with pytest.raises(LicenceError):
        decrypt_file(sealed[:-1], key)
    with pytest.raises(LicenceError):
        decrypt_file(sealed[: HEADER.size], key)


def test_truncation_with_a_rewritten_header_is_detected(issuer: LicenceIssuer) -> None:
    key, _, sealed = _sealed(issuer)
    header = parse_header(sealed)
    step = 4096 + TAG_SIZE
    # Claim the file is two chunks long: the header is in every chunk's AAD, so nothing opens.
    forged = HEADER.pack(b"TENC", 1, 4096, header.key_id, header.nonce_prefix, 2 * 4096)
    with pytest.raises(LicenceError):
        decrypt_file(forged + sealed[HEADER.size : HEADER.size + 2 * step], key)


def test_reordered_and_altered_chunks_are_detected(issuer: LicenceIssuer) -> None:
    key, _, sealed = _sealed(issuer)
    step = 4096 + TAG_SIZE
    head, body = sealed[: HEADER.size], sealed[HEADER.size :]
    chunks = [body[i : i + step] for i in range(0, len(body), step)]
    swapped = head + chunks[1] + chunks[0] + b"".join(chunks[2:])
    with pytest.raises(LicenceError, match="chunk 0"):
        decrypt_file(swapped, key)
    flipped = bytearray(sealed)
    flipped[HEADER.size + step + 10] ^= 1
    with pytest.raises(LicenceError, match="chunk 1"):
        decrypt_file(bytes(flipped), key)
    appended = sealed + chunks[-1]
    with pytest.raises(LicenceError):
        decrypt_file(appended, key)


def test_the_wrong_key_and_not_a_file_are_refused(issuer: LicenceIssuer) -> None:
    key, _, sealed = _sealed(issuer)
    with pytest.raises(LicenceError, match="another key"):
        decrypt_file(sealed, issuer.content_key(TRACK, "aac_160"))
    with pytest.raises(LicenceError, match="magic"):
        decrypt_file(b"ID3" + b"\x00" * 100, key)
    with pytest.raises(LicenceError, match="header"):
        decrypt_file(b"TENC", key)


def test_encrypt_file_refuses_a_source_of_another_size(issuer: LicenceIssuer) -> None:
    key = issuer.content_key(TRACK, "aac_320")
    with pytest.raises(ValueError, match="announced"):
        encrypt_file(io.BytesIO(b"x" * 10), io.BytesIO(), key, 11)
    with pytest.raises(ValueError, match="announced"):
        encrypt_file(io.BytesIO(b"x" * 10), io.BytesIO(), key, 9)
