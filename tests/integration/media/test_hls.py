"""package_hls()/media_playlist(): byte-range fMP4 HLS, aligned across the ladder, played by real clients."""

from __future__ import annotations

import json
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import m3u8
import pytest

from tonearm.media import (
    LADDER,
    HlsIndex,
    MediaError,
    RenditionFile,
    Segment,
    media_playlist,
    package_hls,
    transcode_ladder,
    transcode_one,
)

from .conftest import ffmpeg, music_filter

FFprobe = Callable[[Path], dict[str, Any]]
Packaged = list[tuple[RenditionFile, Path, HlsIndex]]

SOURCE_S = 30.0


@pytest.fixture(scope="module")
def ladder(tmp_path_factory: pytest.TempPathFactory) -> list[RenditionFile]:
    """The real 96/160/320 AAC ladder of a ~30 s music-like signal."""
    d = tmp_path_factory.mktemp("hls-ladder")
    src = d / "music.flac"
    ffmpeg(*music_filter(SOURCE_S, 44100), "-c:a", "flac", str(src))
    return transcode_ladder(src, d / "renditions")


@pytest.fixture(scope="module")
def packaged(ladder: list[RenditionFile], tmp_path_factory: pytest.TempPathFactory) -> Packaged:
    out = tmp_path_factory.mktemp("hls-packaged")
    pairs = [(f.path, out / f"{f.spec.name}.cmaf.mp4") for f in ladder]
    indexes = package_hls(pairs)
    assert sorted(p.name for p in out.iterdir()) == sorted(dst.name for _, dst in pairs)
    return [(f, dst, idx) for f, (_, dst), idx in zip(ladder, pairs, indexes, strict=True)]


def _frame_s(index: HlsIndex) -> float:
    return 1024 / index.sample_rate


def test_segments_are_aligned_across_the_ladder(packaged: Packaged) -> None:
    indexes = [idx for _, _, idx in packaged]
    reference = indexes[0]
    assert len(reference.segments) >= 7
    for idx in indexes[1:]:
        assert len(idx.segments) == len(reference.segments)
        for ours, theirs in zip(idx.segments, reference.segments, strict=True):
            assert abs(ours.duration_s - theirs.duration_s) <= _frame_s(idx)
    # Fast start: a short first segment, then ~4 s ones (the last one may differ).
    first, *middle, _last = reference.segments
    assert 0.9 <= first.duration_s <= 1.5
    assert all(3.5 <= seg.duration_s <= 4.6 for seg in middle)


def test_index_matches_the_file(packaged: Packaged, ffprobe_json: FFprobe) -> None:
    for rendition, path, idx in packaged:
        data = path.read_bytes()
        assert idx.size_bytes == len(data)
        assert (idx.codecs, idx.sample_rate, idx.channels) == ("mp4a.40.2", 44100, 2)
        # The init section is exactly ftyp + moov.
        assert idx.init_offset == 0
        assert _box_types(data, 0, idx.init_length) == [b"ftyp", b"moov"]
        # Contiguous segments from the end of the init section to the end of the file, each one or
        # more complete moof+mdat fragments.
        end = idx.init_offset + idx.init_length
        for seg in idx.segments:
            assert seg.offset == end
            kinds = _box_types(data, seg.offset, seg.offset + seg.length)
            assert kinds[0] == b"moof" and kinds == [b"moof", b"mdat"] * (len(kinds) // 2)
            end = seg.offset + seg.length
        assert end == len(data)
        info = ffprobe_json(path)
        (stream,) = info["streams"]
        assert (stream["codec_name"], stream["profile"]) == ("aac", "LC")
        assert "encoder" not in info["format"].get("tags", {})
        duration = float(info["format"]["duration"])
        assert sum(s.duration_s for s in idx.segments) == pytest.approx(duration, abs=0.05)
        assert idx.duration_s == pytest.approx(duration, abs=0.05)
        assert idx.duration_s == pytest.approx(rendition.duration_s, abs=0.05)
        # Bit rates in HLS terms: the average counts media segments only (not the init section).
        assert idx.peak_bps >= idx.average_bps > 0
        media_bytes = idx.size_bytes - idx.init_length
        assert idx.average_bps == pytest.approx(media_bytes * 8 / idx.duration_s, abs=1)
        assert idx.average_bps == pytest.approx(rendition.size_bytes * 8 / rendition.duration_s, rel=0.05)


def _box_types(data: bytes, start: int, end: int) -> list[bytes]:
    kinds = []
    pos = start
    while pos < end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        assert size >= 8
        kinds.append(kind)
        pos += size
    assert pos == end, "a byte range cuts a box"
    return kinds


def test_renditions_packaged_separately_align(packaged: Packaged, tmp_path: Path) -> None:
    """Renditions made on demand are packaged one at a time: they must still align."""
    rendition, _, together = packaged[1]
    (alone,) = package_hls([(rendition.path, tmp_path / "alone.mp4")])
    assert [s.duration_s for s in alone.segments] == [s.duration_s for s in together.segments]
    assert alone == together  # remuxing is deterministic (bitexact): same bytes, same index


def test_json_round_trip(packaged: Packaged) -> None:
    idx = packaged[0][2]
    text = idx.to_json()
    assert " " not in text and len(text) < 40 * len(idx.segments) + 300
    data = json.loads(text)
    assert data["v"] == 1
    assert data["segments"][0] == [idx.segments[0].duration_s, idx.segments[0].offset, idx.segments[0].length]
    assert HlsIndex.from_json(text) == idx


def _valid() -> dict[str, Any]:
    segments = [Segment(1.0, 700, 12_000), Segment(4.0, 12_700, 48_000)]
    idx = HlsIndex(
        init_offset=0,
        init_length=700,
        segments=tuple(segments),
        codecs="mp4a.40.2",
        sample_rate=44100,
        channels=2,
        peak_bps=96_000,
        average_bps=96_000,
        duration_s=5.0,
        size_bytes=60_700,
    )
    result: dict[str, Any] = json.loads(idx.to_json())
    return result


def _mutated(**changes: Any) -> str:
    data = _valid()
    data.update(changes)
    return json.dumps(data)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "null",
        "[]",
        "{}",
        "not json",
        '{"v":1',
        "[" * 100_000,
        _mutated(v=2),
        _mutated(v=True),
        _mutated(extra=1),
        _mutated(init=[0]),
        _mutated(init=[3, 697]),
        _mutated(segments=[]),
        _mutated(segments="x"),
        _mutated(segments=[[1.0, 700, 12_000], [4.0, 12_701, 47_999]]),  # gap
        _mutated(segments=[[1.0, 700, 12_000], [4.0, 12_700, 47_000]]),  # ends before the file
        _mutated(segments=[[1.0, 700, 12_000], [0, 12_700, 48_000]]),  # zero duration
        _mutated(segments=[[1.0, 700, 12_000], [4.0, 12_700, True]]),
        _mutated(segments=[[1.0, 700, 12_000], [4.0, 12_700]]),
        _mutated(codecs='mp4a.40.2",URI="http://evil'),
        _mutated(codecs="avc1.64001f"),
        _mutated(sample_rate=-1),
        _mutated(channels=0),
        _mutated(peak_bps=1),
        _mutated(average_bps="96000"),
        _mutated(duration_s=50.0),
        _mutated(size_bytes=1.5),
        _mutated(duration_s=None),
        _valid().__repr__(),
        json.dumps(_valid()).replace("5.0", "NaN", 1),
    ],
)
def test_from_json_rejects_garbage(text: str) -> None:
    assert HlsIndex.from_json(json.dumps(_valid())) is not None  # the base case is valid
    with pytest.raises(ValueError, match=r"."):
        HlsIndex.from_json(text)


def test_media_playlist_parses(packaged: Packaged) -> None:
    idx = packaged[0][2]
    uri = "aac_96.mp4?exp=1700000000&sig=abc-_123"
    text = media_playlist(idx, uri)
    assert text.startswith("#EXTM3U\n#EXT-X-VERSION:7\n") and text.endswith("#EXT-X-ENDLIST\n")
    playlist = m3u8.loads(text)
    assert playlist.version == 7
    assert playlist.playlist_type == "vod"
    assert playlist.is_endlist and playlist.is_independent_segments
    assert playlist.target_duration == 5  # ceil of the longest (~4.09 s) segment
    assert len(playlist.segments) == len(idx.segments)
    init = playlist.segment_map[0]
    assert (init.uri, init.byterange) == (uri, f"{idx.init_length}@0")
    for parsed, seg in zip(playlist.segments, idx.segments, strict=True):
        assert parsed.uri == uri
        assert parsed.byterange == f"{seg.length}@{seg.offset}"
        assert parsed.duration == pytest.approx(seg.duration_s, abs=1e-5)
    assert "#EXTINF:1.02168," in text
    assert playlist.target_duration >= max(round(s.duration_s) for s in idx.segments)


def test_media_playlist_rejects_unsafe_arguments(packaged: Packaged) -> None:
    idx = packaged[0][2]
    for uri in ["", 'a.mp4"', "a.mp4\n#EXT-X-ENDLIST", "a.mp4\r"]:
        with pytest.raises(ValueError, match="URI"):
            media_playlist(idx, uri)
    with pytest.raises(ValueError, match="VERSION"):
        media_playlist(idx, "a.mp4", version=5)


def _decode(url: str, *extra: str) -> bytes:
    """The whole input decoded to 44.1 kHz stereo s16 PCM, as a real client would play it."""
    return subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", *extra, "-i", url, "-map", "0:a", "-f", "s16le", "-"],
        check=True,
        capture_output=True,
    ).stdout


def test_ffmpeg_plays_the_playlist(packaged: Packaged) -> None:
    """ffmpeg's HLS client fetches the init section and every segment by byte range and decodes
    exactly the audio of the whole file. No -allowed_extensions is needed: `.mp4` is allowed."""
    for _, path, idx in packaged:
        playlist = path.with_name(path.name + ".m3u8")
        playlist.write_text(media_playlist(idx, path.name))
        via_hls = _decode(f"file:{playlist}")
        assert via_hls == _decode(f"file:{path}")
        assert len(via_hls) / 4 / 44100 == pytest.approx(idx.duration_s, abs=0.05)
        assert idx.duration_s == pytest.approx(SOURCE_S, abs=0.05)


def test_48k_rendition(samples: dict[str, Path], tmp_path: Path, ffprobe_json: FFprobe) -> None:
    rendition = transcode_one(samples["music48.wav"], tmp_path / "aac_160.m4a", LADDER[1])
    (idx,) = package_hls([(rendition.path, tmp_path / "aac_160.cmaf.mp4")])
    assert (idx.codecs, idx.sample_rate, idx.channels) == ("mp4a.40.2", 48000, 2)
    assert 0.9 <= idx.segments[0].duration_s <= 1.5
    duration = float(ffprobe_json(tmp_path / "aac_160.cmaf.mp4")["format"]["duration"])
    assert idx.duration_s == pytest.approx(duration, abs=0.05)
    assert idx.size_bytes == (tmp_path / "aac_160.cmaf.mp4").stat().st_size


@pytest.mark.parametrize("sample", ["tone_alac.m4a", "tone.flac", "truncated", "garbage"])
def test_bad_source_leaves_nothing_behind(
    sample: str, packaged: Packaged, samples: dict[str, Path], tmp_path: Path
) -> None:
    good = tmp_path / "good.m4a"
    good.write_bytes(packaged[0][0].path.read_bytes())
    bad = tmp_path / "bad.m4a"
    if sample == "truncated":
        bad.write_bytes(good.read_bytes()[:100_000])
    elif sample == "garbage":
        bad.write_bytes(b"\x00\x00\x00\x18ftypM4A " + bytes(range(256)) * 40)
    else:
        bad.write_bytes(samples[sample].read_bytes())
    # An existing destination from an earlier run stays as it was.
    (tmp_path / "good.cmaf.mp4").write_bytes(b"old")
    before = sorted(p.name for p in tmp_path.iterdir())

    with pytest.raises(MediaError) as info:
        package_hls([(good, tmp_path / "good.cmaf.mp4"), (bad, tmp_path / "bad.cmaf.mp4")])

    assert info.value.code == "tool_failed"
    assert str(tmp_path) not in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert (tmp_path / "good.cmaf.mp4").read_bytes() == b"old"


def test_timeout_leaves_nothing_behind(packaged: Packaged, tmp_path: Path) -> None:
    with pytest.raises(MediaError) as info:
        package_hls([(packaged[0][0].path, tmp_path / "out.mp4")], timeout_s=0.001)
    assert info.value.code == "timeout"
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments(packaged: Packaged, tmp_path: Path) -> None:
    src = packaged[0][0].path
    assert package_hls([]) == []
    with pytest.raises(ValueError, match="same destination"):
        package_hls([(src, tmp_path / "a.mp4"), (src, tmp_path / "a.mp4")])
    with pytest.raises(ValueError, match="also a source"):
        package_hls([(src, src)])
    for segment_s, first_s in [(4.0, 0.1), (4.0, 5.0), (60.0, 1.0)]:
        with pytest.raises(ValueError, match="segment lengths"):
            package_hls([(src, tmp_path / "a.mp4")], segment_s=segment_s, first_segment_s=first_s)
    assert list(tmp_path.iterdir()) == []


def test_other_segment_lengths(packaged: Packaged, tmp_path: Path) -> None:
    """1.5 s first and 6 s later segments: a 1.5 s grain, four fragments per later segment."""
    (idx,) = package_hls([(packaged[0][0].path, tmp_path / "a.mp4")], segment_s=6.0, first_segment_s=1.5)
    first, *middle, _ = idx.segments
    assert 1.4 <= first.duration_s <= 1.5 + _frame_s(idx)
    assert all(5.9 <= seg.duration_s <= 6.0 + 4 * _frame_s(idx) for seg in middle)
