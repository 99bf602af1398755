"""A small, fast, deterministic music synthesizer for the demo catalog.

:func:`render` turns a :class:`TrackSpec` into a stereo float32 buffer of actual music: a drum machine
with genre-specific patterns, a bassline following a chord progression in the track's key, chords or
pads, a melody built from the scale with rhythmic variation, and an intro / A / B / outro arrangement.

Everything is vectorised with numpy.  The speed comes from three things:

* oscillators are *analytic*: a saw or square wave passed through a one-pole (RC) low-pass filter has a
  closed-form steady state, so a filtered, nearly band-limited oscillator costs one ``exp`` per sample
  and the cutoff may move per sample (filter envelopes) at no extra cost;
* every distinct note (instrument, pitch, length) and every drum sound is rendered once per track and
  then mixed in with slice additions wherever it occurs;
* effects (echo, room, side-chain ducking) are a handful of whole-buffer operations.
"""

from __future__ import annotations

import math
import threading
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "GENRES",
    "MODES",
    "GenreProfile",
    "TrackSpec",
    "genre_profile",
    "render",
]

F64 = NDArray[np.float64]
F32 = NDArray[np.float32]

SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
}
MODES: tuple[str, ...] = tuple(SCALES)

PEAK_DBFS = -1.0
_TAU = 2.0 * math.pi


@dataclass(frozen=True, slots=True)
class TrackSpec:
    """What to synthesize.  ``root`` is a pitch class (0 = C ... 11 = B); ``mode`` one of :data:`MODES`."""

    seed: int
    genre: str
    bpm: float
    root: int
    mode: str
    duration_s: float


# --------------------------------------------------------------------------------------------------
# genre table

ChordKind = Literal["triad", "seventh", "ninth", "power"]
ChordVoice = Literal["pad", "epiano", "piano", "organ", "guitar", "stab", "pluck"]
ChordRhythm = Literal["hold", "stabs", "charleston", "eighths", "quarters", "lazy"]
BassStyle = Literal["offbeat", "octave", "rolling", "riff", "walking", "drone", "eighths", "long"]
BassVoice = Literal["sub", "saw", "square", "pluck", "upright", "reese", "808"]
LeadVoice = Literal["square", "saw", "bell", "flute", "sax", "guitar", "pluck"]


@dataclass(frozen=True, slots=True)
class _Kit:
    """Drum sounds and patterns.

    Patterns are 16 steps per bar (several bars allowed), one char a step: ``X`` accent, ``x`` hit,
    ``o`` medium, ``g`` ghost, ``.`` rest.  Each lane maps to (A-section pattern, B-section pattern).
    ``kick`` is (start Hz, end Hz, pitch-drop time constant, decay time constant, drive).
    """

    lanes: dict[str, tuple[str, str]]
    kick: tuple[float, float, float, float, float] = (150.0, 50.0, 0.035, 0.15, 0.0)
    snare_decay: float = 0.16
    gated_snare: bool = False
    hat_decay: float = 0.035
    intro_lanes: tuple[str, ...] = ("hat", "shaker", "ride")
    outro_lanes: tuple[str, ...] = ("kick", "hat", "shaker", "ride", "rim")
    fills: bool = True


@dataclass(frozen=True, slots=True)
class _Style:
    bpm_range: tuple[float, float]
    modes: tuple[str, ...]
    kit: _Kit | None
    progressions: tuple[tuple[int, ...], ...]
    chord_kind: ChordKind
    chord_voice: ChordVoice
    chord_rhythm: ChordRhythm
    bass_style: BassStyle
    bass_voice: BassVoice
    lead_voice: LeadVoice
    instruments: tuple[str, ...]
    moods: tuple[str, ...]
    bars_per_chord: int = 1
    lead_lengths: tuple[int, ...] = (2, 2, 4, 4, 6, 8)
    lead_density: float = 0.7
    lead_low: int = 62
    arp: bool = False
    pad_layer: bool = False  # a soft sustained pad under a rhythmic chord voice
    swing8: float = 0.0  # 1 = offbeat 8ths on the triplet
    swing16: float = 0.0  # 1 = odd 16ths on the triplet
    jitter_ms: float = 0.0
    brightness: float = 1.0
    crackle: bool = False
    sidechain: float = 0.0
    drive: float = 0.0
    echo: float = 0.25
    room: float = 0.2


_FOUR = "x...x...x...x..."
_BACKBEAT = "....x.......x..."
_EIGHTHS = "x.x.x.x.x.x.x.x."
_OFFBEAT8 = "..x...x...x...x."

_STYLES: dict[str, _Style] = {
    "Electronic": _Style(
        bpm_range=(118, 128),
        modes=("minor", "dorian", "lydian", "major"),
        kit=_Kit(
            lanes={
                "kick": (_FOUR, "x...x...x...x.x."),
                "clap": (_BACKBEAT, _BACKBEAT),
                "hat": ("o.x.o.x.o.x.o.x.", "gxoxgxoxgxoxgxox"),
                "open": ("................", "..x.......x....."),
            },
            kick=(160.0, 48.0, 0.03, 0.16, 0.6),
        ),
        progressions=((0, 5, 3, 4), (0, 3, 5, 4), (5, 3, 0, 4), (0, 6, 5, 3)),
        chord_kind="seventh",
        chord_voice="pad",
        chord_rhythm="hold",
        bass_style="offbeat",
        bass_voice="saw",
        lead_voice="saw",
        instruments=("sequenced arpeggios", "warm analog pads", "a filtered saw bass", "crisp claps"),
        moods=("hypnotic", "glowing", "driving", "euphoric"),
        arp=True,
        lead_density=0.55,
        sidechain=0.45,
        echo=0.35,
    ),
    "House": _Style(
        bpm_range=(120, 126),
        modes=("minor", "dorian", "major"),
        kit=_Kit(
            lanes={
                "kick": (_FOUR, _FOUR),
                "clap": (_BACKBEAT, _BACKBEAT),
                "hat": ("gxg.gxg.gxg.gxg.", "gxgggxgggxgggxgg"),
                "open": (_OFFBEAT8, _OFFBEAT8),
                "shaker": ("................", "gogogogogogogogo"),
            },
            kick=(140.0, 52.0, 0.028, 0.15, 0.4),
        ),
        progressions=((0, 5, 3, 4), (1, 4, 0, 0), (0, 0, 3, 3), (5, 4, 3, 4)),
        chord_kind="seventh",
        chord_voice="organ",
        chord_rhythm="stabs",
        bass_style="octave",
        bass_voice="pluck",
        lead_voice="pluck",
        instruments=(
            "organ chord stabs",
            "a bouncing octave bass",
            "open hi-hats",
            "a four-on-the-floor kick",
        ),
        moods=("groovy", "sunny", "soulful", "late-night"),
        pad_layer=True,
        lead_density=0.5,
        swing16=0.25,
        sidechain=0.55,
        echo=0.25,
    ),
    "Techno": _Style(
        bpm_range=(126, 136),
        modes=("minor", "phrygian"),
        kit=_Kit(
            lanes={
                "kick": ("X...X...X...X...", "X...X...X...X..g"),
                "hat": ("gogogogogogogogo", "gxgxgxgxgxgxgxgx"),
                "open": (_OFFBEAT8, _OFFBEAT8),
                "rim": ("...x..x....x..x.", "...x..x...x..x.x"),
                "clap": ("................", _BACKBEAT),
            },
            kick=(170.0, 46.0, 0.025, 0.18, 1.2),
            intro_lanes=("hat", "rim"),
        ),
        progressions=((0, 0, 0, 5), (0, 0, 6, 0), (0, 1, 0, 6), (0, 0, 3, 0)),
        chord_kind="triad",
        chord_voice="stab",
        chord_rhythm="stabs",
        bass_style="rolling",
        bass_voice="saw",
        lead_voice="square",
        instruments=("a pounding kick", "rolling acid bass", "metallic rimshots", "dub chord stabs"),
        moods=("relentless", "dark", "industrial", "hypnotic"),
        lead_density=0.3,
        lead_lengths=(1, 2, 2, 3, 4),
        brightness=1.2,
        sidechain=0.35,
        drive=0.5,
        echo=0.3,
    ),
    "Hip-Hop": _Style(
        bpm_range=(84, 96),
        modes=("minor", "dorian", "phrygian"),
        kit=_Kit(
            lanes={
                "kick": ("x.....x...x.x...", "x.....x.x.x....."),
                "snare": (_BACKBEAT, "....x.......x..g"),
                "hat": (_EIGHTHS, "x.x.x.x.x.xxx.x."),
                "open": ("..............x.", "..............x."),
            },
            kick=(120.0, 45.0, 0.04, 0.28, 1.5),
            snare_decay=0.18,
        ),
        progressions=((0, 5, 3, 4), (0, 3, 0, 4), (0, 5, 6, 4), (1, 4, 0, 0)),
        chord_kind="seventh",
        chord_voice="epiano",
        chord_rhythm="lazy",
        bass_style="riff",
        bass_voice="808",
        lead_voice="bell",
        instruments=("booming 808 bass", "a dusty boom-bap snare", "electric piano chords", "a bell melody"),
        moods=("head-nodding", "gritty", "confident", "smoky"),
        lead_density=0.5,
        swing16=0.55,
        jitter_ms=6.0,
        brightness=0.8,
        echo=0.2,
    ),
    "Lo-Fi": _Style(
        bpm_range=(70, 88),
        modes=("dorian", "major", "minor"),
        kit=_Kit(
            lanes={
                "kick": ("x......x..x.....", "x......x.xx....."),
                "snare": (_BACKBEAT, _BACKBEAT),
                "hat": ("x.xgx.xgx.xgx.xg", "x.xgx.xgx.xgxgxg"),
                "shaker": ("................", "gogogogogogogogo"),
            },
            kick=(110.0, 48.0, 0.035, 0.14, 0.3),
            snare_decay=0.12,
            hat_decay=0.03,
        ),
        progressions=((1, 4, 0, 5), (0, 5, 1, 4), (3, 2, 1, 0), (0, 3, 2, 5)),
        chord_kind="ninth",
        chord_voice="epiano",
        chord_rhythm="lazy",
        bass_style="riff",
        bass_voice="upright",
        lead_voice="bell",
        instruments=("mellow Rhodes chords", "vinyl crackle", "soft swung drums", "a round upright bass"),
        moods=("cozy", "nostalgic", "sleepy", "rainy-day"),
        lead_density=0.45,
        lead_lengths=(2, 4, 4, 6, 8),
        swing16=0.6,
        jitter_ms=8.0,
        brightness=0.5,
        crackle=True,
        echo=0.25,
    ),
    "Ambient": _Style(
        bpm_range=(60, 80),
        modes=("lydian", "major", "minor", "dorian"),
        kit=None,
        progressions=((0, 3, 5, 4), (0, 5, 3, 0), (0, 1, 0, 4), (3, 0, 4, 5)),
        chord_kind="seventh",
        chord_voice="pad",
        chord_rhythm="hold",
        bass_style="drone",
        bass_voice="sub",
        lead_voice="bell",
        instruments=("slowly swelling pads", "glassy bells", "a deep drone", "long echoes"),
        moods=("weightless", "serene", "glacial", "dreamlike"),
        bars_per_chord=2,
        lead_density=0.35,
        lead_lengths=(4, 6, 8, 12, 16),
        lead_low=67,
        brightness=0.6,
        echo=0.55,
        room=0.45,
    ),
    "Rock": _Style(
        bpm_range=(100, 140),
        modes=("major", "mixolydian", "minor"),
        kit=_Kit(
            lanes={
                "kick": ("x.......x.x.....", "x.....x.x.x....."),
                "snare": (_BACKBEAT, _BACKBEAT),
                "hat": (_EIGHTHS, "................"),
                "ride": ("................", "x.x.x.x.x.x.x.x."),
            },
            kick=(110.0, 55.0, 0.02, 0.13, 0.8),
            snare_decay=0.2,
            hat_decay=0.05,
        ),
        progressions=((0, 4, 5, 3), (0, 3, 4, 3), (0, 6, 3, 0), (5, 3, 0, 4)),
        chord_kind="power",
        chord_voice="guitar",
        chord_rhythm="eighths",
        bass_style="eighths",
        bass_voice="pluck",
        lead_voice="guitar",
        instruments=("distorted power chords", "a driving drum kit", "a growling lead guitar", "picked bass"),
        moods=("anthemic", "raw", "restless", "defiant"),
        lead_density=0.65,
        lead_low=57,
        jitter_ms=4.0,
        drive=1.0,
        echo=0.15,
    ),
    "Pop": _Style(
        bpm_range=(96, 124),
        modes=("major", "minor"),
        kit=_Kit(
            lanes={
                "kick": ("x.......x.......", "x.....x.x......."),
                "clap": (_BACKBEAT, _BACKBEAT),
                "hat": (_EIGHTHS, "xoxoxoxoxoxoxoxo"),
                "shaker": ("................", "gogogogogogogogo"),
            },
            kick=(140.0, 50.0, 0.03, 0.15, 0.5),
        ),
        progressions=((0, 4, 5, 3), (0, 5, 3, 4), (5, 3, 0, 4), (3, 4, 0, 5)),
        chord_kind="triad",
        chord_voice="piano",
        chord_rhythm="quarters",
        bass_style="octave",
        bass_voice="pluck",
        lead_voice="square",
        instruments=("bright piano chords", "a catchy synth hook", "handclaps", "a bouncy bass"),
        moods=("sunny", "catchy", "bittersweet", "carefree"),
        pad_layer=True,
        lead_density=0.75,
        sidechain=0.2,
        echo=0.25,
    ),
    "Jazz": _Style(
        bpm_range=(110, 170),
        modes=("dorian", "major", "mixolydian"),
        kit=_Kit(
            lanes={
                "ride": ("x...x.x.x...x.x.", "x...x.x.x...x.xx"),
                "hatpedal": (_BACKBEAT, _BACKBEAT),
                "kick": ("g.......g.......", "g.....g.......g."),
                "snare": ("......g.......g.", "..g.....g...g..g"),
            },
            kick=(100.0, 55.0, 0.02, 0.1, 0.0),
            snare_decay=0.1,
            intro_lanes=("ride", "hatpedal"),
            outro_lanes=("ride", "hatpedal", "kick"),
            fills=False,
        ),
        progressions=((1, 4, 0, 5), (1, 4, 0, 0), (0, 5, 1, 4), (2, 5, 1, 4)),
        chord_kind="seventh",
        chord_voice="piano",
        chord_rhythm="charleston",
        bass_style="walking",
        bass_voice="upright",
        lead_voice="sax",
        instruments=(
            "a walking upright bass",
            "swinging ride cymbal",
            "comping piano",
            "a breathy saxophone",
        ),
        moods=("smoky", "swinging", "late-night", "smooth"),
        lead_density=0.7,
        lead_lengths=(2, 2, 2, 4, 6),
        swing8=1.0,
        jitter_ms=7.0,
        brightness=0.8,
        echo=0.1,
        room=0.3,
    ),
    "Drum and Bass": _Style(
        bpm_range=(170, 178),
        modes=("minor", "dorian"),
        kit=_Kit(
            lanes={
                "kick": ("x.........x.....", "x.x.......xx....x.........x....."),
                "snare": ("....x.......x...", "....x..g.x..x..g....x.g.....x..g"),
                "hat": (_EIGHTHS, "x.xxx.x.x.xxx.x."),
                "ride": ("................", "..x...x...x...x."),
            },
            kick=(150.0, 50.0, 0.025, 0.12, 0.8),
            snare_decay=0.14,
        ),
        progressions=((0, 5, 3, 4), (0, 6, 5, 6), (0, 3, 5, 4), (5, 6, 0, 0)),
        chord_kind="seventh",
        chord_voice="pad",
        chord_rhythm="hold",
        bass_style="long",
        bass_voice="reese",
        lead_voice="pluck",
        instruments=("fast breakbeats", "a detuned reese bass", "atmospheric pads", "ghost snares"),
        moods=("urgent", "rolling", "liquid", "nocturnal"),
        bars_per_chord=2,
        lead_density=0.5,
        lead_lengths=(2, 4, 4, 6, 8),
        echo=0.35,
    ),
    "Synthwave": _Style(
        bpm_range=(84, 118),
        modes=("minor", "dorian"),
        kit=_Kit(
            lanes={
                "kick": (_FOUR, _FOUR),
                "snare": (_BACKBEAT, _BACKBEAT),
                "hat": ("gogogogogogogogo", "gxgxgxgxgxgxgxgx"),
            },
            kick=(130.0, 50.0, 0.03, 0.16, 0.4),
            gated_snare=True,
        ),
        progressions=((0, 5, 2, 6), (0, 3, 5, 6), (0, 6, 5, 6), (5, 3, 0, 6)),
        chord_kind="triad",
        chord_voice="pad",
        chord_rhythm="hold",
        bass_style="eighths",
        bass_voice="saw",
        lead_voice="saw",
        instruments=(
            "gated reverb snares",
            "lush analog pads",
            "pulsing eighth-note bass",
            "a soaring saw lead",
        ),
        moods=("retro", "neon-lit", "cinematic", "wistful"),
        arp=True,
        lead_density=0.6,
        lead_lengths=(2, 4, 4, 6, 8),
        sidechain=0.3,
        echo=0.4,
        room=0.3,
    ),
    "Downtempo": _Style(
        bpm_range=(86, 104),
        modes=("dorian", "minor", "major"),
        kit=_Kit(
            lanes={
                "kick": ("x.......x..x....", "x.....x...x....."),
                "rim": (_BACKBEAT, "....x.....x.x..."),
                "shaker": ("gogogogogogogogo", "gogogogogogogogo"),
                "hat": ("................", "..x...x...x...x."),
            },
            kick=(115.0, 50.0, 0.035, 0.18, 0.3),
            intro_lanes=("shaker",),
        ),
        progressions=((0, 3, 1, 4), (0, 5, 1, 4), (0, 2, 3, 4), (3, 0, 5, 4)),
        chord_kind="seventh",
        chord_voice="epiano",
        chord_rhythm="lazy",
        bass_style="riff",
        bass_voice="sub",
        lead_voice="flute",
        instruments=("a breathy flute", "warm electric piano", "shakers and rimshots", "a deep sub bass"),
        moods=("laid-back", "hazy", "meditative", "warm"),
        pad_layer=True,
        lead_density=0.5,
        lead_lengths=(2, 4, 4, 6, 8),
        swing16=0.3,
        jitter_ms=4.0,
        brightness=0.7,
        echo=0.45,
        room=0.35,
    ),
}

GENRES: tuple[str, ...] = tuple(_STYLES)


@dataclass(frozen=True, slots=True)
class GenreProfile:
    """What the catalog needs to know about a genre to pick specs and describe tracks."""

    name: str
    bpm_range: tuple[float, float]
    modes: tuple[str, ...]
    instruments: tuple[str, ...]
    moods: tuple[str, ...]
    has_drums: bool


def genre_profile(genre: str) -> GenreProfile:
    style = _style(genre)
    return GenreProfile(
        name=genre,
        bpm_range=style.bpm_range,
        modes=style.modes,
        instruments=style.instruments,
        moods=style.moods,
        has_drums=style.kit is not None,
    )


def _style(genre: str) -> _Style:
    try:
        return _STYLES[genre]
    except KeyError:
        raise ValueError(f"unknown genre {genre!r}; known: {', '.join(GENRES)}") from None


# --------------------------------------------------------------------------------------------------
# public entry point


def render(spec: TrackSpec, sample_rate: int = 44100) -> F32:
    """Synthesize ``spec``: float32 samples of shape ``(round(duration_s * sample_rate), 2)``,
    peak-normalised to -1 dBFS.  Deterministic: the same spec gives the same samples."""
    style = _style(spec.genre)
    if spec.mode not in SCALES:
        raise ValueError(f"unknown mode {spec.mode!r}; known: {', '.join(MODES)}")
    if not 20.0 <= spec.bpm <= 300.0:
        raise ValueError(f"bpm must be within 20..300, got {spec.bpm}")
    if not 0.0 < spec.duration_s <= 600.0:
        raise ValueError(f"duration_s must be within (0, 600], got {spec.duration_s}")
    if not 8000 <= sample_rate <= 192000:
        raise ValueError(f"sample_rate must be within 8000..192000, got {sample_rate}")
    return _Renderer(spec, style, sample_rate).run()


# --------------------------------------------------------------------------------------------------
# DSP building blocks (float32 throughout: numpy's float32 exp/sin are several times faster)

_ARANGE_U32: list[NDArray[np.uint32]] = [np.arange(1 << 20, dtype=np.uint32)]
_ARANGE_F32: list[F32] = [np.arange(1 << 20, dtype=np.float32)]


def _f32(x: object) -> F32:
    """``x`` as a float32 array (no copy when it already is one); keeps mypy's types exact."""
    return np.asarray(x, dtype=np.float32)


def _index_u32(n: int) -> NDArray[np.uint32]:
    if len(_ARANGE_U32[0]) < n:
        _ARANGE_U32[0] = np.arange(n, dtype=np.uint32)
    return _ARANGE_U32[0][:n]


def _time(n: int, sr: int) -> F32:
    """Seconds of each of ``n`` samples, float32."""
    if len(_ARANGE_F32[0]) < n:
        _ARANGE_F32[0] = np.arange(n, dtype=np.float32)
    return _ARANGE_F32[0][:n] * np.float32(1.0 / sr)


def _midi_hz(m: float) -> float:
    return float(440.0 * 2.0 ** ((m - 69.0) / 12.0))


def _cycle(
    freq: float, n: int, sr: int, start: float = 0.0, vibrato: tuple[float, float] | None = None
) -> F32:
    """Position within the cycle (0..1) of an oscillator, from a 32-bit phase accumulator (exact pitch,
    no float drift).  ``vibrato`` = (rate Hz, depth in semitones), fading in over the first 0.3 s."""
    offset = np.uint32(int(start % 1.0 * 2.0**32) & 0xFFFFFFFF)
    if vibrato is None:
        inc = np.uint32(round(freq / sr * 2.0**32) & 0xFFFFFFFF)
        acc = _index_u32(n) * inc
    else:
        rate, depth = vibrato
        t = _time(n, sr)
        fade = np.minimum(t * np.float32(1.0 / 0.3), np.float32(1.0))
        ratio = np.exp2(fade * np.sin(t * np.float32(_TAU * rate)) * np.float32(depth / 12.0))
        incs = (ratio * np.float32(freq / sr * 2.0**32)).astype(np.uint32)
        acc = np.cumsum(incs, dtype=np.uint32)
    acc += offset
    return acc.astype(np.float32) * np.float32(2.0**-32)


def _sine(frac: F32) -> F32:
    return _f32(np.sin(frac * np.float32(_TAU)))


def _omega_t(freq: float, cutoff: float | F32, sr: int) -> float | F32:
    """The one-pole filter's cutoff relative to the oscillator's period (2*pi*fc/f), kept sane."""
    hi = _TAU * 0.45 * sr / freq
    if isinstance(cutoff, np.ndarray):
        return _f32(np.clip(cutoff * np.float32(_TAU / freq), np.float32(0.05), np.float32(hi)))
    return min(max(_TAU * cutoff / freq, 0.05), hi)


def _saw_lp(frac: F32, freq: float, cutoff: float | F32, sr: int) -> F32:
    """A sawtooth through a one-pole low-pass (cutoff in Hz, scalar or per sample), in closed form.

    For x(t) = 2t/T - 1 on [0, T), the periodic solution of y' = w (x - y) is
    y = x - 2/(wT) + 2 e^(-w t) / (1 - e^(-wT)).
    """
    wt = _omega_t(freq, cutoff, sr)
    if isinstance(wt, float):
        y = frac * np.float32(2.0)
        y += np.float32(-1.0 - 2.0 / wt)
        y += np.exp(frac * np.float32(-wt)) * np.float32(2.0 / (1.0 - math.exp(-wt)))
        return y
    return _f32(
        frac * np.float32(2.0) - np.float32(1.0) - 2.0 / wt + 2.0 * np.exp(-wt * frac) / (1.0 - np.exp(-wt))
    )


def _square_lp(frac: F32, freq: float, cutoff: float | F32, sr: int) -> F32:
    """A square wave through a one-pole low-pass, in closed form (see :func:`_saw_lp`).

    High half: y = 1 - (y1 + 1) e^(-w t); low half: y = -1 + (y1 + 1) e^(-w (t - T/2)),
    with y1 = (1 - e^(-wT/2)) / (1 + e^(-wT/2)) the value at each edge.
    """
    wt = _omega_t(freq, cutoff, sr)
    low_half = (frac >= np.float32(0.5)).astype(np.float32)
    sign = np.float32(1.0) - np.float32(2.0) * low_half
    psi = frac - np.float32(0.5) * low_half
    if isinstance(wt, float):
        e_half = math.exp(-wt * 0.5)
        k = np.float32(2.0 / (1.0 + e_half))  # y1 + 1
        return sign * (np.float32(1.0) - k * np.exp(psi * np.float32(-wt)))
    e_half_a = np.exp(wt * np.float32(-0.5))
    return _f32(sign * (1.0 - 2.0 / (1.0 + e_half_a) * np.exp(-wt * psi)))


def _adsr(n_hold: int, sr: int, a: float, d: float, s: float, r: float) -> F32:
    """Attack/decay/sustain/release: ``n_hold`` samples of key-down plus the release tail."""
    na = max(1, int(a * sr))
    nd = max(1, int(d * sr))
    nr = max(1, int(r * sr))
    parts: list[F32] = []
    if n_hold <= na:
        parts.append(np.linspace(0.0, n_hold / na, n_hold, endpoint=False, dtype=np.float32))
        level = n_hold / na
    else:
        parts.append(np.linspace(0.0, 1.0, na, endpoint=False, dtype=np.float32))
        held = n_hold - na
        if held <= nd:
            level = 1.0 + (s - 1.0) * held / nd
            parts.append(np.linspace(1.0, level, held, endpoint=False, dtype=np.float32))
        else:
            level = s
            parts.append(np.linspace(1.0, s, nd, endpoint=False, dtype=np.float32))
            parts.append(np.full(held - nd, s, dtype=np.float32))
    parts.append(np.linspace(level, 0.0, nr, dtype=np.float32))
    return np.concatenate(parts)


def _decay_env(n_hold: int, sr: int, tau: float, release: float, attack: float = 0.004) -> F32:
    """Exponential decay while held (percussive instruments), then a short release."""
    nr = max(1, int(release * sr))
    t = _time(n_hold + nr, sr)
    env = np.exp(t * np.float32(-1.0 / tau))
    na = min(max(1, int(attack * sr)), len(env))
    env[:na] *= np.linspace(0.0, 1.0, na, dtype=np.float32)
    env[n_hold:] *= np.linspace(1.0, 0.0, nr, dtype=np.float32)
    return _f32(env)


def _exp_decay(t: F32, tau: float) -> F32:
    return _f32(np.exp(t * np.float32(-1.0 / tau)))


def _lowpass(x: F32, cutoff: float, sr: int) -> F32:
    """A discrete one-pole low-pass (y[n] = y[n-1] + a (x[n] - y[n-1])), applied in the frequency domain."""
    a = 1.0 - math.exp(-_TAU * cutoff / sr)
    tail = min(int(8.0 / max(a, 1e-6)), 4 * sr)
    nfft = _fft_size(len(x) + tail)
    spectrum = np.fft.rfft(x, nfft)
    z = np.exp(-1j * _TAU * np.arange(len(spectrum)) / nfft)
    y = np.fft.irfft(spectrum * (a / (1.0 - (1.0 - a) * z)), nfft)
    return y[: len(x)].astype(np.float32)


def _fft_size(n: int) -> int:
    """The smallest 2^a * 3^b * 5^c >= n: sizes numpy's FFT handles fast, with less padding than 2^k."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p = p35
            while p < n:
                p *= 2
            best = min(best, p)
            p35 *= 3
        p5 *= 5
    return best


def _highpass(x: F32, cutoff: float, sr: int) -> F32:
    return x - _lowpass(x, cutoff, sr)


def _soft_clip(x: F32, drive: float) -> F32:
    return _f32(np.tanh(x * np.float32(drive)) * np.float32(1.0 / math.tanh(drive)))


def _fade_edges(x: F32, sr: int, ms: float = 3.0) -> F32:
    n = min(len(x) // 2, max(1, int(sr * ms / 1000)))
    ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
    x[:n] *= ramp
    x[len(x) - n :] *= ramp[::-1]
    return x


# --------------------------------------------------------------------------------------------------
# the renderer

# drum lane -> (bus, pan, gain)
_LANE_BUS: dict[str, tuple[str, float, float]] = {
    "kick": ("kick", 0.0, 1.0),
    "snare": ("snare", 0.06, 0.7),
    "clap": ("snare", -0.06, 0.65),
    "rim": ("perc", -0.3, 0.3),
    "hat": ("hats", 0.3, 0.22),
    "open": ("hats", 0.25, 0.16),
    "hatpedal": ("hats", 0.2, 0.18),
    "shaker": ("perc", 0.45, 0.22),
    "ride": ("cymbals", -0.3, 0.2),
    "crash": ("cymbals", -0.2, 0.25),
}
_VELOCITY: dict[str, float] = {"X": 1.15, "x": 1.0, "o": 0.6, "g": 0.32}
_MAX_BUSES = 20
_KIT_VARIANTS = 3
_DRUM_CACHE_SIZE = 12 * 9 * _KIT_VARIANTS  # every lane of every kit: ~40 MB at 44.1 kHz
_DRUM_CACHE: dict[tuple[str, str, int, int], F32] = {}
_DRUM_CACHE_LOCK = threading.Lock()


@dataclass(slots=True)
class _Bus:
    pan: float  # -1 left .. +1 right
    gain: float
    data: F32
    send: float = 0.0  # how much goes to the echo/room bus
    duck: bool = False  # side-chained to the kick


@dataclass(slots=True)
class _Section:
    name: str
    start_bar: int
    bars: int


@dataclass(slots=True)
class _Note:
    step: int  # position in 16th steps within a (two-bar) motif
    length: int  # in 16th steps
    degree: int  # scale degree
    velocity: float = 1.0


@dataclass(slots=True)
class _Renderer:
    spec: TrackSpec
    style: _Style
    sr: int
    rng: np.random.Generator = field(init=False)
    scale: tuple[int, ...] = field(init=False)
    step_s: float = field(init=False)
    bar_s: float = field(init=False)
    n_out: int = field(init=False)
    n_total: int = field(init=False)
    n_bars: int = field(init=False)
    buses: dict[str, _Bus] = field(init=False)
    bank: F32 = field(init=False)  # one row per bus, so the mixdown is a single matrix product
    cache: dict[tuple[object, ...], F32] = field(init=False)
    kick_samples: list[int] = field(init=False)

    def __post_init__(self) -> None:
        spec = self.spec
        entropy = [
            spec.seed % (1 << 63),
            zlib.crc32(spec.genre.encode()),
            spec.root % 12,
            round(spec.bpm * 100),
        ]
        self.rng = np.random.default_rng(entropy)
        self.scale = SCALES[spec.mode]
        self.step_s = 60.0 / spec.bpm / 4.0
        self.bar_s = self.step_s * 16
        self.n_out = max(1, round(spec.duration_s * self.sr))
        self.n_bars = max(1, math.ceil(spec.duration_s / self.bar_s))
        self.n_total = self.n_out  # nothing after the end is heard: the fade-out has finished by then
        self.buses = {}
        self.bank = np.zeros((_MAX_BUSES, self.n_total), dtype=np.float32)  # pages stay untouched until used
        self.cache = {}
        self.kick_samples = []

    # ---- plumbing ------------------------------------------------------------------------------

    def bus(
        self, name: str, pan: float = 0.0, gain: float = 1.0, send: float = 0.0, duck: bool = False
    ) -> _Bus:
        b = self.buses.get(name)
        if b is None:
            b = _Bus(pan, gain, self.bank[len(self.buses)], send, duck)
            self.buses[name] = b
        return b

    def place(self, bus: _Bus, sound: F32, at: int, velocity: float = 1.0) -> None:
        if at >= self.n_total or at + len(sound) <= 0:
            return
        if at < 0:
            sound = sound[-at:]
            at = 0
        end = min(self.n_total, at + len(sound))
        if velocity == 1.0:
            bus.data[at:end] += sound[: end - at]
        else:
            bus.data[at:end] += np.float32(velocity) * sound[: end - at]

    def step_time(self, bar: int, step: float) -> float:
        """Seconds from the start of the track of a (bar, 16th step), with swing."""
        whole = int(step)
        if whole == step:
            if whole % 4 == 2:
                step += self.style.swing8 * 2.0 / 3.0
            if whole % 2 == 1:
                step += self.style.swing16 / 3.0
        return (bar * 16 + step) * self.step_s

    def sample_at(self, bar: int, step: float, jitter: bool = True) -> int:
        t = self.step_time(bar, step)
        if jitter and self.style.jitter_ms > 0:
            t += float(self.rng.normal(0.0, self.style.jitter_ms / 1000.0))
        return round(t * self.sr)

    def cached(self, key: tuple[object, ...], make: Callable[[], F32]) -> F32:
        sound = self.cache.get(key)
        if sound is None:
            sound = _fade_edges(np.asarray(make(), dtype=np.float32), self.sr, 1.5)
            self.cache[key] = sound
        return sound

    def n_steps(self, steps: float, legato: float = 1.0) -> int:
        return max(1, round(steps * self.step_s * self.sr * legato))

    # ---- harmony -------------------------------------------------------------------------------

    def degree_pitch(self, degree: int, base: int) -> int:
        """MIDI pitch of scale ``degree`` (0 = tonic; may be negative or above 6) in ``base``'s octave."""
        octave, idx = divmod(degree, 7)
        return base + self.spec.root % 12 + self.scale[idx] + 12 * octave

    def chord_pitches(self, degree: int) -> list[int]:
        """Chord tones stacked in thirds on a scale degree (absolute MIDI numbers from C3)."""
        kind = self.style.chord_kind
        if kind == "power":
            r = self.degree_pitch(degree, 48)
            return [r, r + 7, r + 12]
        count = {"triad": 3, "seventh": 4, "ninth": 5}[kind]
        tones = [self.degree_pitch(degree + 2 * i, 48) for i in range(count)]
        if kind == "ninth":
            del tones[2]  # drop the fifth: root, third, seventh, ninth
        return tones

    @staticmethod
    def voice(pitches: Sequence[int], low: int) -> tuple[int, ...]:
        """Close voicing inside one octave from ``low`` (inversions happen by themselves)."""
        if len(pitches) == 3 and pitches[2] - pitches[0] == 12:  # power chord: keep its shape
            root = low + (pitches[0] - low) % 12
            return (root, root + 7, root + 12)
        return tuple(sorted({low + (p - low) % 12 for p in pitches}))

    def bass_root(self, degree: int, low: int) -> int:
        return low + (self.degree_pitch(degree, 0) - low) % 12

    # ---- arrangement ---------------------------------------------------------------------------

    def sections(self) -> list[_Section]:
        n = self.n_bars
        intro = min(4, round(n * 0.15)) if n >= 6 else 0
        outro = min(4, round(n * 0.15)) if n >= 6 else 0
        middle = n - intro - outro
        a = (middle + 1) // 2
        b = middle - a
        out: list[_Section] = []
        bar = 0
        for name, count in (("intro", intro), ("A", a), ("B", b), ("outro", outro)):
            if count > 0:
                out.append(_Section(name, bar, count))
                bar += count
        return out

    def run(self) -> F32:
        style = self.style
        sections = self.sections()
        progs = list(style.progressions)
        prog_a = progs[int(self.rng.integers(len(progs)))]
        prog_b = progs[int(self.rng.integers(len(progs)))]
        if prog_b == prog_a:
            prog_b = prog_a[2:] + prog_a[:2]  # same chords, other order: still a contrast
        motif_a = self.make_motif(style.lead_density, 0)
        motif_b = self.make_motif(min(1.0, style.lead_density + 0.15), 2)
        bass_riff = self.make_bass_riff()
        chord_hits = self.chord_rhythm()

        for sec in sections:
            prog = prog_b if sec.name == "B" else prog_a
            for i in range(sec.bars):
                bar = sec.start_bar + i
                chord_idx = (i // style.bars_per_chord) % len(prog)
                degree = prog[chord_idx]
                next_degree = prog[((i + 1) // style.bars_per_chord) % len(prog)]
                first_of_chord = i % style.bars_per_chord == 0
                if style.kit is not None:
                    self.drums(style.kit, sec, bar, i)
                self.chords(degree, bar, first_of_chord, chord_hits, sec.name)
                if sec.name != "intro" or style.kit is None:
                    self.bass(degree, next_degree, bar, i, bass_riff)
                if sec.name in ("A", "B"):
                    motif = motif_b if sec.name == "B" else motif_a
                    self.melody(motif, degree, bar, i, sec.name == "B")
                    if style.arp and (sec.name == "B" or style.chord_voice == "pad"):
                        self.arp(degree, bar, up_down=sec.name == "B")
        if style.crackle:
            self.crackle()
        return self.mixdown(sections)

    # ---- drums ---------------------------------------------------------------------------------

    def drum_sound(self, lane: str, kit: _Kit) -> F32:
        """A drum sound of this genre's kit.  Kits come in a few variants (by seed) and are shared by all
        tracks a process renders: the noise-based sounds are among the costlier things to make."""
        key = (self.spec.genre, lane, self.sr, self.spec.seed % _KIT_VARIANTS)
        sound = _DRUM_CACHE.get(key)
        if sound is None:
            sound = _fade_edges(self.make_drum(lane, kit, key[3]), self.sr, 1.5)
            with _DRUM_CACHE_LOCK:
                while len(_DRUM_CACHE) >= _DRUM_CACHE_SIZE:
                    del _DRUM_CACHE[next(iter(_DRUM_CACHE))]  # oldest first
                _DRUM_CACHE[key] = sound
        return sound

    def make_drum(self, lane: str, kit: _Kit, variant: int) -> F32:
        sr = self.sr
        rng = np.random.default_rng(
            [zlib.crc32(self.spec.genre.encode()), zlib.crc32(lane.encode()), variant]
        )
        bright = self.style.brightness

        def noise(seconds: float) -> F32:
            return rng.standard_normal(int(seconds * sr), dtype=np.float32)

        if lane == "kick":
            f0, f1, ptau, decay, drive = kit.kick
            n = int((decay * 5 + 0.02) * sr)
            t = _time(n, sr)
            freq = np.float32(f1) + np.float32(f0 - f1) * _exp_decay(t, ptau)
            phase = np.cumsum(freq, dtype=np.float64) / sr
            y = np.sin(_TAU * phase).astype(np.float32) * _exp_decay(t, decay)
            y += np.float32(0.3) * _highpass(noise(n / sr), 2000, sr) * _exp_decay(t, 0.004)
            return _soft_clip(y, drive) if drive > 0 else y
        if lane == "snare":
            x = noise(0.5 if kit.gated_snare else max(0.3, kit.snare_decay * 5))
            t = _time(len(x), sr)
            body = _lowpass(_highpass(x, 1200, sr), 7000 * bright * bright, sr)
            if bright < 0.9:  # dusty genres: a steeper roll-off
                body = _lowpass(body, 5000 * bright, sr)
            body *= np.float32(1.0 / (np.abs(body).max() + 1e-9))
            env = _exp_decay(t, 0.3 if kit.gated_snare else kit.snare_decay)
            if kit.gated_snare:
                env *= np.clip((np.float32(0.32) - t) * np.float32(50.0), 0.0, 1.0)
            freq = np.float32(180.0) + np.float32(60.0) * _exp_decay(t, 0.02)
            tone = np.sin(_TAU * np.cumsum(freq, dtype=np.float64) / sr).astype(np.float32) * _exp_decay(
                t, 0.07
            )
            return np.float32(1.6) * body * env + np.float32(0.6) * tone
        if lane == "clap":
            x = _lowpass(_highpass(noise(0.4), 900, sr), 3500 * bright, sr)
            t = _time(len(x), sr)
            env = np.zeros(len(x), dtype=np.float32)
            for delay in (0.0, 0.011, 0.023):
                k = int(delay * sr)
                env[k:] += _exp_decay(t[: len(x) - k], 0.005)
            k = int(0.03 * sr)
            env[k:] += np.float32(0.8) * _exp_decay(t[: len(x) - k], 0.12)
            x *= np.float32(1.0 / (np.abs(x).max() + 1e-9))
            return x * env
        if lane == "rim":
            n = int(0.08 * sr)
            t = _time(n, sr)
            y = np.float32(0.5) * _sine(_cycle(1750, n, sr)) + _sine(_cycle(820, n, sr))
            return y * _exp_decay(t, 0.012)
        if lane in ("hat", "open", "ride", "crash", "hatpedal"):
            dur, decay, hp, base = {
                "hat": (0.25, kit.hat_decay, 7000.0, 1.0),
                "open": (0.8, 0.22, 6500.0, 1.0),
                "hatpedal": (0.2, 0.03, 6000.0, 0.9),
                "ride": (1.3, 0.5, 4000.0, 1.7),
                "crash": (1.8, 0.7, 4500.0, 1.3),
            }[lane]
            n = int(dur * sr)
            t = _time(n, sr)
            metal = np.zeros(n, dtype=np.float32)  # six detuned square waves: the 808 cymbal recipe
            for f in (205.3, 304.4, 369.6, 522.7, 540.0, 800.0):
                metal += np.sign(_cycle(f * base * 1.7, n, sr, float(rng.random())) - np.float32(0.5))
            x = np.float32(0.06) * metal + np.float32(0.5) * noise(dur)
            x = _highpass(x, min(hp * (0.6 + 0.4 * bright), 0.4 * sr), sr)
            if bright < 0.9:
                x = _lowpass(_lowpass(x, 9000 * bright, sr), 9000 * bright, sr)
            env = _exp_decay(t, decay)
            if lane == "ride":
                env = np.float32(0.7) * env + np.float32(0.6) * _exp_decay(t, 0.03)
                x += np.float32(0.25) * _sine(_cycle(2950, n, sr)) * _exp_decay(t, 0.4)
            return x * env
        if lane == "shaker":
            x = _highpass(noise(0.12), 5000 * (0.5 + 0.5 * bright), sr)
            t = _time(len(x), sr)
            return _f32(x * np.minimum(t * np.float32(1 / 0.012), 1.0) * _exp_decay(t, 0.035))
        raise ValueError(f"unknown drum lane {lane!r}")  # pragma: no cover - the table is fixed

    def drums(self, kit: _Kit, sec: _Section, bar: int, i: int) -> None:
        lanes = dict(kit.lanes)
        if sec.name == "intro":
            lanes = {k: v for k, v in lanes.items() if k in kit.intro_lanes}
        elif sec.name == "outro":
            lanes = {k: v for k, v in lanes.items() if k in kit.outro_lanes}
        last_bar = i == sec.bars - 1
        fill = kit.fills and last_bar and sec.name in ("A", "B") and sec.bars >= 2
        for lane, (pat_a, pat_b) in lanes.items():
            pattern = pat_b if sec.name in ("B", "outro") else pat_a
            bar_pat = pattern[(i % (len(pattern) // 16)) * 16 :][:16]
            if fill and lane in ("snare", "clap"):
                bar_pat = bar_pat[:8] + "gogoxoxX"
            elif fill and lane in ("hat", "shaker"):
                bar_pat = bar_pat[:12] + "...."
            self.drum_lane(kit, lane, bar, bar_pat)
        if sec.name in ("A", "B") and i == 0:
            self.drum_lane(kit, "crash", bar, "x" + "." * 15)

    def drum_lane(self, kit: _Kit, lane: str, bar: int, pattern: str) -> None:
        bus_name, pan, gain = _LANE_BUS[lane]
        bus = self.bus(bus_name, pan, gain, send=0.15 if bus_name in ("snare", "perc") else 0.05)
        sound = self.drum_sound(lane, kit)
        for step, ch in enumerate(pattern):
            vel = _VELOCITY.get(ch)
            if vel is None:
                continue
            if lane in ("hat", "shaker", "ride"):
                vel *= float(self.rng.uniform(0.8, 1.0))
            at = self.sample_at(bar, step, jitter=lane != "kick")
            self.place(bus, sound, at, vel)
            if lane == "kick":
                self.kick_samples.append(at)

    # ---- chords --------------------------------------------------------------------------------

    def chord_rhythm(self) -> list[tuple[int, int, float]]:
        """(step, length in steps, velocity) of chord hits within one bar."""
        rhythm = self.style.chord_rhythm
        if rhythm == "stabs":
            options = (
                [(2, 1, 1.0), (6, 1, 0.8), (10, 1, 1.0), (14, 1, 0.8)],
                [(0, 2, 1.0), (3, 1, 0.7), (6, 2, 0.9), (10, 1, 0.8), (13, 2, 0.9)],
                [(3, 2, 1.0), (6, 1, 0.7), (11, 2, 1.0)],
            )
            return options[int(self.rng.integers(len(options)))]
        if rhythm == "charleston":
            return [(0, 3, 1.0), (6, 2, 0.8), (10, 2, 0.6)]
        if rhythm == "eighths":
            return [(s, 2, 1.0 if s % 4 == 0 else 0.75) for s in range(0, 16, 2)]
        if rhythm == "quarters":
            return [(0, 4, 1.0), (4, 4, 0.7), (8, 4, 0.85), (12, 2, 0.7), (14, 2, 0.6)]
        if rhythm == "lazy":
            return [(0, 10, 1.0), (10, 6, 0.7)]
        return [(0, 16 * self.style.bars_per_chord, 1.0)]

    def chords(
        self, degree: int, bar: int, first: bool, hits: list[tuple[int, int, float]], section: str
    ) -> None:
        style = self.style
        pitches = self.chord_pitches(degree)
        low = {"guitar": 40, "stab": 57, "pluck": 57}.get(style.chord_voice, 53)
        voiced = self.voice(pitches, low)
        if style.chord_voice == "pad" or style.chord_rhythm == "hold":
            if first:
                self.pad_chord(voiced, bar, 16 * style.bars_per_chord, "chords", 1.0)
            return
        if style.pad_layer and first:
            self.pad_chord(self.voice(pitches, 48), bar, 16 * style.bars_per_chord, "padlayer", 0.3)
        if section == "intro" and style.chord_rhythm in ("eighths", "stabs"):
            hits = hits[:1]  # sparse intro: just the downbeat
        for step, length, vel in hits:
            at = self.sample_at(bar, step)
            sound = self.cached(("chord", voiced, length), partial(self.make_chord, voiced, length))
            if style.chord_voice == "guitar":  # double-tracked: two takes hard left and right
                late = self.cached(("chord2", voiced, length), partial(self.make_chord, voiced, length, 1))
                self.place(self.bus("guitar_l", -0.8, 0.45, send=0.15), sound, at, vel)
                self.place(self.bus("guitar_r", 0.8, 0.45, send=0.15), late, at + int(0.011 * self.sr), vel)
            else:
                self.place(self.bus("chords", -0.2, 0.5, send=0.3, duck=True), sound, at, vel)

    def pad_chord(self, voiced: tuple[int, ...], bar: int, steps: int, name: str, gain: float) -> None:
        n_hold = self.n_steps(steps)
        left = self.bus(f"{name}_l", -0.8, 0.32 * gain, send=0.5, duck=True)
        right = self.bus(f"{name}_r", 0.8, 0.32 * gain, send=0.5, duck=True)
        at = self.sample_at(bar, 0, jitter=False)
        for k, p in enumerate(voiced):
            # three detuned saws per note: one left, one right, one in the middle (sent to both sides)
            for side, bus in ((0, left), (1, right), (2, left), (2, right)):
                sound = self.cached(("pad", p, n_hold, side), partial(self.make_pad_note, p, n_hold, side))
                self.place(bus, sound, at + 40 * k * (side + 1), 0.7 if side == 2 else 1.0)

    def make_pad_note(self, pitch: int, n_hold: int, side: int) -> F32:
        sr = self.sr
        slow = self.style.bars_per_chord > 1 or self.style.kit is None
        attack = min(1.5 if slow else 0.35, 0.4 * n_hold / sr)
        env = _adsr(n_hold, sr, attack, 0.5, 0.8, 1.2 if slow else 0.5)
        n = len(env)
        f = _midi_hz(pitch)
        cutoff = f * 2.0 + 900.0 * self.style.brightness * (0.9, 1.1, 1.0)[side]
        fd = f * 2.0 ** ((-10.0, 10.0, 0.0)[side] / 1200.0)
        y = _saw_lp(_cycle(fd, n, sr, float(self.rng.random())), fd, cutoff, sr)
        y *= env
        y *= np.float32(0.7)
        return y

    def make_chord(self, voiced: tuple[int, ...], steps: int, variant: int = 0) -> F32:
        voice = self.style.chord_voice
        n_hold = self.n_steps(steps)
        if voice == "guitar":
            return self.make_guitar_chord(voiced, n_hold, variant)
        notes = [
            self.cached(("key", p, n_hold), partial(self.make_keys_note, voice, p, n_hold)) for p in voiced
        ]
        out = np.zeros(max(len(x) for x in notes), dtype=np.float32)
        for x in notes:
            out[: len(x)] += x
        out *= np.float32(1.0 / math.sqrt(len(notes)))
        return out

    def make_keys_note(self, voice: str, pitch: int, n_hold: int) -> F32:
        sr = self.sr
        f = _midi_hz(pitch)
        bright = self.style.brightness
        if voice == "epiano":  # two-operator FM: the classic tine electric piano
            env = _decay_env(n_hold, sr, 1.4, 0.25, attack=0.003)
            n = len(env)
            t = _time(n, sr)
            c = _cycle(f, n, sr)
            index = np.float32(1.2 + 1.5 * bright) * _exp_decay(t, 0.25)
            y = np.sin(c * np.float32(_TAU) + index * _sine(c)) + np.float32(0.15) * _sine(
                _cycle(2 * f, n, sr)
            )
            tremolo = np.float32(1.0) + np.float32(0.15) * np.sin(t * np.float32(_TAU * 4.5))
            return _f32(y * env * tremolo)
        if voice == "piano":  # a few slightly inharmonic partials, the upper ones dying faster
            env = _decay_env(n_hold, sr, 2.5, 0.2, attack=0.002)
            n = len(env)
            t = _time(n, sr)
            y = np.zeros(n, dtype=np.float32)
            for k in range(1, 7):
                fk = f * k * math.sqrt(1.0 + 0.0004 * k * k)
                if fk > 0.45 * sr:
                    break
                y += (
                    _sine(_cycle(fk, n, sr))
                    * _exp_decay(t, 1.0 / (0.5 + 1.4 * k * bright))
                    * np.float32(k**-1.1)
                )
            return y * env
        if voice == "organ":
            env = _adsr(n_hold, sr, 0.005, 0.05, 0.9, 0.08)
            n = len(env)
            y = np.zeros(n, dtype=np.float32)
            for k, w in ((1, 1.0), (2, 0.6), (3, 0.35), (4, 0.2), (6, 0.1)):
                y += np.float32(w) * _sine(_cycle(f * k, n, sr))
            return y * env * np.float32(0.5)
        # "stab" and "pluck": a filtered saw with a snappy filter envelope
        env = _decay_env(n_hold, sr, 0.18, 0.12, attack=0.002)
        n = len(env)
        cutoff = np.float32(f) + np.float32(3500.0 * bright) * _exp_decay(_time(n, sr), 0.08)
        return _saw_lp(_cycle(f, n, sr), f, cutoff, sr) * env

    def make_guitar_chord(self, voiced: tuple[int, ...], n_hold: int, variant: int) -> F32:
        sr = self.sr
        env = _decay_env(n_hold, sr, 0.9, 0.06, attack=0.002)
        n = len(env)
        y = np.zeros(n, dtype=np.float32)
        for k, p in enumerate(voiced):
            f = _midi_hz(p) * (1.0 + 0.002 * (variant - 0.5) * (k + 1))
            y += _saw_lp(_cycle(f, n, sr, 0.3 * k + 0.17 * variant), f, 4000.0, sr)
        y = _soft_clip(y * np.float32(0.9), 4.0 + 2.0 * self.style.drive)
        return _lowpass(y, 3200.0, sr) * env * np.float32(0.6)

    # ---- bass ----------------------------------------------------------------------------------

    def make_bass_riff(self) -> list[tuple[int, int, int]]:
        """(step, length, interval above the chord root) for one bar."""
        style = self.style.bass_style
        if style == "offbeat":
            return [(s, 2, 0) for s in (2, 6, 10, 14)]
        if style == "octave":
            return [(s, 2, 12 if s % 4 == 2 else 0) for s in range(0, 16, 2)]
        if style == "rolling":
            return [(s, 1, 12 if s in (7, 15) else 0) for s in range(16) if s % 4 != 0]
        if style == "eighths":
            return [(s, 2, 12 if s == 14 else 0) for s in range(0, 16, 2)]
        if style == "long":
            return [(0, 6, 0), (6, 4, 0), (10, 6, 0)]
        if style == "drone":
            return [(0, 16 * self.style.bars_per_chord, 0)]
        if style == "walking":
            return []  # generated bar by bar
        # "riff": a random syncopated figure, fixed for the track, moving with the chords
        riff = [(0, int(self.rng.choice([3, 4, 6])), 0)]
        step = riff[0][1]
        while step < 15:
            step += int(self.rng.choice([1, 2, 2, 3, 4]))
            if step >= 16:
                break
            length = min(int(self.rng.choice([1, 2, 2, 3])), 16 - step)
            riff.append((step, length, int(self.rng.choice([0, 0, 7, 12, 10, 5]))))
            step += length
        return riff

    def bass(self, degree: int, next_degree: int, bar: int, i: int, riff: list[tuple[int, int, int]]) -> None:
        style = self.style
        low = 31 if style.bass_voice in ("808", "sub", "reese", "upright") else 33
        root = self.bass_root(degree, low)
        level = {"drone": 0.3, "walking": 0.4}.get(style.bass_style, 0.55)
        bus = self.bus("bass", 0.0, level, duck=True)
        if style.bass_style == "walking":
            chord = [low + (p - low) % 12 for p in self.chord_pitches(degree)]
            target = self.bass_root(next_degree, low)
            line = [
                root,
                int(self.rng.choice(chord[1:])),
                int(self.rng.choice(chord)),
                target + int(self.rng.choice([-1, 1])),
            ]
            notes = [(4 * k, 4, p) for k, p in enumerate(line)]
        else:
            if style.bass_style == "drone" and i % style.bars_per_chord != 0:
                return
            notes = [(s, length, root + iv) for s, length, iv in riff]
        for step, length, pitch in notes:
            sound = self.cached(("bass", pitch, length), partial(self.make_bass_note, pitch, length))
            self.place(bus, sound, self.sample_at(bar, step), 0.95 if step % 4 else 1.0)

    def make_bass_note(self, pitch: int, steps: int) -> F32:
        sr = self.sr
        voice = self.style.bass_voice
        f = _midi_hz(pitch)
        n_hold = self.n_steps(steps, 0.92)
        bright = self.style.brightness
        if voice == "sub":
            if self.style.bass_style == "drone":
                env = _adsr(n_hold, sr, 0.8, 0.5, 0.9, 1.5)
            else:
                env = _adsr(n_hold, sr, 0.004, 0.3, 0.75, 0.08)
            c = _cycle(f, len(env), sr)
            return (_sine(c) + np.float32(0.12) * _sine(c * np.float32(2.0) % np.float32(1.0))) * env
        if voice == "808":  # a long sine with a pitch drop at the start, driven a little
            env = _decay_env(n_hold, sr, 0.9, 0.1)
            t = _time(len(env), sr)
            freq = np.float32(f) * (np.float32(1.0) + np.float32(0.6) * _exp_decay(t, 0.03))
            ph = np.cumsum(freq, dtype=np.float64) / sr
            return _soft_clip(np.sin(_TAU * ph).astype(np.float32) * env, 2.0) * np.float32(0.8)
        if voice == "upright":
            env = _decay_env(n_hold, sr, 0.5, 0.06, attack=0.006)
            n = len(env)
            t = _time(n, sr)
            c = _cycle(f, n, sr)
            y = _sine(c) + np.float32(0.35) * _sine(_cycle(2 * f, n, sr)) * _exp_decay(t, 0.15)
            y += np.float32(0.1) * _sine(_cycle(3 * f, n, sr))
            return y * env
        if voice == "reese":  # two detuned saws, slowly moving filter, plus a clean sub
            env = _adsr(n_hold, sr, 0.02, 0.2, 0.9, 0.1)
            n = len(env)
            t = _time(n, sr)
            cutoff = np.float32(300.0) + np.float32(500.0 * bright) * (
                np.float32(0.5) + np.float32(0.5) * np.sin(t * np.float32(_TAU * 0.4))
            )
            y = _saw_lp(_cycle(f * 1.006, n, sr), f, cutoff, sr) + _saw_lp(
                _cycle(f * 0.994, n, sr, 0.5), f, cutoff, sr
            )
            return (np.float32(0.5) * y + np.float32(0.8) * _sine(_cycle(f, n, sr))) * env
        if voice == "square":
            env = _adsr(n_hold, sr, 0.003, 0.1, 0.7, 0.05)
            n = len(env)
            cutoff = np.float32(f * 2) + np.float32(1200.0 * bright) * _exp_decay(_time(n, sr), 0.1)
            return _square_lp(_cycle(f, n, sr), f, cutoff, sr) * env * np.float32(0.8)
        # "saw" and "pluck": a filtered saw with a filter envelope (acid-ish in Techno)
        decay = 0.12 if voice == "pluck" else 0.07
        env = _adsr(n_hold, sr, 0.003, decay * 2, 0.6 if voice == "saw" else 0.3, 0.05)
        n = len(env)
        cutoff = np.float32(f * 1.5) + np.float32(2200.0 * bright) * _exp_decay(_time(n, sr), decay)
        c = _cycle(f, n, sr)
        y = _saw_lp(c, f, cutoff, sr) + np.float32(0.5) * _sine(c)
        return y * env * np.float32(0.8)

    # ---- melody --------------------------------------------------------------------------------

    def make_motif(self, density: float, lift: int) -> list[_Note]:
        """Two bars of melody in scale degrees: a rhythm from the genre's note lengths and a walk."""
        notes: list[_Note] = []
        lengths = self.style.lead_lengths
        degree = int(self.rng.integers(0, 5)) + lift
        step = int(self.rng.choice([0, 0, 2, 4]))
        moves = [-3, -2, -1, -1, 0, 1, 1, 2, 3, 4]
        while step < 32:
            length = min(int(self.rng.choice(lengths)), 32 - step)
            if self.rng.random() < density:
                notes.append(_Note(step, length, degree, float(self.rng.uniform(0.75, 1.0))))
                degree = min(max(degree + int(self.rng.choice(moves)), -1), 10)
            step += length
        if not notes:
            notes.append(_Note(0, 8, lift, 1.0))
        return notes

    def melody(self, motif: list[_Note], degree: int, bar: int, i: int, section_b: bool) -> None:
        style = self.style
        half = i % 2
        varied = i % 4 >= 2  # every second phrase answers with a variation of the motif's second half
        chord_pcs = {p % 12 for p in self.chord_pitches(degree)}
        bus = self.bus("lead", 0.1 if section_b else -0.05, 0.6, send=0.5 * style.echo / 0.25)
        base = style.lead_low - style.lead_low % 12
        for note in motif:
            if note.step // 16 != half:
                continue
            d = note.degree + (2 if varied and half == 1 else 0)
            shift = 0
            while self.degree_pitch(d, base) + shift < style.lead_low:
                shift += 12
            while self.degree_pitch(d, base) + shift > style.lead_low + 22:
                shift -= 12
            pitch = self.degree_pitch(d, base) + shift
            if note.step % 8 == 0 or note.length >= 4:  # strong beats and long notes land on chord tones
                for cand in (d, d - 1, d + 1):
                    if (self.degree_pitch(cand, base) + shift) % 12 in chord_pcs:
                        pitch = self.degree_pitch(cand, base) + shift
                        break
            sound = self.cached(
                ("lead", pitch, note.length), partial(self.make_lead_note, pitch, note.length)
            )
            self.place(bus, sound, self.sample_at(bar, note.step % 16), note.velocity)

    def make_lead_note(self, pitch: int, steps: int) -> F32:
        sr = self.sr
        voice = self.style.lead_voice
        f = _midi_hz(pitch)
        n_hold = self.n_steps(steps, 0.9)
        bright = self.style.brightness
        if voice == "bell":  # FM with an inharmonic ratio
            env = _decay_env(n_hold, sr, 0.9, 0.6, attack=0.002)
            n = len(env)
            index = np.float32(2.0 * bright) * _exp_decay(_time(n, sr), 0.4)
            y = np.sin(_cycle(f, n, sr) * np.float32(_TAU) + index * _sine(_cycle(3.5 * f, n, sr)))
            return y * env * np.float32(0.8)
        if voice == "flute":
            env = _adsr(n_hold, sr, 0.06, 0.1, 0.85, 0.15)
            n = len(env)
            c = _cycle(f, n, sr, vibrato=(5.0, 0.15))
            breath = np.random.default_rng(pitch).standard_normal(n, dtype=np.float32) * np.float32(0.05)
            y = _sine(c) + np.float32(0.2) * _sine(c * np.float32(2.0) % np.float32(1.0)) + breath
            return _f32(y * env * np.float32(0.8))
        if voice == "sax":
            env = _adsr(n_hold, sr, 0.03, 0.15, 0.75, 0.08)
            n = len(env)
            cutoff = np.float32(f * 1.5) + np.float32(1800.0 * bright) * env
            return _saw_lp(_cycle(f, n, sr, vibrato=(5.2, 0.2)), f, cutoff, sr) * env * np.float32(0.8)
        if voice == "guitar":
            env = _decay_env(n_hold, sr, 1.5, 0.1, attack=0.003)
            n = len(env)
            y = _saw_lp(_cycle(f, n, sr, vibrato=(5.5, 0.25)), f, 3000.0, sr)
            y += np.float32(0.5) * _saw_lp(_cycle(f * 1.004, n, sr, 0.3, vibrato=(5.5, 0.25)), f, 3000.0, sr)
            return _soft_clip(y, 5.0) * env * np.float32(0.4)
        if voice == "square":
            env = _adsr(n_hold, sr, 0.005, 0.15, 0.6, 0.12)
            n = len(env)
            cutoff = np.float32(f * 3) + np.float32(2500.0 * bright) * env
            return _square_lp(_cycle(f, n, sr, vibrato=(5.5, 0.12)), f, cutoff, sr) * env * np.float32(0.55)
        if voice == "pluck":
            env = _decay_env(n_hold, sr, 0.25, 0.15, attack=0.002)
            n = len(env)
            cutoff = np.float32(f) + np.float32(4000.0 * bright) * _exp_decay(_time(n, sr), 0.1)
            return _saw_lp(_cycle(f, n, sr), f, cutoff, sr) * env * np.float32(0.7)
        # "saw": two detuned saws with a touch of vibrato
        env = _adsr(n_hold, sr, 0.01, 0.2, 0.7, 0.2)
        n = len(env)
        cutoff = np.float32(f * 2) + np.float32(2500.0 * bright) * env
        y = _saw_lp(_cycle(f, n, sr, vibrato=(5.0, 0.1)), f, cutoff, sr)
        y += _saw_lp(_cycle(f * 1.005, n, sr, 0.3, vibrato=(5.0, 0.1)), f, cutoff, sr)
        return y * env * np.float32(0.4)

    def arp(self, degree: int, bar: int, up_down: bool) -> None:
        voiced = self.voice(self.chord_pitches(degree), 60)
        seq = [*voiced, voiced[0] + 12]
        if up_down:
            seq = seq + seq[-2:0:-1]
        bus = self.bus("arp", 0.35, 0.2, send=0.6)
        for step in range(16):
            pitch = seq[step % len(seq)]
            sound = self.cached(("arp", pitch), partial(self.make_arp_note, pitch))
            self.place(bus, sound, self.sample_at(bar, step, jitter=False), 1.0 if step % 4 == 0 else 0.7)

    def make_arp_note(self, pitch: int) -> F32:
        sr = self.sr
        f = _midi_hz(pitch)
        env = _decay_env(self.n_steps(1), sr, 0.12, 0.08, attack=0.002)
        n = len(env)
        cutoff = np.float32(f) + np.float32(3000.0 * self.style.brightness) * _exp_decay(_time(n, sr), 0.06)
        return _square_lp(_cycle(f, n, sr), f, cutoff, sr) * env

    # ---- texture -------------------------------------------------------------------------------

    def crackle(self) -> None:
        """Vinyl: sparse clicks of random size and a little hiss."""
        bus = self.bus("crackle", 0.0, 0.5)
        n = self.n_total
        count = int(n / self.sr * 18)
        pos = self.rng.integers(0, n - 64, count)
        amp = self.rng.random(count) ** 3 * 0.6
        click = np.exp(-np.arange(24, dtype=np.float32) / np.float32(4.0))
        for p, a in zip(pos.tolist(), amp.tolist(), strict=True):
            bus.data[p : p + 24] += np.float32(a if p % 2 else -a) * click
        hiss = self.rng.standard_normal(n // 16 + 2, dtype=np.float32) * np.float32(0.004)
        bus.data += np.interp(  # slowly interpolated noise: a soft, dark hiss
            _time(n, 16), np.arange(len(hiss), dtype=np.float32), hiss
        ).astype(np.float32)

    # ---- mix -----------------------------------------------------------------------------------

    def mixdown(self, sections: list[_Section]) -> F32:
        style = self.style
        buses = list(self.buses.values())
        if style.sidechain > 0 and self.kick_samples:
            duck = self.duck_envelope()
            for bus in buses:
                if bus.duck:
                    bus.data *= duck
        # constant-power pan: rows are (left, right, effects send)
        gains = np.zeros((3, len(buses)), dtype=np.float32)
        for j, bus in enumerate(buses):
            theta = (bus.pan + 1.0) * math.pi / 4.0
            gains[0, j] = bus.gain * math.cos(theta) * math.sqrt(2.0)
            gains[1, j] = bus.gain * math.sin(theta) * math.sqrt(2.0)
            gains[2, j] = bus.gain * bus.send
        mix = gains @ self.bank[: len(buses)]
        self.space(mix[:2], mix[2])

        # fade in over the intro (or briefly), fade out over the outro (or the last seconds)
        sr = self.sr
        out = mix[:2, : self.n_out]
        intro = next((s for s in sections if s.name == "intro"), None)
        outro = next((s for s in sections if s.name == "outro"), None)
        fade_in = round(intro.bars * self.bar_s * sr * 0.6) if intro else int(0.02 * sr)
        fade_in = max(1, min(fade_in, self.n_out))
        out[:, :fade_in] *= np.linspace(0.0, 1.0, fade_in, dtype=np.float32) ** 2
        if outro:
            out_start = round(outro.start_bar * self.bar_s * sr)
        else:
            out_start = self.n_out - int(min(2.0, 0.15 * self.spec.duration_s) * sr)
        out_start = min(max(0, out_start), self.n_out - 1)
        out[:, out_start:] *= np.linspace(1.0, 0.0, self.n_out - out_start, dtype=np.float32) ** 1.5
        if style.drive > 0:
            out = np.tanh(out * np.float32((1.0 + style.drive) / (float(np.abs(out).max()) + 1e-9)))
        peak = max(float(out.max()), -float(out.min()))
        gain = np.float32(10.0 ** (PEAK_DBFS / 20.0) / peak) if peak > 0 else np.float32(1.0)
        result = np.empty((self.n_out, 2), dtype=np.float32)
        np.multiply(out[0], gain, out=result[:, 0])
        np.multiply(out[1], gain, out=result[:, 1])
        return result

    def duck_envelope(self) -> F32:
        """Side-chain compression, the cheap way: dip right after every kick, recover over ~100 ms."""
        sr = self.sr
        dip = _exp_decay(_time(int(0.45 * sr), sr), 0.09)
        curve = np.float32(1.0) - np.float32(self.style.sidechain) * dip
        env = np.ones(self.n_total, dtype=np.float32)
        for at in self.kick_samples:
            if 0 <= at < self.n_total:
                seg = env[at : at + len(curve)]
                np.minimum(seg, curve[: len(seg)], out=seg)
        return env

    def space(self, stereo: F32, send: F32) -> None:
        """A tempo-synced ping-pong echo plus a few early reflections as a cheap room."""
        sr = self.sr
        taps: list[tuple[int, int, float]] = []
        if self.style.echo > 0:
            d = 0.75 * self.step_s * 4  # a dotted eighth
            taps += [(k % 2, round(k * d * sr), self.style.echo * 0.5**k) for k in range(1, 4)]
        room = self.style.room
        for ch, ms, g in ((0, 29, 0.6), (1, 37, 0.55), (0, 71, 0.35), (1, 89, 0.3)):
            taps.append((ch, int(ms * sr / 1000), room * g))
        for ch, delay, gain in taps:
            if 0 < delay < len(send) and gain > 0:
                stereo[ch, delay:] += np.float32(gain) * send[:-delay]
