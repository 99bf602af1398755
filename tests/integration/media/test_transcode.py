"""transcode_ladder()/transcode_one(): one decode, verified rungs, nothing of the source leaks."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mutagen.flac import FLAC, Picture
from PIL import Image

from tonearm.media import LADDER, MediaError, RenditionFile, RenditionSpec, transcode_ladder, transcode_one

CopySample = Callable[..., Path]
FFprobe = Callable[[Path], dict[str, Any]]


def test_spec_names_and_content_types() -> None:
    assert [spec.name for spec in LADDER] == ["aac_96", "aac_160", "aac_320"]
    assert {spec.container for spec in LADDER} == {"m4a"}
    assert LADDER[1].content_type == "audio/mp4"
    assert RenditionSpec("opus", 96, "ogg").name == "opus_96"
    assert RenditionSpec("opus", 96, "ogg").content_type == "audio/ogg"
    assert RenditionSpec("flac", 0, "flac").name == "flac"
    assert RenditionSpec("flac", 0, "flac").content_type == "audio/flac"
    assert RenditionSpec("mp3", 128, "mp3").content_type == "audio/mpeg"


@pytest.mark.parametrize(
    ("codec", "bitrate", "container"),
    [
        ("mp3", 128, "m4a"),
        ("mp3", 500, "mp3"),
        ("wav", 128, "wav"),
        ("aac", 160, "ogg"),
        ("aac", 0, "m4a"),
        ("flac", 320, "flac"),
        ("opus", 1000, "ogg"),
    ],
)
def test_invalid_specs_are_refused(codec: str, bitrate: int, container: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        RenditionSpec(codec, bitrate, container)


def _tag_source(path: Path) -> Path:
    audio = FLAC(path)
    audio["TITLE"] = ["Secret Title"]
    picture = Picture()
    picture.type = 3
    picture.mime = "image/png"
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (255, 0, 0)).save(buffer, "PNG")
    picture.data = buffer.getvalue()
    audio.add_picture(picture)
    audio.save()
    return path


def test_ladder(copy_sample: CopySample, ffprobe_json: FFprobe, tmp_path: Path) -> None:
    src = _tag_source(copy_sample("music.flac"))
    source_duration = float(ffprobe_json(src)["format"]["duration"])
    out_dir = tmp_path / "renditions"

    files = transcode_ladder(src, out_dir)

    assert [f.spec for f in files] == list(LADDER)
    assert sorted(p.name for p in out_dir.iterdir()) == ["aac_160.m4a", "aac_320.m4a", "aac_96.m4a"]
    for rendition in files:
        assert rendition.path == out_dir / f"{rendition.spec.name}.m4a"
        assert rendition.size_bytes == rendition.path.stat().st_size > 0
        info = ffprobe_json(rendition.path)
        streams = info["streams"]
        assert len(streams) == 1, "cover art or other streams leaked into the rendition"
        audio = streams[0]
        assert (audio["codec_name"], audio["profile"]) == ("aac", "LC")
        assert (int(audio["sample_rate"]), audio["channels"]) == (44100, 2)
        bit_rate = int(info["format"]["bit_rate"])
        assert bit_rate == pytest.approx(rendition.spec.bitrate_kbps * 1000, rel=0.08)
        duration = float(info["format"]["duration"])
        assert duration == pytest.approx(source_duration, abs=0.1)
        assert rendition.duration_s == pytest.approx(duration, abs=0.05)  # mutagen vs ffprobe: priming
        assert "Secret Title" not in str(info["format"].get("tags", {}))
        assert b"Secret Title" not in rendition.path.read_bytes()
        # +faststart: the index comes before the media data.
        head = rendition.path.read_bytes()[:4096]
        assert b"moov" in head
        assert head.index(b"moov") < rendition.path.read_bytes().index(b"mdat")


def test_48k_source_and_other_codecs(samples: dict[str, Path], ffprobe_json: FFprobe, tmp_path: Path) -> None:
    ladder = [
        RenditionSpec("aac", 128, "m4a"),
        RenditionSpec("opus", 96, "ogg"),
        RenditionSpec("flac", 0, "flac"),
    ]
    files = transcode_ladder(samples["music48.wav"], tmp_path, ladder)
    assert [f.path.name for f in files] == ["aac_128.m4a", "opus_96.ogg", "flac.flac"]
    got = {f.spec.codec: ffprobe_json(f.path)["streams"][0] for f in files}
    assert {codec: int(s["sample_rate"]) for codec, s in got.items()} == {
        "aac": 48000,
        "opus": 48000,
        "flac": 48000,
    }
    assert {s["channels"] for s in got.values()} == {2}
    assert all(f.duration_s == pytest.approx(2.0, abs=0.1) for f in files)


def test_mono_source_is_upmixed_to_stereo(
    samples: dict[str, Path], ffprobe_json: FFprobe, tmp_path: Path
) -> None:
    src = samples["short.wav"]  # 0.3 s, mono, 44.1 kHz
    rendition = transcode_one(src, tmp_path / "x.m4a", RenditionSpec("aac", 96, "m4a"))
    assert isinstance(rendition, RenditionFile)
    assert rendition.path == tmp_path / "x.m4a"
    stream = ffprobe_json(rendition.path)["streams"][0]
    assert (int(stream["sample_rate"]), stream["channels"]) == (44100, 2)
    assert rendition.duration_s == pytest.approx(0.3, abs=0.05)


def test_failure_leaves_nothing_behind(tmp_path: Path) -> None:
    src = tmp_path / "fake.flac"
    src.write_bytes(b"fLaC" + b"\x00" * 4000)
    out_dir = tmp_path / "out"
    with pytest.raises(MediaError) as info:
        transcode_ladder(src, out_dir)
    assert info.value.code == "tool_failed"
    assert str(tmp_path) not in str(info.value)
    assert list(out_dir.iterdir()) == []


def test_timeout_leaves_nothing_behind(samples: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(MediaError) as info:
        transcode_ladder(samples["music.flac"], tmp_path, timeout_s=0.05)
    assert info.value.code == "timeout"
    assert list(tmp_path.iterdir()) == []


def test_existing_rendition_is_replaced(samples: dict[str, Path], tmp_path: Path) -> None:
    old = tmp_path / "aac_96.m4a"
    old.write_bytes(b"stale")
    (rendition,) = transcode_ladder(samples["tone.mp3"], tmp_path, [LADDER[0]])
    assert rendition.path == old
    assert old.read_bytes() != b"stale"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["aac_96.m4a"]


def test_bad_arguments(samples: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="empty"):
        transcode_ladder(samples["tone.mp3"], tmp_path, [])
    with pytest.raises(ValueError, match="twice"):
        transcode_ladder(samples["tone.mp3"], tmp_path, [LADDER[0], LADDER[0]])
    with pytest.raises(ValueError, match="threads"):
        transcode_ladder(samples["tone.mp3"], tmp_path, threads=0)
