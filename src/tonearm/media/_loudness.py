"""measure_loudness(): EBU R128 integrated loudness, true peak and loudness range via ffmpeg."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ._errors import MediaError
from ._run import SAFE_INPUT_OPTIONS, Deadline, file_url, run_tool

# ebur128 reports silence as -70 LUFS (its absolute gate) and the peak of silence as -inf; a
# float -inf breaks JSON and replay-gain arithmetic downstream, so both are floored here.
FLOOR_DB: Final = -70.0

_SUMMARY_MARK: Final = "] Summary:"
_I_RE: Final = re.compile(r"^\s*I:\s+(\S+)\s+LUFS", re.MULTILINE)
_LRA_RE: Final = re.compile(r"^\s*LRA:\s+(\S+)\s+LU\b", re.MULTILINE)
_PEAK_RE: Final = re.compile(r"^\s*Peak:\s+(\S+)\s+dBFS", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Loudness:
    """EBU R128 / ITU-R BS.1770-4 measurements of a whole track."""

    integrated_lufs: float
    true_peak_dbtp: float
    loudness_range_lu: float


def measure_loudness(path: Path, *, timeout_s: float = 300.0) -> Loudness:
    """Measure integrated loudness (LUFS), true peak (dBTP) and loudness range (LU) of `path`.

    MUST decode the whole first audio stream with ffmpeg's ebur128 filter (true-peak mode) and
    parse its summary; values below -70 (including -inf for silence) are clamped to -70.0.
    The file should have passed probe() first.

    Raises MediaError("timeout") after `timeout_s`, and MediaError("tool_failed") when ffmpeg
    fails or prints no parsable summary (the message carries ffmpeg's trimmed stderr).
    """
    path = Path(path)
    result = run_tool(
        [
            "ffmpeg",
            "-nostdin",
            "-hide_banner",
            "-nostats",
            # The summary is logged at "info"; framelog=verbose keeps the 10-per-second frame
            # lines out of it so stderr stays small even for a 4-hour file.
            "-loglevel",
            "info",
            "-threads",
            "1",
            *SAFE_INPUT_OPTIONS,
            "-i",
            file_url(path),
            "-map",
            "0:a:0",
            "-vn",
            "-sn",
            "-dn",
            "-af",
            "ebur128=peak=true:framelog=verbose",
            "-f",
            "null",
            "-",
        ],
        deadline=Deadline(timeout_s),
        what="loudness measurement",
        paths=[path],
    )
    if result.returncode != 0:
        raise MediaError("tool_failed", f"loudness measurement failed: {result.stderr or 'no output'}")
    return _parse_summary(result.full_stderr)


def _parse_summary(stderr: str) -> Loudness:
    # Use the LAST summary: input metadata (user-controlled tags) is printed before it and could
    # contain a fake one.
    _, mark, summary = stderr.rpartition(_SUMMARY_MARK)
    integrated = _I_RE.search(summary)
    lra = _LRA_RE.search(summary)
    peak = _PEAK_RE.search(summary)
    if not mark or integrated is None or lra is None or peak is None:
        raise MediaError("tool_failed", "ffmpeg printed no EBU R128 summary")
    return Loudness(
        integrated_lufs=_db(integrated.group(1)),
        true_peak_dbtp=_db(peak.group(1)),
        loudness_range_lu=max(0.0, _finite(lra.group(1), 0.0)),
    )


def _db(text: str) -> float:
    return max(FLOOR_DB, _finite(text, FLOOR_DB))


def _finite(text: str, default: float) -> float:
    try:
        value = float(text)
    except ValueError:
        return default
    return value if math.isfinite(value) else default
