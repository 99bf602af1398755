"""Writing demo files for real: ffmpeg encodes, mutagen tags, covers are embedded where asked."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import mutagen.flac
import mutagen.id3
import pytest
from PIL import Image

from tonearm.demo.catalog import DemoTrack, demo_catalog
from tonearm.demo.files import is_lossless, write_demo_files

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg and ffprobe")

DURATION = 5.0
_FLAC: Any = mutagen.flac.FLAC  # mutagen is untyped
_ID3: Any = mutagen.id3.ID3
Written = tuple[Path, list[DemoTrack], list[Path], int]  # out dir, tracks, their paths, progress calls


def _pick_tracks() -> list[DemoTrack]:
    """Four tracks covering: a FLAC, an MP3 with embedded art, an MP3 without, an explicit one."""
    catalog = demo_catalog(60, seed=7, duration_s=DURATION)
    flac = next(t for t in catalog if is_lossless(t))
    with_art = next(t for t in catalog if not is_lossless(t) and t.embed_cover)
    without_art = next(t for t in catalog if not is_lossless(t) and not t.embed_cover)
    chosen = [flac, with_art, without_art]
    explicit = next((t for t in catalog if t.explicit and t not in chosen), None)
    chosen.append(explicit or next(t for t in catalog if t not in chosen))
    return chosen


def _probe(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)],
        capture_output=True,
        check=True,
    ).stdout
    return json.loads(out)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Written:
    out = tmp_path_factory.mktemp("demo")
    tracks = _pick_tracks()
    calls: list[int] = []
    paths = write_demo_files(out, tracks, workers=2, progress=calls.append)
    return out, tracks, paths, sum(calls)


def test_writes_every_file_under_the_layout(written: Written) -> None:
    out, tracks, paths, progressed = written
    assert progressed == len(tracks)
    assert len(paths) == len(tracks)
    for track, path in zip(tracks, paths, strict=True):
        assert path.is_file()
        assert path.stat().st_size > 10_000
        rel = path.relative_to(out)
        assert len(rel.parts) == 3
        assert track.title.split(" ")[0] in rel.parts[2]
    assert not list(out.rglob("*.part")), "no temporary files are left behind"


def test_ffprobe_sees_the_right_format_and_duration(written: Written) -> None:
    _out, tracks, paths, _ = written
    for track, path in zip(tracks, paths, strict=True):
        info = _probe(path)
        audio = [s for s in info["streams"] if s["codec_type"] == "audio"]
        assert len(audio) == 1
        stream = audio[0]
        expected = "flac" if is_lossless(track) else "mp3"
        assert info["format"]["format_name"] == expected
        assert stream["codec_name"] == expected
        assert int(stream["sample_rate"]) == 44100
        assert stream["channels"] == 2
        assert float(info["format"]["duration"]) == pytest.approx(DURATION, abs=0.1)
        if expected == "mp3":
            assert int(stream["bit_rate"]) == 160_000


def test_mutagen_reads_the_tags_back(written: Written) -> None:
    _out, tracks, paths, _ = written
    for track, path in zip(tracks, paths, strict=True):
        if path.suffix == ".flac":
            flac = _FLAC(str(path))
            assert flac["TITLE"] == [track.title]
            assert flac["ARTIST"] == [track.artist]
            assert flac["ALBUM"] == [track.album]
            assert flac["ALBUMARTIST"] == [track.album_artist]
            assert flac["GENRE"] == list(track.genres)
            assert flac["ISRC"] == [track.isrc]
            assert flac["TRACKNUMBER"] == [str(track.track_number)]
            assert flac["DISCNUMBER"] == [str(track.disc_number)]
            assert flac["DATE"] == [track.release_date]
            assert flac["DESCRIPTION"] == [track.description]
            assert flac.get("ITUNESADVISORY") == (["1"] if track.explicit else None)
            pictures = [p.data for p in flac.pictures if p.type == 3]
        else:
            tags = _ID3(str(path))
            assert tags.version[:2] == (2, 4)
            assert tags["TIT2"].text == [track.title]
            assert tags["TPE1"].text == [track.artist]
            assert tags["TALB"].text == [track.album]
            assert tags["TPE2"].text == [track.album_artist]
            assert tags["TCON"].text == list(track.genres)
            assert tags["TSRC"].text == [track.isrc]
            assert tags["TRCK"].text == [str(track.track_number)]
            assert tags["TPOS"].text == [str(track.disc_number)]
            assert str(tags["TDRC"].text[0]) == track.release_date
            assert tags.getall("COMM")[0].text == [track.description]
            advisory = tags.getall("TXXX:ITUNESADVISORY")
            assert [f.text for f in advisory] == ([["1"]] if track.explicit else [])
            pictures = [f.data for f in tags.getall("APIC") if f.type == 3]
        if track.embed_cover:
            assert len(pictures) == 1
            cover = Image.open(io.BytesIO(pictures[0]))
            assert cover.format == "JPEG"
            assert cover.size[0] == cover.size[1] >= 300
        else:
            assert pictures == []


def test_is_resumable(written: Written) -> None:
    out, tracks, paths, _ = written
    before = {p: p.stat().st_mtime_ns for p in paths}
    calls: list[int] = []
    again = write_demo_files(out, tracks, workers=2, progress=calls.append)
    assert again == paths
    assert sum(calls) == len(tracks)
    assert {p: p.stat().st_mtime_ns for p in paths} == before


def test_in_process_writer_and_empty_file_rewrite(tmp_path: Path) -> None:
    track = demo_catalog(1, seed=2, duration_s=1.0)[0]
    (path,) = write_demo_files(tmp_path, [track], workers=1)
    assert path.stat().st_size > 0
    path.write_bytes(b"")  # a zero-size leftover is rendered again
    (again,) = write_demo_files(tmp_path, [track], workers=1)
    assert again == path
    assert path.stat().st_size > 0
