"""read_tags(): metadata and the cover picture from ID3, Vorbis comments, FLAC and MP4 tags."""

from __future__ import annotations

import base64
import binascii
import contextlib
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import mutagen
import mutagen.flac
import mutagen.id3
import mutagen.mp4
from mutagen._vorbis import VCommentDict

from ._text import (
    clean_multiline,
    first_clean,
    join_clean,
    parse_date,
    parse_flag,
    parse_genres,
    parse_isrc,
    parse_number,
)

# mutagen's constructors are untyped; binding them as Any keeps mypy --strict quiet at call sites.
_ID3: Any = mutagen.id3.ID3
_FlacPicture: Any = mutagen.flac.Picture

_FRONT_COVER: Final = 3  # APIC / FLAC picture type "Cover (front)"


@dataclass(frozen=True, slots=True)
class Tags:
    """Normalized, size-bounded metadata of one audio file. Every field may be missing."""

    title: str | None
    artist: str | None
    album: str | None
    album_artist: str | None
    genres: tuple[str, ...]
    track_number: int | None
    disc_number: int | None
    release_date: str | None  # "YYYY" | "YYYY-MM" | "YYYY-MM-DD", validated
    isrc: str | None  # validated ^[A-Z]{2}[A-Z0-9]{3}\d{7}$
    explicit: bool
    description: str | None  # from comment/description tags
    picture: bytes | None  # raw embedded image bytes, NOT verified (make_thumbnails does that)
    picture_rejected: str | None  # why an embedded picture was dropped


@dataclass(slots=True)
class _Picture:
    type: int
    size: int
    data: bytes | None  # None when it was too large to even decode (base64 in Vorbis comments)


@dataclass(slots=True)
class _Raw:
    """Format-neutral values as found, in priority order, before normalization."""

    values: dict[str, list[Any]] = field(default_factory=dict)
    pictures: list[_Picture] = field(default_factory=list)

    def add(self, key: str, items: Iterable[Any]) -> None:
        self.values.setdefault(key, []).extend(items)

    def get(self, *keys: str) -> list[Any]:
        return [item for key in keys for item in self.values.get(key, ())]


def read_tags(path: Path, *, max_picture_bytes: int = 16 * 1024 * 1024, parsed: Any = None) -> Tags:
    """Read the tags of an audio file (MP3/WAV ID3, FLAC, Ogg Vorbis/Opus, MP4/M4A).

    MUST NOT raise on bad tags or unreadable files: it returns whatever it could read (possibly an
    all-empty Tags). Strings are cleaned (controls/NULs stripped, whitespace collapsed, invalid
    UTF-8 replaced by U+FFFD, capped at 500 chars, descriptions at 5000) but HTML is left as plain
    text. The picture is the front cover (else the first picture); if it is larger than
    `max_picture_bytes` it is dropped and `picture_rejected` says why. Even an unreadable or
    missing file gives an all-empty Tags: probe() is where files are accepted or refused.
    `parsed` MAY be the caller's own `mutagen.File(path)` result, to save parsing the file twice.
    """
    raw = _Raw()
    # mutagen raises a zoo of exception types (struct.error, IndexError, its own errors...) on
    # hostile input; a tag problem must never fail an import, so everything is caught here.
    with contextlib.suppress(Exception):
        _read(Path(path), raw, max_picture_bytes, parsed)
    return _build(raw, max_picture_bytes)


def _read(path: Path, raw: _Raw, max_picture_bytes: int, parsed: Any = None) -> None:
    if not stat.S_ISREG(path.stat().st_mode):
        return  # a FIFO or device would block or never end
    audio: Any = parsed
    # A damaged audio stream makes mutagen.File() fail although the tag itself is fine.
    if audio is None:
        with contextlib.suppress(Exception):
            audio = mutagen.File(path, easy=False)
    tags = audio.tags if audio is not None else None
    if tags is None and _starts_with_id3(path):
        with contextlib.suppress(Exception):
            tags = _ID3(path)

    if isinstance(tags, mutagen.id3.ID3):
        _from_id3(tags, raw)
        if _starts_with_id3(path):
            _id3_fallback(path, tags, raw)
    elif isinstance(tags, VCommentDict):
        _from_vorbis(tags, raw, max_picture_bytes)
        if isinstance(audio, mutagen.flac.FLAC):
            raw.pictures.extend(_Picture(p.type, len(p.data), p.data) for p in audio.pictures)
    elif isinstance(tags, mutagen.mp4.MP4Tags):
        _from_mp4(tags, raw)


def _build(raw: _Raw, max_picture_bytes: int) -> Tags:
    picture, rejected = _choose_picture(raw.pictures, max_picture_bytes)
    return Tags(
        title=first_clean(raw.get("title")),
        artist=join_clean(raw.get("artist")),
        album=first_clean(raw.get("album")),
        album_artist=join_clean(raw.get("album_artist")),
        genres=parse_genres(raw.get("genre")),
        track_number=parse_number(raw.get("track")),
        disc_number=parse_number(raw.get("disc")),
        release_date=parse_date(raw.get("date", "date_release", "date_original")),
        isrc=parse_isrc(raw.get("isrc")),
        explicit=parse_flag(raw.get("explicit")),
        description=next((text for text in map(clean_multiline, raw.get("description")) if text), None),
        picture=picture,
        picture_rejected=rejected,
    )


def _choose_picture(pictures: list[_Picture], limit: int) -> tuple[bytes | None, str | None]:
    candidates = [p for p in pictures if p.size > 0]
    if not candidates:
        return None, None
    # Front cover if there is one, else the first picture; a too-large cover is not replaced by a
    # back cover or booklet page, which would make worse album art than the generated fallback.
    chosen = next((p for p in candidates if p.type == _FRONT_COVER), candidates[0])
    if chosen.size > limit or chosen.data is None:
        return None, f"embedded picture of {chosen.size} bytes is over the {limit}-byte limit"
    return chosen.data, None


# --- ID3 (MP3, WAV) ---------------------------------------------------------------------------

_ID3_TEXT: Final[dict[str, str]] = {
    "TIT2": "title",
    "TPE1": "artist",
    "TALB": "album",
    "TPE2": "album_artist",
    "TCON": "genre",
    "TRCK": "track",
    "TPOS": "disc",
    "TDRC": "date",
    "TYER": "date",
    "TDRL": "date_release",
    "TDOR": "date_original",
    "TSRC": "isrc",
}
_ADVISORY_KEYS: Final = frozenset({"ITUNESADVISORY", "EXPLICIT"})


def _from_id3(tags: Any, raw: _Raw) -> None:
    for frame_id, key in _ID3_TEXT.items():
        for frame in tags.getall(frame_id):
            # TCON.genres resolves ID3v1 references such as "(17)" -> "Rock".
            raw.add(key, frame.genres if frame_id == "TCON" else [str(t) for t in frame.text])
    comments = [c for c in tags.getall("COMM") if not str(c.desc).startswith("iTun")]
    # The comment without a description is "the" comment; iTunNORM/iTunSMPB are encoder data.
    comments.sort(key=lambda c: c.desc != "")
    raw.add("description", ["\n".join(map(str, c.text)) for c in comments])
    for frame in tags.getall("TXXX"):
        desc = str(frame.desc).upper()
        if desc in _ADVISORY_KEYS:
            raw.add("explicit", frame.text)
        elif desc == "DESCRIPTION":
            raw.add("description", frame.text)
        elif desc == "ISRC":
            raw.add("isrc", frame.text)
    for frame in tags.getall("APIC"):
        data = bytes(frame.data)
        raw.pictures.append(_Picture(int(frame.type), len(data), data))


def _starts_with_id3(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(3) == b"ID3"


def _id3_fallback(path: Path, tags: Any, raw: _Raw) -> None:
    """Re-read text frames that mutagen dropped, decoding invalid bytes with U+FFFD.

    mutagen silently discards a text frame whose bytes do not decode in the declared encoding
    (e.g. Latin-1 bytes in a frame marked UTF-8, common from old taggers); we'd rather show
    "Caf\ufffd" than lose the title.
    """
    wanted = {fid for fid in (*_ID3_TEXT, "COMM") if not tags.getall(fid)}
    if not wanted:
        return
    for frame_id, text in _raw_id3_frames(path, wanted):
        if frame_id == "COMM":
            # encoding(1) language(3) description NUL text: keep what follows the description.
            parts = text.split("\x00", 1)
            raw.add("description", [parts[1] if len(parts) > 1 else parts[0]])
        else:
            raw.add(_ID3_TEXT[frame_id], [t for t in text.split("\x00") if t])


_ID3_ENCODINGS: Final = ("latin-1", "utf-16", "utf-16-be", "utf-8")
_MAX_RAW_FRAME: Final = 64 * 1024


def _raw_id3_frames(path: Path, wanted: set[str]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    with path.open("rb") as fh:
        header = fh.read(10)
        major, flags = header[3], header[5]
        # v2.2 uses 3-letter ids and tag-level unsynchronisation would need the whole tag
        # de-unsynchronised first: both are rare enough to leave to mutagen alone.
        if major not in (3, 4) or flags & 0x80:
            return found
        end = 10 + _syncsafe(header[6:10])
        if flags & 0x40:  # extended header
            ext = fh.read(4)
            ext_size = _syncsafe(ext) if major == 4 else int.from_bytes(ext, "big") + 4
            fh.seek(10 + ext_size)
        while fh.tell() + 10 <= end:
            frame_header = fh.read(10)
            frame_id = frame_header[:4]
            if len(frame_header) < 10 or not frame_id.isalnum():
                break  # padding or garbage
            raw_size = frame_header[4:8]
            size = (
                _syncsafe(raw_size)
                if major == 4 and not any(b & 0x80 for b in raw_size)
                else int.from_bytes(raw_size, "big")
            )
            fid = frame_id.decode("ascii")
            format_flags = frame_header[9]
            skip_mask = 0x0C if major == 4 else 0xE0  # compressed/encrypted(/grouped in v2.3)
            if fid not in wanted or size > _MAX_RAW_FRAME or format_flags & skip_mask:
                fh.seek(size, 1)
                continue
            data = fh.read(size)
            if major == 4 and format_flags & 0x02:  # frame-level unsynchronisation
                data = data.replace(b"\xff\x00", b"\xff")
            if major == 4 and format_flags & 0x01:  # data length indicator
                data = data[4:]
            if not data or data[0] > 3:
                continue
            payload = data[4:] if fid == "COMM" else data[1:]
            found.append((fid, payload.decode(_ID3_ENCODINGS[data[0]], "replace")))
    return found


def _syncsafe(data: bytes) -> int:
    value = 0
    for byte in data:
        value = (value << 7) | (byte & 0x7F)
    return value


# --- Vorbis comments (FLAC, Ogg Vorbis, Ogg Opus) ---------------------------------------------

_VORBIS: Final[dict[str, str]] = {
    "TITLE": "title",
    "ARTIST": "artist",
    "ALBUM": "album",
    "ALBUMARTIST": "album_artist",
    "ALBUM ARTIST": "album_artist",
    "ALBUM_ARTIST": "album_artist",
    "GENRE": "genre",
    "TRACKNUMBER": "track",
    "DISCNUMBER": "disc",
    "DATE": "date",
    "YEAR": "date",
    "RELEASEDATE": "date_release",
    "ORIGINALDATE": "date_original",
    "ISRC": "isrc",
    "DESCRIPTION": "description",
    "COMMENT": "description",
    "ITUNESADVISORY": "explicit",
    "EXPLICIT": "explicit",
}


def _from_vorbis(tags: Any, raw: _Raw, max_picture_bytes: int) -> None:
    for key, value in list(tags):
        name = str(key).upper()
        if name in _VORBIS:
            raw.add(_VORBIS[name], [value])
        elif name == "METADATA_BLOCK_PICTURE":
            raw.pictures.append(_vorbis_picture(str(value), max_picture_bytes, flac_block=True))
        elif name == "COVERART":  # legacy: base64 of the bare image
            raw.pictures.append(_vorbis_picture(str(value), max_picture_bytes, flac_block=False))


def _vorbis_picture(value: str, limit: int, *, flac_block: bool) -> _Picture:
    # Size the picture from the base64 length first so a huge one is never decoded into memory.
    estimated = len(value) * 3 // 4
    if estimated > limit + 64 * 1024:
        return _Picture(_FRONT_COVER, estimated, None)
    try:
        data = base64.b64decode(value)
        if flac_block:
            picture = _FlacPicture(data)
            return _Picture(int(picture.type), len(picture.data), bytes(picture.data))
    except (binascii.Error, ValueError, mutagen.MutagenError):
        return _Picture(0, 0, None)
    return _Picture(_FRONT_COVER, len(data), data)


# --- MP4 / M4A ----------------------------------------------------------------------------------

_MP4_TEXT: Final[dict[str, str]] = {
    "\xa9nam": "title",
    "\xa9ART": "artist",
    "\xa9alb": "album",
    "aART": "album_artist",
    "\xa9gen": "genre",  # mutagen also maps the numeric "gnre" atom here
    "\xa9day": "date",
    "ldes": "description",
    "desc": "description",
    "\xa9cmt": "description",
}
_ISRC_ATOM: Final = "----:com.apple.iTunes:ISRC"
_MP4_EXPLICIT: Final = frozenset({1, 4})  # rtng: 1 = explicit (4 = old explicit), 2 = clean


def _from_mp4(tags: Any, raw: _Raw) -> None:
    failed: dict[str, list[bytes]] = getattr(tags, "_failed_atoms", {})
    for key, name in _MP4_TEXT.items():
        if key in tags:
            raw.add(name, tags[key])
        elif key in failed:
            # mutagen refuses text atoms that are not valid UTF-8; decode them with replacement.
            raw.add(name, [text for data in failed[key] for text in _mp4_data_atoms(data)])
    for key, name in (("trkn", "track"), ("disk", "disc")):
        raw.add(name, [pair[0] for pair in tags.get(key, []) if pair])
    raw.add("isrc", [bytes(v).decode("utf-8", "replace") for v in tags.get(_ISRC_ATOM, [])])
    raw.add("explicit", [True for v in tags.get("rtng", []) if v in _MP4_EXPLICIT])
    for cover in tags.get("covr", []):
        data = bytes(cover)
        raw.pictures.append(_Picture(_FRONT_COVER, len(data), data))


def _mp4_data_atoms(data: bytes) -> list[str]:
    texts: list[str] = []
    pos = 0
    while pos + 16 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        if size < 16 or pos + size > len(data):
            break
        if data[pos + 4 : pos + 8] == b"data":
            texts.append(data[pos + 16 : pos + size].decode("utf-8", "replace"))
        pos += size
    return texts
