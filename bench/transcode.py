"""Transcode speed: the streaming ladder in x real time per core, on this machine.

    .venv/bin/python bench/transcode.py [--seconds 180] [--compare-twoloop]

Synthesizes a music-like track (tones with tremolo/vibrato over stereo pink noise, 44.1 kHz
stereo FLAC), then times transcode_ladder(threads=1) and each rung alone via transcode_one().
"x real time per core" = audio seconds encoded / CPU seconds spent by the child processes
(ffmpeg + the ffprobe verification), so a busy machine does not distort it the way wall time
does. Target: >= 30x per core per rendition.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tonearm.media import LADDER, measure_loudness, probe, transcode_ladder, transcode_one

TARGET_X = 30.0


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, check=True).stdout
    return (
        f"nproc {usable} (of {os.cpu_count()}), CPU {cpu}, load average {load}\n"
        f"{version.splitlines()[0]}\nPython {sys.version.split()[0]}"
    )


def make_track(path: Path, seconds: int) -> None:
    tone = f"r=44100:d={seconds}"
    noise = f"d={seconds}:c=pink:a=0.03:r=44100"
    subprocess.run(
        [
            "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"sine=f=110:{tone},tremolo=f=0.5:d=0.4",
            "-f", "lavfi", "-i", f"sine=f=220:{tone},vibrato=f=4:d=0.3",
            "-f", "lavfi", "-i", f"sine=f=330:{tone},tremolo=f=2:d=0.9",
            "-f", "lavfi", "-i", f"sine=f=1760:{tone},tremolo=f=8:d=1",
            "-f", "lavfi", "-i", f"anoisesrc={noise}:seed=1",
            "-f", "lavfi", "-i", f"anoisesrc={noise}:seed=2",
            "-filter_complex",
            "[0][1][2][3]amix=inputs=4:normalize=0,volume=2,pan=stereo|c0=c0|c1=c0[t];"
            "[4][5]amerge=inputs=2[n];[t][n]amix=inputs=2:normalize=0",
            "-c:a", "flac", str(path),
        ],
        check=True,
    )  # fmt: skip


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of all child processes) spent in fn()."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    fn()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def row(label: str, audio_s: float, wall: float, cpu: float, *, judged: bool = True) -> str:
    per_core = audio_s / cpu if cpu > 0 else float("inf")
    verdict = ("ok" if per_core >= TARGET_X else "BELOW TARGET") if judged else ""
    return (
        f"{label:<40} {per_core:7.1f}x per core  {audio_s / wall:7.1f}x wall  "
        f"cpu {cpu:6.2f}s  wall {wall:6.2f}s  {verdict}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=180, help="length of the test track")
    parser.add_argument(
        "--compare-twoloop",
        action="store_true",
        help="also time plain ffmpeg with the AAC encoder's default (slower) twoloop coder",
    )
    args = parser.parse_args()

    print(machine())
    with tempfile.TemporaryDirectory(prefix="tonearm-bench-") as tmp:
        root = Path(tmp)
        src = root / "track.flac"
        make_track(src, args.seconds)
        info = probe(src)
        duration = info.duration_s
        print(f"source: {duration:.1f} s {info.codec} {info.sample_rate} Hz {info.channels} ch\n")

        print(row("probe()", duration, *timed(lambda: probe(src)), judged=False))
        print(row("measure_loudness()", duration, *timed(lambda: measure_loudness(src)), judged=False))
        decode = ["ffmpeg", "-nostdin", "-loglevel", "error", "-threads", "1", "-i", str(src)]
        decode += ["-f", "null", "-"]
        wall, cpu = timed(lambda: subprocess.run(decode, check=True))
        print(row("decode only (ffmpeg -f null)", duration, wall, cpu, judged=False))
        print()

        ladder_dir = root / "ladder"
        files: list[object] = []
        wall, cpu = timed(lambda: files.extend(transcode_ladder(src, ladder_dir, LADDER, threads=1)))
        names = "+".join(spec.name for spec in LADDER)
        print(row(f"ladder {names} (whole)", duration, wall, cpu, judged=False))
        print(row("ladder, per rendition", duration * len(LADDER), wall, cpu))
        for spec in LADDER:
            dst = root / f"one_{spec.name}.m4a"
            wall, cpu = timed(lambda spec=spec, dst=dst: transcode_one(src, dst, spec))
            print(row(f"{spec.name} alone", duration, wall, cpu))
            kbps = dst.stat().st_size * 8 / duration / 1000
            print(f"{'':<40} -> {kbps:.0f} kb/s, {dst.stat().st_size / 1e6:.1f} MB")

        if args.compare_twoloop:
            print("\nreference: ffmpeg's default AAC coder (twoloop), not used by tonearm.media")
            for spec in LADDER:
                cmd = [
                    "ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-threads", "1", "-i", str(src),
                    "-vn", "-ac", "2", "-ar", "44100", "-threads", "1",
                    "-c:a", "aac", "-aac_coder", "twoloop", "-b:a", f"{spec.bitrate_kbps}k",
                    "-f", "mp4", str(root / "twoloop.m4a"),
                ]  # fmt: skip
                wall, cpu = timed(lambda cmd=cmd: subprocess.run(cmd, check=True))
                print(row(f"{spec.name} twoloop", duration, wall, cpu, judged=False))


if __name__ == "__main__":
    main()
