"""measure_loudness(): EBU R128 against signals whose loudness is known by construction."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tonearm.media import Loudness, MediaError, measure_loudness

# BS.1770: a full-scale 997 Hz sine in ONE channel reads -3.01 LUFS (the K-weighting gain at
# 997 Hz is ~0 dB; the mean square of a unit sine is 1/2 -> 10*log10(1/2) = -3.01).
SINE_PEAK_DBFS = 20 * math.log10(0.1)  # amplitude 0.1 -> -20 dBFS
MONO_EXPECTED_LUFS = SINE_PEAK_DBFS + 10 * math.log10(0.5)  # -23.01
# Two identical channels add their powers: +3.01 LU.
STEREO_EXPECTED_LUFS = MONO_EXPECTED_LUFS + 10 * math.log10(2)  # -20.00


def test_minus_20_dbfs_sine_mono(samples: dict[str, Path]) -> None:
    result = measure_loudness(samples["sine-20.wav"])
    assert result.integrated_lufs == pytest.approx(MONO_EXPECTED_LUFS, abs=1.0)
    # ebur128 prints one decimal; the real error is far below the 1 LU tolerance.
    assert result.integrated_lufs == pytest.approx(-23.0, abs=0.11)
    assert result.true_peak_dbtp == pytest.approx(SINE_PEAK_DBFS, abs=0.2)
    assert result.loudness_range_lu == pytest.approx(0.0, abs=0.5)


def test_minus_20_dbfs_sine_stereo(samples: dict[str, Path]) -> None:
    result = measure_loudness(samples["sine-20-stereo.wav"])
    assert result.integrated_lufs == pytest.approx(STEREO_EXPECTED_LUFS, abs=1.0)
    assert result.true_peak_dbtp == pytest.approx(SINE_PEAK_DBFS, abs=0.2)


def test_silence_is_clamped(samples: dict[str, Path]) -> None:
    assert measure_loudness(samples["silence.flac"]) == Loudness(-70.0, -70.0, 0.0)


def test_music_is_finite_and_ordered(samples: dict[str, Path]) -> None:
    result = measure_loudness(samples["music.flac"])
    assert -30.0 < result.integrated_lufs < 0.0
    assert result.integrated_lufs < result.true_peak_dbtp <= 0.5
    assert result.loudness_range_lu >= 0.0


def test_not_audio_fails_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("definitely not audio\n" * 50)
    with pytest.raises(MediaError) as info:
        measure_loudness(path)
    assert info.value.code == "tool_failed"
    assert str(tmp_path) not in str(info.value)


def test_timeout(samples: dict[str, Path]) -> None:
    with pytest.raises(MediaError) as info:
        measure_loudness(samples["music.flac"], timeout_s=0.001)
    assert info.value.code == "timeout"
