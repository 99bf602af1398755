"""transcode_ladder()/transcode_one(): streaming renditions, one decode for the whole ladder."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import mutagen

from ._errors import MediaError
from ._run import SAFE_INPUT_OPTIONS, Deadline, file_url, run_tool

# codec -> (container, content type, bitrate range in kb/s). 0..0 means lossless.
_CODECS: Final[dict[str, tuple[str, str, int, int]]] = {
    "aac": ("m4a", "audio/mp4", 32, 512),
    "opus": ("ogg", "audio/ogg", 6, 510),
    "mp3": ("mp3", "audio/mpeg", 32, 320),  # on demand, for clients that play nothing else
    "flac": ("flac", "audio/flac", 0, 0),
}

# ffmpeg's native AAC encoder with its default "twoloop" coder runs at ~20-25x real time per core
# at 96/160 kb/s on a music-like signal (AMD EPYC, ffmpeg 5.1), under our 30x budget; the "fast"
# coder runs ~50x with the same bitrates and AAC-LC output. bench/transcode.py measures both.
_AAC_CODER: Final = "fast"
AAC_CODERS: Final = ("fast", "twoloop")  # operators trade speed for quality with Settings.aac_coder


@dataclass(frozen=True, slots=True)
class RenditionSpec:
    """One rung of the streaming ladder. Invalid combinations raise ValueError at construction."""

    codec: str  # "aac" | "opus" | "mp3" | "flac"
    bitrate_kbps: int  # 0 for lossless
    container: str  # "m4a" | "ogg" | "mp3" | "flac"

    def __post_init__(self) -> None:
        if self.codec not in _CODECS:
            raise ValueError(f"unsupported rendition codec {self.codec!r}")
        container, _, low, high = _CODECS[self.codec]
        if self.container != container:
            raise ValueError(f"{self.codec} renditions go in {container!r}, not {self.container!r}")
        if not low <= self.bitrate_kbps <= high:
            raise ValueError(f"{self.codec} bitrate must be in {low}..{high} kb/s, not {self.bitrate_kbps}")

    @property
    def name(self) -> str:
        """Stable identifier and file stem: "aac_160", "opus_96"; lossless is just "flac"."""
        return self.codec if self.bitrate_kbps == 0 else f"{self.codec}_{self.bitrate_kbps}"

    @property
    def content_type(self) -> str:
        return _CODECS[self.codec][1]

    @property
    def filename(self) -> str:
        return f"{self.name}.{self.container}"


LADDER: Final[tuple[RenditionSpec, ...]] = (
    RenditionSpec("aac", 96, "m4a"),
    RenditionSpec("aac", 160, "m4a"),
    RenditionSpec("aac", 320, "m4a"),
)


@dataclass(frozen=True, slots=True)
class RenditionFile:
    """A finished, verified rendition on disk."""

    spec: RenditionSpec
    path: Path
    size_bytes: int
    duration_s: float


def transcode_ladder(
    src: Path,
    out_dir: Path,
    ladder: Sequence[RenditionSpec] = LADDER,
    *,
    threads: int = 1,
    aac_coder: str = _AAC_CODER,
    timeout_s: float = 600.0,
) -> list[RenditionFile]:
    """Encode every rung of `ladder` from `src` into `out_dir` with ONE ffmpeg process.

    MUST decode the source once, write `out_dir/<spec.name>.<container>` for each rung (names come
    from the spec, never from user input; existing files are replaced atomically), take only the
    first audio stream, drop all metadata, chapters and pictures, and output stereo at 44.1 kHz
    (44.1 kHz-family sources) or 48 kHz (others, and always for Opus). AAC is AAC-LC in MP4 with
    the index up front (+faststart). Each output is verified with ffprobe (codec, non-empty,
    duration). Returns the files in ladder order.

    Raises MediaError("tool_failed") when ffmpeg fails or an output does not verify, and
    MediaError("timeout") when the whole job (encode and verification) exceeds `timeout_s`; no
    partial or temporary output is left behind.
    ValueError for an empty ladder, duplicate rungs, or threads < 1 (programming errors).
    """
    src = Path(src)
    out_dir = Path(out_dir)
    if not ladder:
        raise ValueError("the ladder is empty")
    if len({spec.name for spec in ladder}) != len(ladder):
        raise ValueError("the ladder contains the same rendition twice")
    out_dir.mkdir(parents=True, exist_ok=True)
    return _encode(src, [(spec, out_dir / spec.filename) for spec in ladder], threads, timeout_s, aac_coder)


def transcode_one(
    src: Path,
    dst: Path,
    spec: RenditionSpec,
    *,
    threads: int = 1,
    aac_coder: str = _AAC_CODER,
    timeout_s: float = 600.0,
) -> RenditionFile:
    """Encode one rendition of `src` to exactly `dst` (on-demand renditions).

    Same guarantees and errors as transcode_ladder(); `dst` is written atomically (via a
    temporary file in the same directory) and its parent directory must exist.
    """
    return _encode(Path(src), [(spec, Path(dst))], threads, timeout_s, aac_coder)[0]


def _encode(
    src: Path,
    outputs: list[tuple[RenditionSpec, Path]],
    threads: int,
    timeout_s: float,
    aac_coder: str = _AAC_CODER,
) -> list[RenditionFile]:
    if threads < 1:
        raise ValueError("threads must be >= 1")
    deadline = Deadline(timeout_s)
    source_rate = _source_sample_rate(src, deadline)
    # Temporary names next to the final ones: os.replace() is then atomic, and a crash leaves
    # only dot-files that never collide with a real rendition name.
    token = secrets.token_hex(4)
    temps = [dst.with_name(f".{dst.name}.{token}.part") for _, dst in outputs]
    args = [
        "ffmpeg",
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",  # the temporary names are fresh; -y only avoids a prompt on a token collision
        "-filter_threads",
        str(threads),
        "-threads",
        str(threads),
        *SAFE_INPUT_OPTIONS,
        "-i",
        file_url(src),
    ]
    for (spec, _), temp in zip(outputs, temps, strict=True):
        args += _output_args(spec, source_rate, threads, aac_coder)
        args.append(file_url(temp))
    try:
        result = run_tool(args, deadline=deadline, what="transcode", paths=[src, *temps])
        if result.returncode != 0:
            raise MediaError("tool_failed", f"ffmpeg failed to transcode: {result.stderr or 'no output'}")
        files = []
        for (spec, dst), temp in zip(outputs, temps, strict=True):
            size, duration = _verify(temp, spec, deadline)
            files.append(RenditionFile(spec=spec, path=dst, size_bytes=size, duration_s=duration))
        for (_, dst), temp in zip(outputs, temps, strict=True):
            os.replace(temp, dst)
        return files
    finally:
        for temp in temps:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()


def _output_args(
    spec: RenditionSpec, source_rate: int, threads: int, aac_coder: str = _AAC_CODER
) -> list[str]:
    if aac_coder not in AAC_CODERS:
        raise ValueError(f"aac_coder must be one of {AAC_CODERS}")
    # 44.1 kHz-family sources stay in their family (no 44.1 -> 48 resampling); everything else,
    # unknown rates, and Opus (which is 48 kHz internally) get 48 kHz.
    family_44k = source_rate > 0 and source_rate % 11025 == 0
    rate = 44100 if family_44k and spec.codec != "opus" else 48000
    args = [
        "-map",
        "0:a:0",
        "-vn",
        "-sn",
        "-dn",
        "-map_metadata",
        "-1",
        "-map_chapters",
        "-1",
        "-ac",
        "2",
        "-ar",
        str(rate),
        "-threads",
        str(threads),
    ]
    if spec.codec == "aac":
        args += ["-c:a", "aac", "-profile:a", "aac_low", "-aac_coder", aac_coder]
        args += ["-b:a", f"{spec.bitrate_kbps}k", "-movflags", "+faststart", "-f", "mp4"]
    elif spec.codec == "mp3":
        args += ["-c:a", "libmp3lame", "-b:a", f"{spec.bitrate_kbps}k", "-write_xing", "1", "-f", "mp3"]
    elif spec.codec == "opus":
        args += ["-c:a", "libopus", "-b:a", f"{spec.bitrate_kbps}k", "-vbr", "on", "-f", "ogg"]
    else:
        args += ["-c:a", "flac", "-compression_level", "5", "-f", "flac"]
    # Encoder/version strings are metadata too; bitexact keeps outputs reproducible.
    return [*args, "-fflags", "+bitexact", "-flags:a", "+bitexact"]


def _source_sample_rate(src: Path, deadline: Deadline) -> int:
    result = _ffprobe(src, "stream=sample_rate", deadline)
    streams = result.get("streams") or [{}]
    try:
        return int(streams[0].get("sample_rate", 0))
    except (TypeError, ValueError):
        return 0


def _verify(path: Path, spec: RenditionSpec, deadline: Deadline) -> tuple[int, float]:
    """Checks an output's container, codec and duration by parsing it in-process with mutagen:
    an ffprobe process per rung cost more than encoding a short track."""
    size = path.stat().st_size if path.exists() else 0
    if size == 0:
        raise MediaError("tool_failed", f"ffmpeg wrote no {spec.name} output")
    try:
        parsed = mutagen.File(path)
    except Exception:
        parsed = None
    kind = type(parsed).__name__
    codec = {"MP4": "aac", "OggOpus": "opus", "FLAC": "flac", "MP3": "mp3"}.get(kind)
    if kind == "MP4" and not str(getattr(parsed.info, "codec", "")).startswith("mp4a"):
        codec = None
    duration = float(getattr(getattr(parsed, "info", None), "length", 0.0) or 0.0)
    if codec != spec.codec or not duration > 0:
        raise MediaError(
            "tool_failed", f"the {spec.name} output does not verify (codec {codec}, {duration} s)"
        )
    return size, duration


def _ffprobe(path: Path, entries: str, deadline: Deadline) -> dict[str, Any]:
    args = ["ffprobe", "-v", "error", *SAFE_INPUT_OPTIONS, "-of", "json", "-show_entries", entries]
    args += ["-select_streams", "a:0", file_url(path)]
    result = run_tool(args, deadline=deadline, what="ffprobe", paths=[path])
    if result.returncode != 0:
        raise MediaError("tool_failed", f"ffprobe cannot read {path.name}: {result.stderr or 'no output'}")
    try:
        parsed = json.loads(result.stdout)
    except ValueError:
        raise MediaError("tool_failed", "ffprobe printed invalid JSON") from None
    return parsed if isinstance(parsed, dict) else {}
