"""The demo synthesizer makes music: not silence, not a sine, genre-specific tempo and timbre."""

from __future__ import annotations

import time

import numpy as np
import pytest
from numpy.typing import NDArray

from tonearm.demo.synth import GENRES, MODES, TrackSpec, genre_profile, render

SR = 22050  # half rate keeps the suite fast; the code paths are the same
PEAK = 10 ** (-1 / 20)

_cache: dict[TrackSpec, NDArray[np.float32]] = {}


def _render(
    genre: str, *, seed: int = 1, bpm: float | None = None, duration_s: float = 12.0
) -> NDArray[np.float32]:
    profile = genre_profile(genre)
    spec = TrackSpec(
        seed=seed,
        genre=genre,
        bpm=bpm if bpm is not None else sum(profile.bpm_range) / 2,
        root=seed % 12,
        mode=profile.modes[0],
        duration_s=duration_s,
    )
    if spec not in _cache:
        _cache[spec] = render(spec, SR)
    return _cache[spec]


def _mono(audio: np.ndarray) -> np.ndarray:
    return np.asarray(audio.mean(axis=1), dtype=np.float64)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt((x**2).mean()))


def _onset_autocorrelation(audio: np.ndarray, bpm: float) -> float:
    """Autocorrelation of the onset (energy-rise) envelope at one beat of ``bpm``: high when beats recur."""
    mono = _mono(audio)
    hop = 256
    frames = mono[: len(mono) // hop * hop].reshape(-1, hop)
    energy = np.log1p(100 * np.sqrt((frames**2).mean(axis=1)))
    flux = np.maximum(np.diff(energy), 0.0)
    flux -= flux.mean()
    ac = np.correlate(flux, flux, "full")[len(flux) - 1 :]
    ac /= ac[0]
    lag = SR / hop * 60.0 / bpm
    return float(np.interp(lag, np.arange(len(ac)), ac))


def _centroid(audio: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(_mono(audio)))
    freqs = np.fft.rfftfreq(len(audio), 1 / SR)
    return float((spectrum * freqs).sum() / spectrum.sum())


def test_shape_dtype_and_peak() -> None:
    audio = render(TrackSpec(seed=3, genre="House", bpm=124, root=2, mode="minor", duration_s=6.0), SR)
    assert audio.dtype == np.float32
    assert audio.shape == (6 * SR, 2)
    assert audio.flags.c_contiguous
    assert np.isfinite(audio).all()
    assert float(np.abs(audio).max()) == pytest.approx(PEAK, abs=1e-3)


@pytest.mark.parametrize("genre", GENRES)
def test_every_genre_renders_music(genre: str) -> None:
    audio = _render(genre, duration_s=8.0)
    assert audio.shape == (8 * SR, 2)
    assert np.isfinite(audio).all()
    assert float(np.abs(audio).max()) == pytest.approx(PEAK, abs=1e-3)
    # not silence
    assert _rms(audio) > 0.05
    # not a single sine: many strong spectral lines (a sine has 1-3), and far from a pure tone's flatness
    window = _mono(audio)[: 4 * SR] * np.hanning(4 * SR)
    spectrum = np.abs(np.fft.rfft(window))
    spectrum /= spectrum.max()
    assert int((spectrum > 0.01).sum()) > 100
    power = spectrum**2 + 1e-12
    assert float(np.exp(np.log(power).mean()) / power.mean()) > 1e-6
    # stereo, not two copies of one channel
    assert float(np.corrcoef(audio[:, 0], audio[:, 1])[0, 1]) < 0.999


def test_tempo_follows_the_genre() -> None:
    house = _render("House", bpm=124)
    hip_hop = _render("Hip-Hop", bpm=88)
    # each track's onsets repeat at its own beat period, not at the other's
    assert _onset_autocorrelation(house, 124) > _onset_autocorrelation(house, 88) + 0.2
    assert _onset_autocorrelation(hip_hop, 88) > _onset_autocorrelation(hip_hop, 124) + 0.05
    assert genre_profile("Drum and Bass").bpm_range[0] >= 170
    assert genre_profile("Ambient").bpm_range[1] <= 90


def test_timbre_follows_the_genre() -> None:
    bright = _centroid(_render("Rock"))
    dark = _centroid(_render("Ambient"))
    assert bright > 1.8 * dark
    assert _centroid(_render("Lo-Fi")) < _centroid(_render("House"))


def test_ambient_has_no_drums_and_house_does() -> None:
    # beat-periodic onsets: strong for a four-on-the-floor track, weak for pads and bells
    assert _onset_autocorrelation(_render("House", bpm=124), 124) > 0.3
    assert _onset_autocorrelation(_render("Ambient", bpm=70), 70) < 0.3
    assert not genre_profile("Ambient").has_drums


def test_sections_intro_builds_and_outro_fades() -> None:
    audio = _render("House", bpm=124, duration_s=30.0)
    n = len(audio)
    intro, middle, tail = _rms(audio[: n // 12]), _rms(audio[n // 3 : 2 * n // 3]), _rms(audio[-SR // 4 :])
    assert intro < 0.6 * middle
    assert tail < 0.05 * middle
    # A and B differ (other chords, other melody, other drum pattern): not a single loop
    bar = int(SR * 60 / 124 * 4)
    a_bar = audio[4 * bar : 5 * bar]
    b_bar = audio[10 * bar : 11 * bar]
    assert float(np.abs(a_bar - b_bar).mean()) > 0.2 * float(np.abs(a_bar).mean())


def test_is_deterministic_for_a_seed() -> None:
    spec = TrackSpec(seed=42, genre="Jazz", bpm=140, root=5, mode="dorian", duration_s=5.0)
    assert np.array_equal(render(spec, SR), render(spec, SR))
    other = TrackSpec(seed=43, genre="Jazz", bpm=140, root=5, mode="dorian", duration_s=5.0)
    assert not np.array_equal(render(spec, SR), render(other, SR))


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_renders(mode: str) -> None:
    audio = render(TrackSpec(seed=1, genre="Pop", bpm=110, root=9, mode=mode, duration_s=2.0), SR)
    assert audio.shape == (2 * SR, 2)
    assert _rms(audio) > 0.02


@pytest.mark.parametrize("duration_s", [0.05, 0.5, 1.3])
def test_very_short_tracks(duration_s: float) -> None:
    audio = render(
        TrackSpec(seed=1, genre="Drum and Bass", bpm=174, root=0, mode="minor", duration_s=duration_s), SR
    )
    assert audio.shape == (round(duration_s * SR), 2)
    assert np.isfinite(audio).all()


@pytest.mark.parametrize(
    ("field", "value"),
    [("genre", "Polka"), ("mode", "ionian-ish"), ("bpm", 0.0), ("duration_s", 0.0), ("duration_s", -1.0)],
)
def test_rejects_bad_specs(field: str, value: object) -> None:
    spec = {"seed": 1, "genre": "Pop", "bpm": 110.0, "root": 0, "mode": "major", "duration_s": 1.0}
    spec[field] = value
    with pytest.raises(ValueError, match=field.split("_")[0]):
        render(TrackSpec(**spec))  # type: ignore[arg-type]


def test_renders_30_seconds_quickly() -> None:
    spec = TrackSpec(seed=5, genre="Synthwave", bpm=100, root=4, mode="minor", duration_s=30.0)
    render(spec)  # warm caches
    start = time.process_time()
    audio = render(spec)
    elapsed = time.process_time() - start
    assert audio.shape == (30 * 44100, 2)
    # ~0.2 s of CPU on an idle core; loose so that a loaded CI machine does not flake
    assert elapsed < 1.0
