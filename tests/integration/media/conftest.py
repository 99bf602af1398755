"""Sample media for the tonearm.media tests, generated once per session with real ffmpeg."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest


def music_filter(duration_s: float, rate: int) -> list[str]:
    """ffmpeg arguments synthesizing a music-like stereo signal: tones with tremolo/vibrato over
    stereo pink noise. Pure sines compress to almost nothing, so bitrate checks need this."""
    tone = f"r={rate}:d={duration_s}"
    noise = f"d={duration_s}:c=pink:a=0.03:r={rate}"
    return [
        "-f", "lavfi", "-i", f"sine=f=110:{tone},tremolo=f=0.5:d=0.4",
        "-f", "lavfi", "-i", f"sine=f=220:{tone},vibrato=f=4:d=0.3",
        "-f", "lavfi", "-i", f"sine=f=330:{tone},tremolo=f=2:d=0.9",
        "-f", "lavfi", "-i", f"sine=f=1760:{tone},tremolo=f=8:d=1",
        "-f", "lavfi", "-i", f"anoisesrc={noise}:seed=1",
        "-f", "lavfi", "-i", f"anoisesrc={noise}:seed=2",
        "-filter_complex",
        "[0][1][2][3]amix=inputs=4:normalize=0,volume=2,pan=stereo|c0=c0|c1=c0[t];"
        "[4][5]amerge=inputs=2[n];[t][n]amix=inputs=2:normalize=0",
    ]  # fmt: skip


def ffmpeg(*args: str) -> None:
    proc = subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
        check=False,
        capture_output=True,
    )
    if proc.returncode != 0:
        pytest.fail(f"ffmpeg {' '.join(args)} failed: {proc.stderr.decode(errors='replace')}")


def _ffprobe_json(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", "-show_format", "-show_streams", f"file:{path}"],
        check=True,
        capture_output=True,
    ).stdout
    result: dict[str, Any] = json.loads(out)
    return result


@pytest.fixture(scope="session")
def ffprobe_json() -> Callable[[Path], dict[str, Any]]:
    """Independent ffprobe of a file (format + streams as JSON), to check outputs with."""
    return _ffprobe_json


def sine(duration_s: float, rate: int = 44100, freq: int = 440) -> list[str]:
    return ["-f", "lavfi", "-i", f"sine=f={freq}:d={duration_s}:sample_rate={rate}"]


@pytest.fixture(scope="session")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every sample file the media tests read; tests that modify a file copy it first."""
    d = tmp_path_factory.mktemp("media-samples")
    out: dict[str, Path] = {}
    jobs: list[list[str]] = []

    def make(name: str, *args: str) -> None:
        out[name] = d / name
        jobs.append([*args, str(d / name)])

    stereo = ["-ac", "2"]
    make("tone.mp3", *sine(3), *stereo, "-c:a", "libmp3lame", "-b:a", "128k")
    make("tone.flac", *sine(3), *stereo, "-c:a", "flac")
    make("tone.ogg", *sine(3), *stereo, "-c:a", "libvorbis", "-q:a", "3")
    make("tone.opus", *sine(3, 48000), *stereo, "-c:a", "libopus", "-b:a", "64k")
    make("tone.m4a", *sine(3), *stereo, "-c:a", "aac", "-b:a", "128k")
    make("tone_alac.m4a", *sine(3), *stereo, "-c:a", "alac")
    make("tone.wav", *sine(3), *stereo, "-c:a", "pcm_s16le")
    make("long.flac", *sine(9), *stereo, "-c:a", "flac")
    make("long.mp3", *sine(9), *stereo, "-c:a", "libmp3lame", "-b:a", "128k")
    # CBR without the Xing/LAME header: its duration is estimated from the file size.
    make("long_noxing.mp3", *sine(9), *stereo, "-c:a", "libmp3lame", "-b:a", "128k", "-write_xing", "0")
    make("short.wav", *sine(0.3), "-c:a", "pcm_s16le")
    make("adts.aac", *sine(3), "-c:a", "aac", "-f", "adts")
    make("tone.mka", *sine(3), "-c:a", "flac")
    make("flac_in.ogg", *sine(3), "-c:a", "flac", "-f", "ogg")
    ten = "|".join(["0.1*sin(2*PI*440*t)"] * 10)
    make("tenchannels.wav", "-f", "lavfi", "-i", f"aevalsrc={ten}:s=8000:d=1", "-c:a", "pcm_s16le")
    # Loudness references: 997 Hz at -20 dBFS peak (amplitude 0.1), mono and identical stereo.
    # ffmpeg's sine source has amplitude 1/8; volume=0.8 makes it exactly 0.1 (-20 dBFS).
    ref = ["-f", "lavfi", "-i", "sine=f=997:r=48000:d=5,volume=0.8", "-c:a", "pcm_s24le"]
    make("sine-20.wav", *ref)
    # pan copies the channel; -ac 2 would spread it at -3 dB per side (constant power).
    make("sine-20-stereo.wav", *ref, "-af", "pan=stereo|c0=c0|c1=c0")
    make("silence.flac", "-f", "lavfi", "-i", "anullsrc=r=44100:cl=stereo", "-t", "3", "-c:a", "flac")
    make("music.flac", *music_filter(6, 44100), "-c:a", "flac")
    make("music48.wav", *music_filter(2, 48000), "-c:a", "pcm_s16le")
    # ffmpeg start-up dominates these tiny encodes; running them side by side halves the setup.
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        list(pool.map(lambda job: ffmpeg(*job), jobs))
    return out


@pytest.fixture
def copy_sample(samples: dict[str, Path], tmp_path: Path) -> Callable[[str, str], Path]:
    """Copy a session sample into the test's own tmp_path (optionally under another name)."""

    def copy(name: str, as_name: str = "") -> Path:
        dst = tmp_path / (as_name or name)
        dst.write_bytes(samples[name].read_bytes())
        return dst

    return copy
