"""A hash of the decoded audio, so the same recording re-tagged or re-wrapped is found as a duplicate."""

from __future__ import annotations

import subprocess
from pathlib import Path


def audio_hash(path: Path, *, timeout_s: float = 300.0) -> str | None:
    """SHA-256 of the first audio stream decoded to 44.1 kHz stereo s16, or None if ffmpeg fails."""
    try:
        proc = subprocess.run(
            [
                "ffmpeg",
                "-nostdin",
                "-hide_banner",
                "-loglevel",
                "error",
                "-threads",
                "1",
                "-i",
                f"file:{path.resolve()}",
                "-map",
                "0:a:0",
                "-ac",
                "2",
                "-ar",
                "44100",
                "-f",
                "hash",
                "-hash",
                "sha256",
                "-",
            ],
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None
    out = proc.stdout.decode(errors="replace").strip()
    if proc.returncode != 0 or not out.startswith("SHA256="):
        return None
    return out.split("=", 1)[1]
