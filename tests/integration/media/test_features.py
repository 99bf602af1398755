"""audio_features(): tempo and brightness of signals whose answer is known by construction."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from tonearm.media import AudioFeatures, MediaError, audio_features

from .conftest import ffmpeg

RATE = 44100


def write_wav(path: Path, samples: npt.NDArray[np.float64]) -> Path:
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())
    return path


def clicks(bpm: float, seconds: float) -> npt.NDArray[np.float64]:
    """A metronome: a short decaying 1 kHz blip on every beat."""
    out = np.zeros(int(RATE * seconds))
    t = np.arange(int(0.03 * RATE)) / RATE
    blip = 0.8 * np.sin(2 * np.pi * 1000 * t) * np.exp(-150 * t)
    for start in (np.arange(0, seconds, 60 / bpm) * RATE).astype(int):
        end = min(len(out), start + len(blip))
        out[start:end] += blip[: end - start]
    return out


def sine(freq: float, seconds: float) -> npt.NDArray[np.float64]:
    return 0.3 * np.sin(2 * np.pi * freq * np.arange(int(RATE * seconds)) / RATE)


@pytest.mark.parametrize("bpm", [120.0, 90.0])
def test_click_track_tempo(tmp_path: Path, bpm: float) -> None:
    result = audio_features(write_wav(tmp_path / "clicks.wav", clicks(bpm, 40)))
    # Within 3 BPM of the truth: half or double tempo would be a wrong answer, not a close one.
    assert result.tempo_bpm is not None and abs(result.tempo_bpm - bpm) <= 3, result
    assert result.tempo_bpm == round(result.tempo_bpm, 1)
    assert result.onset_rate == pytest.approx(bpm / 60, rel=0.1)


def test_long_track_is_analysed_past_its_intro(tmp_path: Path) -> None:
    # 40 s of beatless hum, then 100 s of clicks: the window starting 30 s in sees mostly clicks.
    intro = sine(220, 40)
    path = write_wav(tmp_path / "long.wav", np.concatenate([intro, clicks(120, 100)]))
    result = audio_features(path)
    assert result.tempo_bpm is not None and abs(result.tempo_bpm - 120) <= 3, result


def test_tempo_survives_lossy_encoding(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "clicks.wav", clicks(120, 30))
    mp3 = tmp_path / "clicks.mp3"
    ffmpeg("-i", str(wav), "-c:a", "libmp3lame", "-b:a", "128k", str(mp3))
    result = audio_features(mp3)
    assert result.tempo_bpm is not None and abs(result.tempo_bpm - 120) <= 3, result


@pytest.mark.parametrize("freq", [200.0, 440.0])
def test_pure_sine_has_no_tempo(tmp_path: Path, freq: float) -> None:
    result = audio_features(write_wav(tmp_path / "sine.wav", sine(freq, 20)))
    assert result.tempo_bpm is None
    assert result.onset_rate == 0.0
    # A pure tone's centroid is the tone itself.
    assert result.brightness_hz == pytest.approx(freq, rel=0.05)


def test_white_noise_is_brighter_than_a_low_sine(tmp_path: Path) -> None:
    noise = np.random.default_rng(1).uniform(-0.3, 0.3, RATE * 10)
    bright = audio_features(write_wav(tmp_path / "noise.wav", noise))
    dark = audio_features(write_wav(tmp_path / "sine.wav", sine(200, 10)))
    assert bright.brightness_hz > 10 * dark.brightness_hz
    # White noise decoded at 22.05 kHz: flat up to ~11 kHz, so the centroid sits near 5.5 kHz.
    assert 4000 < bright.brightness_hz < 6500
    assert bright.tempo_bpm is None  # random onsets have no period


def test_silence(tmp_path: Path) -> None:
    result = audio_features(write_wav(tmp_path / "silence.wav", np.zeros(RATE * 5)))
    assert result == AudioFeatures(tempo_bpm=None, brightness_hz=0.0, onset_rate=0.0)


def test_very_short_file(tmp_path: Path) -> None:
    result = audio_features(write_wav(tmp_path / "blip.wav", sine(440, 0.01)))
    assert result.tempo_bpm is None and result.brightness_hz == 0.0


def test_music_is_finite(samples: dict[str, Path]) -> None:
    result = audio_features(samples["music.flac"])
    assert 50 < result.brightness_hz < 11025
    assert result.tempo_bpm is None or 60 <= result.tempo_bpm <= 200


def test_not_audio_fails_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("definitely not audio\n" * 50)
    with pytest.raises(MediaError) as info:
        audio_features(path)
    assert info.value.code == "tool_failed"
    assert str(tmp_path) not in str(info.value)


def test_timeout(samples: dict[str, Path]) -> None:
    with pytest.raises(MediaError) as info:
        audio_features(samples["music.flac"], timeout_s=0.001)
    assert info.value.code == "timeout"
