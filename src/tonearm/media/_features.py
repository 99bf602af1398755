"""audio_features(): tempo and brightness of a track, for the recommender's content model.

ffmpeg decodes up to two minutes of mono 22.05 kHz float samples; the rest is plain numpy:
one short-time Fourier transform gives both the spectral centroid (brightness) and an onset
envelope (positive spectral flux) whose autocorrelation gives the tempo.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from ._errors import MediaError
from ._run import SAFE_INPUT_OPTIONS, Deadline, file_url, run_tool

SAMPLE_RATE: Final = 22050
# 46 ms windows, 11.6 ms hop: the hop sets the tempo resolution (about 0.3 BPM at 120 BPM after
# interpolating the autocorrelation peak), the window the frequency resolution (21.5 Hz).
N_FFT: Final = 1024
HOP: Final = 256
FRAME_RATE: Final = SAMPLE_RATE / HOP

# What is analysed: up to 90 s, skipping up to 30 s of intro (intros are often beatless).
# ffmpeg decodes the first 120 s and the window is picked from what came back, so one pass
# serves every length without probing first.
ANALYSED_S: Final = 90.0
SKIP_S: Final = 30.0
DECODED_S: Final = SKIP_S + ANALYSED_S

# Frames quieter than -70 dBFS RMS (the loudness module's floor) are silence: dither and
# noise floors there are "bright" but inaudible.
_SILENT_RMS: Final = 10 ** (-70 / 20)

MIN_BPM: Final = 60.0
MAX_BPM: Final = 200.0
# Log-normal prior over tempo, centred on 120 BPM, one octave wide: it breaks ties between a beat
# and its half (a 120 BPM pulse correlates almost as well at 60), but only mildly, so a real
# 90 or 180 BPM pulse still wins over an absent 120.
PRIOR_BPM: Final = 120.0
PRIOR_OCTAVES: Final = 1.0
# The autocorrelation peak (normalised by lag 0) a pulse must reach to count as a tempo. Noise
# and steady tones stay near 1/sqrt(frames) ~ 0.01-0.05; music with a beat reaches 0.2 and more.
MIN_CLARITY: Final = 0.15
# Detrending window for the onset envelope: longer than the slowest beat period (1 s at 60 BPM),
# so crescendos and section changes do not read as correlation at every lag.
_DETREND_S: Final = 2.0
_FLOOR_RATIO: Final = 10 ** (-80 / 20)
# Absolute gates on the onset envelope (mean dB rise per bin per frame). The autocorrelation is
# scale-free, so without them a steady tone's tiny, periodic leakage ripple (~0.002 dB) would
# read as a crisp beat. A click track reaches ~0.5, a drum loop under noise ~0.1.
_MIN_PULSE_DB: Final = 0.01  # the envelope's mean, for a tempo
_MIN_ONSET_DB: Final = 0.05  # one peak, for an onset

_Array = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class AudioFeatures:
    """Content descriptors of a track (from up to 90 s of it)."""

    tempo_bpm: float | None  # 60..200, one decimal; None when there is no clear pulse
    brightness_hz: float  # magnitude-weighted mean spectral centroid; 0.0 for silence
    onset_rate: float  # onsets per second (peaks of the onset envelope); 0.0 for silence


def audio_features(path: Path, *, timeout_s: float = 120.0) -> AudioFeatures:
    """Estimate the tempo, brightness and onset rate of the first audio stream of `path`.

    MUST decode with ffmpeg (mono, 22.05 kHz, at most 120 s) and analyse up to 90 s of it,
    starting 30 s in when the track is long enough. The file should have passed probe() first.

    Raises MediaError("timeout") after `timeout_s`, and MediaError("tool_failed") when ffmpeg
    cannot decode the file (the message carries ffmpeg's trimmed stderr).
    """
    path = Path(path)
    args = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-threads", "1",
        *SAFE_INPUT_OPTIONS, "-t", f"{DECODED_S:g}", "-i", file_url(path),
        "-map", "0:a:0", "-vn", "-sn", "-dn", "-ac", "1", "-ar", str(SAMPLE_RATE),
        "-f", "f32le", "-",
    ]  # fmt: skip
    result = run_tool(args, deadline=Deadline(timeout_s), what="audio features", paths=[path])
    if result.returncode != 0:
        raise MediaError("tool_failed", f"audio features failed: {result.stderr or 'no output'}")
    usable = len(result.stdout) - len(result.stdout) % 4
    samples = np.frombuffer(result.stdout[:usable], dtype="<f4")
    return features_of(_analysed_window(samples))


def features_of(samples: npt.NDArray[np.float32]) -> AudioFeatures:
    """The analysis proper, on mono float samples at SAMPLE_RATE (separate so it can be timed)."""
    mags, rms = _spectrogram(samples)
    if mags.shape[0] == 0:
        return AudioFeatures(tempo_bpm=None, brightness_hz=0.0, onset_rate=0.0)
    audible = rms >= _SILENT_RMS
    envelope = _onset_envelope(mags, audible)
    return AudioFeatures(
        tempo_bpm=_tempo(envelope),
        brightness_hz=_brightness(mags, audible),
        onset_rate=_onset_rate(envelope),
    )


def _analysed_window(samples: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    want = int(ANALYSED_S * SAMPLE_RATE)
    start = min(int(SKIP_S * SAMPLE_RATE), max(0, len(samples) - want))
    return samples[start : start + want]


def _spectrogram(samples: npt.NDArray[np.float32]) -> tuple[_Array, _Array]:
    """Magnitude STFT (frames x bins, DC dropped) and each frame's RMS."""
    if len(samples) < N_FFT:
        return np.zeros((0, N_FFT // 2)), np.zeros(0)
    frames = np.lib.stride_tricks.sliding_window_view(samples, N_FFT)[::HOP]
    window = np.hanning(N_FFT).astype(np.float32)
    mags = np.empty((frames.shape[0], N_FFT // 2), dtype=np.float64)
    rms = np.empty(frames.shape[0], dtype=np.float64)
    # In blocks, so the complex intermediate stays a few MB whatever the length.
    for lo in range(0, frames.shape[0], 1024):
        block = frames[lo : lo + 1024].astype(np.float64)
        rms[lo : lo + 1024] = np.sqrt(np.mean(block * block, axis=1))
        mags[lo : lo + 1024] = np.abs(np.fft.rfft(block * window, axis=1))[:, 1:]
    return mags, rms


def _brightness(mags: _Array, audible: npt.NDArray[np.bool_]) -> float:
    loud = mags[audible]
    total = float(loud.sum())
    if total <= 0.0:
        return 0.0
    freqs = np.arange(1, N_FFT // 2 + 1) * (SAMPLE_RATE / N_FFT)
    # Sum over frames of (centroid x frame magnitude) / sum of frame magnitudes: loud frames
    # count more, which is what a listener hears.
    return round(float((loud @ freqs).sum()) / total, 1)


def _onset_envelope(mags: _Array, audible: npt.NDArray[np.bool_]) -> _Array:
    """Positive spectral flux of the log-compressed spectrum, one value per frame, detrended."""
    # In dB, floored 80 dB below the loudest bin: a steady tone's quantisation noise (~100 dB
    # down, and periodic) must not become a "beat", and loudness must not matter, only change.
    floor = max(float(mags.max()) * _FLOOR_RATIO, 1e-12)
    level_db = 20.0 * np.log10(np.maximum(mags, floor))
    # Mean rise per bin, so the thresholds below read in dB whatever the FFT size.
    flux = np.maximum(np.diff(level_db, axis=0), 0.0).mean(axis=1)
    flux = np.concatenate(([0.0], flux)) * audible
    width = min(len(flux), max(1, int(_DETREND_S * FRAME_RATE)))
    # A moving average that divides by the frames actually inside the window, so the ends are
    # not pulled towards zero (that would correlate at every lag).
    kernel = np.ones(width)
    local_mean = np.convolve(flux, kernel, mode="same") / np.convolve(np.ones_like(flux), kernel, mode="same")
    result: _Array = np.maximum(flux - local_mean, 0.0)
    return result


def _autocorrelation(x: _Array) -> _Array:
    x = x - x.mean()
    n = len(x)
    size = 1 << (2 * n - 1).bit_length()
    spectrum = np.fft.rfft(x, size)
    ac: _Array = np.fft.irfft(spectrum * np.conj(spectrum), size)[:n]
    return ac


def _tempo(envelope: _Array) -> float | None:
    lo = int(np.floor(60.0 * FRAME_RATE / MAX_BPM))
    hi = int(np.ceil(60.0 * FRAME_RATE / MIN_BPM))
    # At least four beats of the slowest tempo, or there is nothing to correlate.
    if len(envelope) < 4 * hi:
        return None
    if float(envelope.mean()) < _MIN_PULSE_DB:
        return None
    ac = _autocorrelation(envelope)
    ac = ac / ac[0]
    lags = np.arange(lo, hi + 1)
    bpms = 60.0 * FRAME_RATE / lags
    prior = np.exp(-0.5 * (np.log2(bpms / PRIOR_BPM) / PRIOR_OCTAVES) ** 2)
    candidates = ac[lags]
    # Only true peaks: the slope of a big peak next door must not win.
    peaks = (candidates >= ac[lags - 1]) & (candidates >= ac[lags + 1]) & (candidates >= MIN_CLARITY)
    if not peaks.any():
        return None
    best = int(lags[np.argmax(np.where(peaks, candidates * prior, -np.inf))])
    # Parabolic interpolation between frames: the hop alone would quantise 120 BPM to +-2.8.
    left, mid, right = ac[best - 1], ac[best], ac[best + 1]
    denom = left - 2 * mid + right
    offset = 0.5 * (left - right) / denom if denom < 0 else 0.0
    bpm = 60.0 * FRAME_RATE / (best + float(np.clip(offset, -0.5, 0.5)))
    if not MIN_BPM - 0.5 <= bpm <= MAX_BPM + 0.5:
        return None
    return round(bpm, 1)


def _onset_rate(envelope: _Array) -> float:
    if len(envelope) < 3 or not envelope.any():
        return 0.0
    # A peak: a local maximum that stands out from the envelope's typical level.
    threshold = max(float(np.mean(envelope) + np.std(envelope)), _MIN_ONSET_DB)
    mid = envelope[1:-1]
    peaks = (mid > envelope[:-2]) & (mid >= envelope[2:]) & (mid > threshold)
    return round(int(peaks.sum()) / (len(envelope) / FRAME_RATE), 2)
