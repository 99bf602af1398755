"""Helpers shared by the tests: settings for a test container and real audio made with ffmpeg."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tonearm.config import Settings


def make_settings(tmp_path: Path, db_url: str, **kw: object) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=db_url,
        secret_key="test-secret-" + "x" * 32,
        public_url="http://testserver",
        inprocess_workers=0,
        log_json=False,
        **kw,  # type: ignore[arg-type]
    )


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def make_tone(
    path: Path,
    *,
    seconds: float = 3.0,
    freq: int = 440,
    tags: dict[str, str] | None = None,
    noise: bool = False,
) -> Path:
    """A real audio file (format from the suffix) with a chord-ish tone and optional tags; with
    `noise`, pink noise underneath so encoders spend bits as they do on music."""
    meta: list[str] = []
    for k, v in (tags or {}).items():
        meta += ["-metadata", f"{k}={v}"]
    extra = ["-f", "lavfi", "-i", f"anoisesrc=color=pink:amplitude=0.3:duration={seconds}"] if noise else []
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency={freq}:duration={seconds}",
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency={freq * 3 // 2}:duration={seconds}",
        *extra,
        "-filter_complex",
        f"amix=inputs={3 if noise else 2}",
        "-ac",
        "2",
        *meta,
        str(path),
    )
    return path
