"""Audio from an offset on, for a player seeking in a stream it cannot range over (Subsonic's
`timeOffset`): ffmpeg copies the encoded audio from there without re-encoding it (a codec with no
raw container of its own, an ALAC or PCM original, is re-encoded to FLAC), into a pipe."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from ._run import _DIE_WITH_PARENT, SAFE_INPUT_OPTIONS, file_url

# The codec's raw container and what it is served as.
COPY_MUXERS: dict[str, tuple[str, str]] = {
    "aac": ("adts", "audio/aac"),
    "mp3": ("mp3", "audio/mpeg"),
    "opus": ("ogg", "audio/ogg"),
    "vorbis": ("ogg", "audio/ogg"),
    "flac": ("flac", "audio/flac"),
}


@dataclass(frozen=True, slots=True)
class Cut:
    """A running ffmpeg writing the audio to `process.stdout`. The caller MUST kill and wait for
    the process when it stops reading (ffmpeg dies with its parent, but not with a request)."""

    process: subprocess.Popen[bytes]
    content_type: str


def cut_from(path: Path, offset_s: float, codec: str) -> Cut:
    """The audio of the local file `path` (encoded with `codec`) from `offset_s` seconds on.
    `offset_s` is a number the caller has bounded; nothing else from a request reaches ffmpeg."""
    muxer, content_type = COPY_MUXERS.get(codec, ("flac", "audio/flac"))
    codec_args = ["-c:a", "copy"] if codec in COPY_MUXERS else ["-c:a", "flac"]
    args = [
        *_DIE_WITH_PARENT,
        "ffmpeg",
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        *SAFE_INPUT_OPTIONS,
        "-ss",
        f"{float(offset_s):.3f}",
        "-i",
        file_url(path),
        "-map",
        "0:a:0",
        "-vn",
        "-map_metadata",
        "-1",
        *codec_args,
        "-f",
        muxer,
        "pipe:1",
    ]
    process = subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    return Cut(process, content_type)
