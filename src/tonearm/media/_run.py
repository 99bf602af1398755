"""Running ffmpeg/ffprobe: fixed argument lists, no shell, a timeout, stderr captured and trimmed."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ._errors import MediaError

# Only these demuxers may open user files. Probing still looks at every demuxer, but a file that
# sniffs as HLS, concat, image2, ... is refused before it can open other files or URLs.
FORMAT_WHITELIST: Final = "mp3,flac,ogg,mov,wav"
# The `file:` prefix on the path already pins the protocol; this also stops nested opens.
PROTOCOL_WHITELIST: Final = "file"

# Input options shared by every ffmpeg/ffprobe call that reads a user file.
SAFE_INPUT_OPTIONS: Final[tuple[str, ...]] = (
    "-protocol_whitelist",
    PROTOCOL_WHITELIST,
    "-format_whitelist",
    FORMAT_WHITELIST,
)

_STDERR_LIMIT: Final = 600

# If the worker running a tool is killed (SIGKILL, OOM), its ffmpeg must not live on as an orphan
# burning a core on a job that another worker will redo. util-linux's setpriv sets the kernel's
# parent-death signal before exec (Python's preexec_fn is not safe with threads).
# Tools also run at a lower CPU priority (nice 10): transcodes are background work and must not
# slow the requests the same machine is serving.
_SETPRIV: Final = shutil.which("setpriv")
_NICE: Final = shutil.which("nice")
_DIE_WITH_PARENT: Final[tuple[str, ...]] = (
    *((_NICE, "-n", "10") if _NICE else ()),
    *((_SETPRIV, "--pdeathsig", "KILL", "--") if _SETPRIV else ()),
)

# ffmpeg colours its log only on a tty, but be explicit: escape codes in an error message are noise.
_ENV: Final = {**os.environ, "AV_LOG_FORCE_NOCOLOR": "1"}


@dataclass(frozen=True, slots=True)
class ToolResult:
    returncode: int
    stdout: bytes
    stderr: str  # scrubbed of paths, one line, trimmed: fit for an error message
    full_stderr: str  # complete, undecorated: for parsing reports such as ebur128's summary


class Deadline:
    """One time budget shared by every process a public function runs (probe runs two)."""

    __slots__ = ("_end", "total_s")

    def __init__(self, total_s: float) -> None:
        self.total_s = total_s
        self._end = time.monotonic() + total_s

    def remaining(self, what: str) -> float:
        left = self._end - time.monotonic()
        if left <= 0:
            raise MediaError("timeout", f"{what}: the {self.total_s:g} s time budget is used up")
        return left


def file_url(path: Path) -> str:
    """`file:` URL for a local path: ffmpeg must never interpret a user-influenced name as a protocol."""
    return "file:" + os.fspath(path.absolute())


def scrub(text: str, paths: Sequence[Path]) -> str:
    """Remove server paths from tool output and trim it to something a person can read."""
    for path in paths:
        absolute = os.fspath(path.absolute())
        text = text.replace("file:" + absolute, path.name).replace(absolute, path.name)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    text = " | ".join(lines)
    if len(text) > _STDERR_LIMIT:
        # The last lines are where ffmpeg says why it stopped.
        text = "..." + text[-_STDERR_LIMIT:]
    return text


def run_tool(args: Sequence[str], *, deadline: Deadline, what: str, paths: Sequence[Path] = ()) -> ToolResult:
    """Run one ffmpeg/ffprobe process to completion within what is left of `deadline`.

    Raises MediaError("timeout") when the budget runs out (the process is killed), and
    MediaError("tool_failed") when the tool cannot be started. A non-zero exit is NOT raised here:
    callers decide what it means for their input.
    """
    try:
        proc = subprocess.run(
            [*_DIE_WITH_PARENT, *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=deadline.remaining(what),
            env=_ENV,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        detail = scrub((exc.stderr or b"").decode("utf-8", "replace"), paths)
        raise MediaError(
            "timeout",
            f"{what} did not finish within the {deadline.total_s:g} s budget"
            + (f": {detail}" if detail else ""),
        ) from None
    except OSError as exc:
        raise MediaError("tool_failed", f"{what}: cannot run {args[0]}: {exc.strerror or exc}") from None
    full = proc.stderr.decode("utf-8", "replace")
    return ToolResult(proc.returncode, proc.stdout, scrub(full, paths), full)
