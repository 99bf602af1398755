"""probe(): decide by content whether a file is audio we accept, and describe it."""

from __future__ import annotations

import json
import math
import re
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ._errors import MediaError
from ._run import SAFE_INPUT_OPTIONS, Deadline, file_url, run_tool

# ffprobe's format_name -> our short container name. The keys are exactly the demuxers in
# FORMAT_WHITELIST, so nothing else can get here.
_CONTAINERS: Final[dict[str, str]] = {
    "mp3": "mp3",
    "flac": "flac",
    "ogg": "ogg",
    "mov,mp4,m4a,3gp,3g2,mj2": "m4a",
    "wav": "wav",
}

# Linear PCM only in WAV: a-law/mu-law/ADPCM/MP3-in-WAV are legal RIFF but not what people mean
# by a lossless WAV, and every extra decoder is attack surface.
_WAV_CODECS: Final = frozenset({"pcm_u8", "pcm_s16le", "pcm_s24le", "pcm_s32le", "pcm_f32le", "pcm_f64le"})

_CODECS: Final[dict[str, frozenset[str]]] = {
    "mp3": frozenset({"mp3"}),
    "flac": frozenset({"flac"}),
    "ogg": frozenset({"vorbis", "opus"}),
    "m4a": frozenset({"aac", "alac"}),
    "wav": _WAV_CODECS,
}

_LOSSLESS: Final = frozenset({"flac", "alac", "wavpack", "ape", "tta", "mlp", "truehd"})

# Decompression-bomb guards: a small file may declare parameters whose decoded PCM is enormous.
MAX_CHANNELS: Final = 8
MAX_SAMPLE_RATE: Final = 384_000

# The decode checks resample to this so their output stays tiny whatever the source is.
_CHECK_RATE: Final = 8000
_CHECK_BYTES_PER_S: Final = _CHECK_RATE * 2  # mono s16
_HEAD_S: Final = 2.0

_WHITELIST_RE: Final = re.compile(r"\[([\w,]+) @ [^\]]*\] Format not on whitelist")


@dataclass(frozen=True, slots=True)
class AudioProbe:
    """What probe() found out about an accepted audio file."""

    format_name: str  # ffprobe's format_name, e.g. "mp3", "mov,mp4,m4a,3gp,3g2,mj2"
    codec: str  # ffprobe's codec_name, e.g. "mp3", "flac", "opus", "aac", "pcm_s16le"
    duration_s: float
    sample_rate: int
    channels: int
    bit_rate: int | None  # bits/s
    lossless: bool
    container: str  # "mp3" | "flac" | "ogg" | "m4a" | "wav"


def probe(
    path: Path,
    *,
    max_duration_s: float = 4 * 3600,
    min_duration_s: float = 0.5,
    timeout_s: float = 30.0,
) -> AudioProbe:
    """Identify `path` by its content and verify that it is playable audio we accept.

    MUST decide by content only (the file name and extension are ignored), accept only the
    allow-list (MP3; FLAC; Ogg Vorbis/Opus; MP4/M4A AAC/ALAC; WAV linear PCM), decode the first
    ~2 s, and check that audio really exists near the declared end (a truncated file whose header
    still declares the full length is refused). Only the first audio stream is described; other
    streams (cover art, or even video in an MP4) are ignored, as every consumer maps 0:a:0.

    Raises MediaError with code:
      "empty"       the file has 0 bytes;
      "not_audio"   the content is not an accepted container/codec (image, text, video-only, ...);
      "corrupt"     it looks like an accepted container but cannot be read, decoded, or does not
                    contain the audio its header declares;
      "too_large"   absurd stream parameters (> 8 channels, > 384 kHz): a decompression bomb;
      "too_long" / "too_short"  the duration is outside [min_duration_s, max_duration_s];
      "timeout"     probing took longer than `timeout_s` in total;
      "tool_failed" ffprobe/ffmpeg could not be run.
    OSError (e.g. FileNotFoundError) propagates: a missing file is the caller's bug, not bad input.
    """
    path = Path(path)
    deadline = Deadline(timeout_s)
    info_stat = path.stat()
    # A FIFO or device would make ffprobe block or read forever; a symlink to one is followed.
    if not stat.S_ISREG(info_stat.st_mode):
        raise MediaError("not_audio", "not a regular file")
    if info_stat.st_size == 0:
        raise MediaError("empty", "the file is empty (0 bytes)")
    with path.open("rb") as fh:
        head = fh.read(16)

    result = run_tool(
        [
            "ffprobe",
            "-v",
            "error",
            *SAFE_INPUT_OPTIONS,
            "-of",
            "json",
            "-show_format",
            "-show_streams",
            file_url(path),
        ],
        deadline=deadline,
        what="ffprobe",
        paths=[path],
    )
    if result.returncode != 0:
        refused = _WHITELIST_RE.search(result.stderr)
        if refused:
            raise MediaError("not_audio", f"unsupported container {refused.group(1)!r}")
        if _looks_like_audio_container(head):
            raise MediaError("corrupt", f"the file looks like audio but cannot be read: {result.stderr}")
        raise MediaError("not_audio", f"not a recognized audio file: {result.stderr}")

    info = _parse_json(result.stdout)
    fmt = info.get("format")
    streams = info.get("streams")
    if not isinstance(fmt, dict) or not isinstance(streams, list):
        raise MediaError("tool_failed", "ffprobe returned no format/stream information")
    format_name = str(fmt.get("format_name", ""))
    container = _CONTAINERS.get(format_name)
    if container is None:  # unreachable while FORMAT_WHITELIST and _CONTAINERS agree
        raise MediaError("not_audio", f"unsupported container {format_name!r}")

    audio = next((s for s in streams if isinstance(s, dict) and s.get("codec_type") == "audio"), None)
    if audio is None:
        raise MediaError("not_audio", f"the {container} file contains no audio stream")
    codec = str(audio.get("codec_name") or "")
    if codec not in _CODECS[container]:
        allowed = ", ".join(sorted(_CODECS[container]))
        raise MediaError(
            "not_audio", f"codec {codec or 'unknown'!r} is not accepted in {container} (allowed: {allowed})"
        )

    sample_rate = _int(audio.get("sample_rate")) or 0
    channels = _int(audio.get("channels")) or 0
    declared = _float(fmt.get("duration"))
    if declared is None:
        declared = _float(audio.get("duration"))
    looks_like_audio = _looks_like_audio_container(head)
    try:
        duration = _check_parameters(codec, sample_rate, channels, declared)
        if looks_like_audio:
            # Cheap limits first so an over-long upload is refused before any decoding.
            _check_limits(duration, min_duration_s, max_duration_s)
            _check_decodes(path, duration, deadline)
        else:
            # ffmpeg's MP3 probe finds "frames" in random data at a low score: for a file without
            # any container magic, decoding decides, and failing it means this is not audio.
            _check_decodes(path, duration, deadline)
            _check_limits(duration, min_duration_s, max_duration_s)
    except MediaError as exc:
        if looks_like_audio or exc.code not in ("corrupt", "too_large"):
            raise
        raise MediaError("not_audio", f"not a recognized audio file ({exc})") from None

    return AudioProbe(
        format_name=format_name,
        codec=codec,
        duration_s=duration,
        sample_rate=sample_rate,
        channels=channels,
        bit_rate=_positive(_int(audio.get("bit_rate"))) or _positive(_int(fmt.get("bit_rate"))),
        lossless=codec in _LOSSLESS or codec.startswith("pcm_"),
        container=container,
    )


def _check_parameters(codec: str, sample_rate: int, channels: int, duration: float | None) -> float:
    """Sanity and decompression-bomb checks on the declared stream; returns the duration."""
    if sample_rate <= 0 or channels <= 0:
        raise MediaError("corrupt", f"the {codec} stream declares no valid sample rate or channel count")
    if channels > MAX_CHANNELS:
        raise MediaError("too_large", f"{channels} channels is more than the {MAX_CHANNELS} accepted")
    if sample_rate > MAX_SAMPLE_RATE:
        raise MediaError("too_large", f"{sample_rate} Hz is above the {MAX_SAMPLE_RATE} Hz accepted")
    if duration is None or duration <= 0:
        raise MediaError("corrupt", "the file declares no duration")
    return duration


def _check_limits(duration: float, min_duration_s: float, max_duration_s: float) -> None:
    if duration > max_duration_s:
        raise MediaError("too_long", f"duration {duration:.1f} s is over the {max_duration_s:g} s limit")
    if duration < min_duration_s:
        raise MediaError("too_short", f"duration {duration:.2f} s is under the {min_duration_s:g} s minimum")


def _check_decodes(path: Path, duration: float, deadline: Deadline) -> None:
    """Decode the head and the tail in ONE ffmpeg process, downmixed to 8 kHz mono so it is cheap.

    The head proves the codec data is real; the tail proves the declared duration is plausible:
    a truncated FLAC (or MP3 with a Xing header) still declares its full length, and seeking near
    that end then yields nothing. The tail window grows with the length (3 % + 1 s, at most 30 s)
    so an estimated duration (CBR-guessed MP3) that is slightly off is not called corrupt.
    """
    head_s = min(_HEAD_S, duration)
    window = min(30.0, 1.0 + 0.03 * duration)
    tail_start = max(0.0, duration - window)
    url = file_url(path)
    with tempfile.TemporaryDirectory(prefix="tonearm-probe-") as tmp:
        head_out = Path(tmp) / "head.raw"
        tail_out = Path(tmp) / "tail.raw"
        pcm = ("-vn", "-sn", "-dn", "-ac", "1", "-ar", str(_CHECK_RATE), "-c:a", "pcm_s16le", "-f", "s16le")
        result = run_tool(
            [
                "ffmpeg",
                "-nostdin",
                "-hide_banner",
                "-loglevel",
                "error",
                "-threads",
                "1",
                *SAFE_INPUT_OPTIONS,
                "-t",
                f"{head_s:.3f}",
                "-i",
                url,
                *SAFE_INPUT_OPTIONS,
                "-ss",
                f"{tail_start:.3f}",
                "-t",
                f"{window + 1.0:.3f}",
                "-i",
                url,
                "-map",
                "0:a:0",
                *pcm,
                "-y",
                file_url(head_out),
                "-map",
                "1:a:0",
                *pcm,
                "-y",
                file_url(tail_out),
            ],
            deadline=deadline,
            what="decode check",
            paths=[path, head_out, tail_out],
        )
        head_bytes = head_out.stat().st_size if head_out.exists() else 0
        tail_bytes = tail_out.stat().st_size if tail_out.exists() else 0

    if result.returncode != 0:
        raise MediaError("corrupt", f"the audio cannot be decoded: {result.stderr}")
    # Decoders drop frames they cannot decode, so a damaged start shows up as missing output; the
    # 0.1 s slack absorbs encoder delay/padding trimming. "#0:" errors come from the head input
    # only (the tail may legitimately land mid-frame after seeking).
    head_decoded = head_bytes / _CHECK_BYTES_PER_S
    if head_decoded < 0.9 * head_s - 0.1 or "Error while decoding stream #0:" in result.stderr:
        detail = f": {result.stderr}" if result.stderr else ""
        raise MediaError(
            "corrupt",
            f"only {head_decoded:.2f} s of the first {head_s:.2f} s could be decoded{detail}",
        )
    tail_decoded = tail_bytes / _CHECK_BYTES_PER_S
    if tail_decoded < min(0.25, window / 4):
        raise MediaError(
            "corrupt",
            f"the file declares {duration:.2f} s but has no audio after {tail_start:.2f} s "
            "(truncated or damaged)",
        )


def _looks_like_audio_container(head: bytes) -> bool:
    """Magic bytes of the accepted containers: used only to tell "corrupt" from "not_audio"."""
    return (
        head.startswith((b"fLaC", b"OggS", b"ID3"))
        or head[4:8] == b"ftyp"
        or (head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE")
        # MPEG audio frame sync (11 set bits) with a valid layer: a raw MP3 without ID3.
        or (len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0 and (head[1] & 0x06) != 0)
    )


def _parse_json(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise MediaError("tool_failed", f"ffprobe printed invalid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise MediaError("tool_failed", "ffprobe printed unexpected JSON")
    return value


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _positive(value: int | None) -> int | None:
    return value if value is not None and value > 0 else None


def _float(value: object) -> float | None:
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None
