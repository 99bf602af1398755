"""read_tags(): every tag format, hostile strings, invalid encodings, oversized pictures."""

from __future__ import annotations

import base64
import io
import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from mutagen import id3
from mutagen.flac import FLAC, Picture
from mutagen.mp4 import MP4, MP4Cover, MP4FreeForm
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis
from PIL import Image

from tonearm.media import Tags, read_tags

CopySample = Callable[..., Path]

SCRIPT = '<script>alert("x")</script> & <b>bold</b>'


def _png(size: int = 32, filler: int = 0) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (10, 120, 200)).save(buffer, "PNG")
    # Trailing bytes after IEND make a picture arbitrarily large without a big encode.
    return buffer.getvalue() + b"\0" * filler


def _flac_picture(data: bytes, kind: int = 3) -> Picture:
    picture = Picture()
    picture.type = kind
    picture.mime = "image/png"
    picture.data = data
    return picture


def test_id3_tags_are_read_and_normalized(copy_sample: CopySample) -> None:
    path = copy_sample("tone.mp3")
    tags = id3.ID3()
    tags.add(id3.TIT2(encoding=3, text=[SCRIPT]))
    tags.add(id3.TPE1(encoding=3, text=["Artist A", "Artist B", "artist a"]))
    tags.add(id3.TALB(encoding=1, text=["  Album \t with\n  spaces "]))
    tags.add(id3.TPE2(encoding=3, text=["Various"]))
    tags.add(id3.TCON(encoding=3, text=["rock;Pop/electronic, ROCK", "(17)"]))
    tags.add(id3.TRCK(encoding=3, text=["3/12"]))
    tags.add(id3.TPOS(encoding=3, text=["2/2"]))
    tags.add(id3.TDRC(encoding=3, text=["2019-03-07"]))
    tags.add(id3.TSRC(encoding=3, text=["us-rc1-76-07839"]))
    tags.add(id3.COMM(encoding=3, lang="eng", desc="iTunNORM", text=["00000 0000"]))
    tags.add(id3.COMM(encoding=3, lang="eng", desc="", text=["Line one\n\n\n\nLine   two"]))
    tags.add(id3.TXXX(encoding=3, desc="ITUNESADVISORY", text=["1"]))
    cover = _png()
    tags.add(id3.APIC(encoding=3, mime="image/png", type=4, desc="back", data=_png(8)))
    tags.add(id3.APIC(encoding=3, mime="image/png", type=3, desc="front", data=cover))
    tags.save(path)

    assert read_tags(path) == Tags(
        title=SCRIPT,  # kept verbatim as text: escaping is the renderer's job
        artist="Artist A; Artist B",
        album="Album with spaces",
        album_artist="Various",
        genres=("Rock", "Pop", "Electronic"),
        track_number=3,
        disc_number=2,
        release_date="2019-03-07",
        isrc="USRC17607839",
        explicit=True,
        description="Line one\n\nLine two",
        picture=cover,
        picture_rejected=None,
    )


def _syncsafe(n: int) -> bytes:
    return bytes([(n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F])


def _raw_id3v24(frames: list[tuple[bytes, bytes]]) -> bytes:
    body = b"".join(fid + _syncsafe(len(data)) + b"\0\0" + data for fid, data in frames)
    return b"ID3\x04\x00\x00" + _syncsafe(len(body)) + body


def test_raw_id3_frames_with_invalid_utf8_and_control_bytes(copy_sample: CopySample) -> None:
    path = copy_sample("tone.mp3")
    frames = [
        # Declared UTF-8 but Latin-1 bytes and a stray 0xFF: mutagen drops such frames; we
        # decode them with replacement characters instead.
        (b"TIT2", b"\x03Caf\xe9 <script>\xff</script>"),
        # Latin-1 with NUL-separated values, C0/C1 controls, a bidi override, and an escape.
        (b"TPE1", b"\x00Ren\xe9e\x07\x1b[31m\x00Second\x85"),
        # UTF-16 with BOM, valid.
        (b"TALB", b"\x01" + "Ålbum ✓".encode("utf-16")),
        (b"TCON", b"\x03Jazz\x00Blues\x00jazz"),
        (b"TRCK", b"\x03\xff\xfe"),  # garbage number
        (b"TDRC", b"\x032019-02-30"),  # impossible day
        (b"TSRC", b"\x03NOT-AN-ISRC"),
        (b"COMM", b"\x03eng\x00Hello \xc3\x28 world"),
    ]
    path.write_bytes(_raw_id3v24(frames) + path.read_bytes())

    tags = read_tags(path)
    assert tags.title == "Caf\ufffd <script>\ufffd</script>"
    assert tags.artist == "Renée[31m; Second"
    assert tags.album == "Ålbum ✓"
    assert tags.genres == ("Jazz", "Blues")
    assert tags.track_number is None
    assert tags.release_date == "2019-02"
    assert tags.isrc is None
    assert tags.description == "Hello \ufffd( world"
    assert tags.picture is None
    assert tags.picture_rejected is None


def test_flac_vorbis_comments_and_pictures(copy_sample: CopySample) -> None:
    path = copy_sample("tone.flac")
    audio = FLAC(path)
    audio["TITLE"] = ["Title\u202e evil"]  # right-to-left override is stripped
    audio["ARTIST"] = ["Someone"]
    audio["ALBUMARTIST"] = ["Album Person"]
    audio["GENRE"] = ["hip hop", "Hip Hop", "IDM", "drum & bass"]
    audio["TRACKNUMBER"] = ["07"]
    audio["DISCNUMBER"] = ["1"]
    audio["DATE"] = ["2020-11"]
    audio["ISRC"] = ["GBAYE0601498"]
    audio["DESCRIPTION"] = ["x" * 6000]
    audio["ITUNESADVISORY"] = ["2"]  # 2 = clean
    audio.add_picture(_flac_picture(_png(16), kind=0))
    front = _png(24)
    audio.add_picture(_flac_picture(front, kind=3))
    audio.save()

    tags = read_tags(path)
    assert tags.title == "Title evil"
    assert tags.artist == "Someone"
    assert tags.album_artist == "Album Person"
    assert tags.genres == ("Hip Hop", "IDM", "Drum & Bass")
    assert (tags.track_number, tags.disc_number) == (7, 1)
    assert tags.release_date == "2020-11"
    assert tags.isrc == "GBAYE0601498"
    assert tags.description == "x" * 5000
    assert tags.explicit is False
    assert tags.picture == front


def test_picture_over_the_limit_is_dropped(copy_sample: CopySample) -> None:
    path = copy_sample("tone.flac")
    audio = FLAC(path)
    big = _png(filler=300_000)
    audio.add_picture(_flac_picture(big))
    audio["TITLE"] = ["Still read"]
    audio.save()

    tags = read_tags(path, max_picture_bytes=100_000)
    assert tags.picture is None
    assert tags.picture_rejected == f"embedded picture of {len(big)} bytes is over the 100000-byte limit"
    assert tags.title == "Still read"
    assert read_tags(path, max_picture_bytes=1_000_000).picture == big


def test_ogg_vorbis_tags(copy_sample: CopySample) -> None:
    path = copy_sample("tone.ogg")
    audio = OggVorbis(path)
    audio["title"] = ["T" * 600]
    audio["artist"] = ["\x00\x01Null\x00Artist\x7f"]
    audio["genre"] = [";".join(f"genre{i}" for i in range(12))]
    audio["tracknumber"] = ["0"]
    audio["date"] = ["0000"]
    audio["explicit"] = ["yes"]
    audio.save()

    tags = read_tags(path)
    assert tags.title == "T" * 500
    assert tags.artist == "Null Artist"
    assert tags.genres == tuple(f"Genre{i}" for i in range(8))
    assert tags.track_number is None
    assert tags.release_date is None
    assert tags.explicit is True


def test_opus_metadata_block_picture(copy_sample: CopySample) -> None:
    path = copy_sample("tone.opus")
    audio = OggOpus(path)
    cover = _png(20)
    audio["title"] = ["Opus Song"]
    audio["metadata_block_picture"] = [base64.b64encode(_flac_picture(cover).write()).decode("ascii")]
    audio.save()

    tags = read_tags(path)
    assert tags.title == "Opus Song"
    assert tags.picture == cover

    # Too large: refused from the base64 length, without decoding it.
    audio["metadata_block_picture"] = [base64.b64encode(_flac_picture(_png(filler=200_000)).write()).decode()]
    audio.save()
    tags = read_tags(path, max_picture_bytes=50_000)
    assert tags.picture is None
    assert tags.picture_rejected is not None
    assert "over the 50000-byte limit" in tags.picture_rejected


def test_mp4_tags(copy_sample: CopySample) -> None:
    path = copy_sample("tone.m4a")
    audio = MP4(path)
    assert audio.tags is not None
    cover = _png(12)
    audio.tags["\xa9nam"] = [SCRIPT]
    audio.tags["\xa9ART"] = ["MP4 Artist"]
    audio.tags["\xa9alb"] = ["MP4 Album"]
    audio.tags["aART"] = ["MP4 Album Artist"]
    audio.tags["trkn"] = [(4, 10)]
    audio.tags["disk"] = [(1, 1)]
    audio.tags["\xa9day"] = ["2018-05-04T07:00:00Z"]
    audio.tags["\xa9gen"] = ["rock/Pop"]
    audio.tags["----:com.apple.iTunes:ISRC"] = [MP4FreeForm(b"USUM71703861")]
    audio.tags["rtng"] = [1]
    audio.tags["desc"] = ["Short description"]
    audio.tags["covr"] = [MP4Cover(cover, imageformat=MP4Cover.FORMAT_PNG)]
    audio.save()

    assert read_tags(path) == Tags(
        title=SCRIPT,
        artist="MP4 Artist",
        album="MP4 Album",
        album_artist="MP4 Album Artist",
        genres=("Rock", "Pop"),
        track_number=4,
        disc_number=1,
        release_date="2018-05-04",
        isrc="USUM71703861",
        explicit=True,
        description="Short description",
        picture=cover,
        picture_rejected=None,
    )


def test_mp4_text_atom_with_invalid_utf8(copy_sample: CopySample) -> None:
    path = copy_sample("tone.m4a")
    audio = MP4(path)
    assert audio.tags is not None
    audio.tags["\xa9nam"] = ["PLACEHOLDER"]
    audio.save()
    data = path.read_bytes()
    # Same length, so every atom size stays valid.
    path.write_bytes(data.replace(b"PLACEHOLDER", b"Bad \xff\xfe UTF8"))

    assert read_tags(path).title == "Bad \ufffd\ufffd UTF8"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2019", "2019"),
        ("2019-3-7", "2019-03-07"),
        ("2019/03/07", "2019-03-07"),
        ("20190307", "2019-03-07"),
        ("2019-13-01", "2019"),
        ("2019-02-29", "2019-02"),
        ("2020-02-29", "2020-02-29"),
        ("0000", None),
        ("9999", None),
        ("March 2019", None),
        ("", None),
    ],
)
def test_release_date_validation(copy_sample: CopySample, value: str, expected: str | None) -> None:
    path = copy_sample("tone.flac")
    audio = FLAC(path)
    audio["DATE"] = [value]
    audio.save()
    assert read_tags(path).release_date == expected


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="empty"),
        pytest.param(random.Random(7).randbytes(50_000), id="random"),
        pytest.param(b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f" + b"\xff" * 1000, id="broken-id3-header"),
        pytest.param(b"fLaC" + b"\x00" * 100, id="broken-flac"),
    ],
)
def test_unreadable_input_gives_empty_tags(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.mp3"
    path.write_bytes(content)
    assert read_tags(path) == _EMPTY


def test_missing_file_gives_empty_tags(tmp_path: Path) -> None:
    assert read_tags(tmp_path / "nope.mp3") == _EMPTY


def test_fifo_does_not_block(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.mp3"
    os.mkfifo(fifo)
    assert read_tags(fifo) == _EMPTY


def test_untagged_audio(samples: dict[str, Path]) -> None:
    assert read_tags(samples["tone.wav"]) == _EMPTY


_EMPTY = Tags(
    title=None,
    artist=None,
    album=None,
    album_artist=None,
    genres=(),
    track_number=None,
    disc_number=None,
    release_date=None,
    isrc=None,
    explicit=False,
    description=None,
    picture=None,
    picture_rejected=None,
)
