"""Generated cover art: valid JPEGs, deterministic, visibly different per album, robust to odd titles."""

from __future__ import annotations

import io
import itertools
import time

import numpy as np
import pytest
from PIL import Image

from tonearm.covers import generate_cover


def _decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    assert img.format == "JPEG"
    img.load()
    return img


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(_decode(data).convert("RGB"), dtype=np.float32)


@pytest.mark.parametrize("size", [640, 300, 64])
def test_is_a_jpeg_of_the_requested_size(size: int) -> None:
    img = _decode(generate_cover("album-1", "Midnight Rhapsody", "Café Lumière", size=size))
    assert img.size == (size, size)
    assert img.mode == "RGB"


def test_is_deterministic() -> None:
    assert generate_cover("seed", "Title", "Artist") == generate_cover("seed", "Title", "Artist")


def test_different_seeds_give_clearly_different_images() -> None:
    seeds = [f"artist-{i}/album-{i}" for i in range(12)]
    images = {s: _pixels(generate_cover(s, "", "", size=128)) for s in seeds}
    for a, b in itertools.combinations(seeds, 2):
        mean_abs_diff = float(np.abs(images[a] - images[b]).mean())
        assert mean_abs_diff > 12.0, (a, b, mean_abs_diff)
    # and not one grey square: each cover has colour and internal contrast
    for pixels in images.values():
        assert float(pixels.std()) > 10.0
    mean_colours = np.array([p.reshape(-1, 3).mean(axis=0) for p in images.values()])
    assert float(mean_colours.std(axis=0).mean()) > 10.0


def test_title_is_drawn() -> None:
    plain = _pixels(generate_cover("same-seed", "", ""))
    titled = _pixels(generate_cover("same-seed", "A Title That Shows", "An Artist"))
    assert float(np.abs(plain - titled).mean()) > 1.0


@pytest.mark.parametrize(
    ("title", "subtitle"),
    [
        ("", ""),
        ("", "Only a subtitle"),
        ("x" * 5000, "y" * 5000),
        ("A very long title " * 40, "and a long subtitle " * 20),
        ("Supercalifragilisticexpialidociousnesswithoutanyspacesatalltobreakon", ""),
        ("Café Lumière — Sigur Ósk", "Zoë Brontë"),
        ("🎵🎶 Emoji 🧑‍🚀👩🏽‍🎤", "☕"),
        ("東京の夜 / ночь / ليلة / 밤", "עברית"),
        ("control\x00chars\x07and\nnewlines\ttabs\u2028", "\x1b[31m"),
        ("lone \ud800 surrogate", "zero\u200bwidth\u200djoiner"),
    ],
)
def test_odd_titles_never_crash(title: str, subtitle: str) -> None:
    img = _decode(generate_cover("odd", title, subtitle, size=320))
    assert img.size == (320, 320)


@pytest.mark.parametrize("size", [0, 10, 10_000])
def test_rejects_unreasonable_sizes(size: int) -> None:
    with pytest.raises(ValueError, match="size"):
        generate_cover("seed", "title", size=size)


def test_is_fast() -> None:
    generate_cover("warm-up", "Warm Up", "Fonts")
    start = time.perf_counter()
    for i in range(20):
        generate_cover(f"speed-{i}", f"Track Title {i}", "Some Artist")
    per_cover = (time.perf_counter() - start) / 20
    # about 7 ms on an idle CI core; the bound is loose so a busy machine does not make it flaky
    assert per_cover < 0.06
