"""Demo file names: safe path components, the documented layout, FLAC for every 10th track."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tonearm.demo.catalog import demo_catalog
from tonearm.demo.files import MAX_NAME_CHARS, _plan_paths, is_lossless, sanitize_name, track_path


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("AC/DC", "AC_DC"),
        ("..", "_"),
        ("../../etc/passwd", "_._etc_passwd"),
        ("a\x00b\x1fc\nd", "a b c d"),
        ("  spaced   out  ", "spaced out"),
        ("trailing dots...", "trailing dots"),
        ("", "_"),
        ('what? "quotes" <and> pipes|', "what_ _quotes_ _and_ pipes_"),
        ("Café Lumière", "Café Lumière"),
    ],
)
def test_sanitize_name(raw: str, expected: str) -> None:
    assert sanitize_name(raw) == expected


def test_sanitize_bounds_length_in_chars_and_bytes() -> None:
    assert len(sanitize_name("x" * 500)) == MAX_NAME_CHARS
    wide = sanitize_name("音" * 200)
    assert len(wide.encode("utf-8")) <= 240


def test_layout_and_formats(tmp_path: Path) -> None:
    tracks = demo_catalog(40, seed=1, duration_s=5.0)
    paths = _plan_paths(tmp_path, tracks)
    assert len(set(paths)) == len(paths)
    for track, path in zip(tracks, paths, strict=True):
        rel = path.relative_to(tmp_path)
        assert len(rel.parts) == 3
        assert rel.parts[0] == sanitize_name(track.album_artist)
        assert rel.parts[1] == sanitize_name(track.album)
        assert f"{track.track_number:02d} " in rel.parts[2]
        assert all(len(part) <= MAX_NAME_CHARS and ".." not in part for part in rel.parts)
        assert path.suffix == (".flac" if is_lossless(track) else ".mp3")
    assert sum(is_lossless(t) for t in tracks) == 4  # every 10th


def test_colliding_names_get_a_suffix(tmp_path: Path) -> None:
    track = demo_catalog(1, duration_s=1.0)[0]
    twin = replace(track, title=track.title + "?", isrc="ZZTNA9999991")
    clash = replace(track, title=track.title + "|", isrc="ZZTNA9999992")
    paths = _plan_paths(tmp_path, [twin, clash])
    assert paths[0] != paths[1]
    assert paths[1].name.endswith("(2).mp3")
    assert track_path(tmp_path, track).parent == paths[0].parent
