"""A hash of the decoded audio, so the same recording re-tagged or re-wrapped is found as a duplicate."""

from __future__ import annotations

from pathlib import Path

from ._run import SAFE_INPUT_OPTIONS, Deadline, file_url, run_tool


def audio_hash(path: Path, *, timeout_s: float = 300.0) -> str | None:
    """SHA-256 of the first audio stream decoded to 44.1 kHz stereo s16, or None if it cannot be
    decoded (the probe has already judged the file; a missing hash only skips this duplicate check)."""
    args = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-threads", "1",
        *SAFE_INPUT_OPTIONS, "-i", file_url(path),
        "-map", "0:a:0", "-ac", "2", "-ar", "44100", "-f", "hash", "-hash", "sha256", "-",
    ]  # fmt: skip
    result = run_tool(args, deadline=Deadline(timeout_s), what="audio hash", paths=[path])
    out = result.stdout.decode(errors="replace").strip()
    if result.returncode != 0 or not out.startswith("SHA256="):
        return None
    return out.split("=", 1)[1]
