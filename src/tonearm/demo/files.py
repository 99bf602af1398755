"""Render the demo catalog to tagged audio files on disk.

Each track is synthesized with :func:`tonearm.demo.synth.render`, piped as raw float32 PCM into
``ffmpeg`` (a fixed argument list, never a shell) and encoded to MP3 (libmp3lame, 160 kbit/s:
within the free tier's cap, so every listener can play the originals while the transcode ladder
is still being made) or, for every 10th catalog track, FLAC; then tagged with mutagen (ID3v2.4 or
Vorbis comments) and, for albums that have it, an embedded front cover from
:func:`tonearm.covers.generate_cover`.

Files land at ``out_dir/<Album Artist>/<Album>/<NN> <Title>.<ext>`` (``<D>-<NN> <Title>`` on
multi-disc albums).  A file is written under a temporary name and renamed when complete, so an
interrupted run never leaves a truncated file behind, and files that already exist are skipped:
the whole operation is resumable.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import shutil
import subprocess
import unicodedata
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

import mutagen.flac
import mutagen.id3

from tonearm.covers import generate_cover
from tonearm.demo.catalog import DemoTrack
from tonearm.demo.synth import render

__all__ = ["COVER_SIZE", "SAMPLE_RATE", "is_lossless", "track_path", "write_demo_files"]

SAMPLE_RATE = 44100
COVER_SIZE = 600
MAX_NAME_CHARS = 120
_MAX_NAME_BYTES = 240  # file systems allow 255 bytes per name; leave room for the temporary prefix
_WINDOWS_RESERVED = re.compile(r'[<>:"\\|?*/]')

# mutagen's frame classes and constructors are untyped: bound as Any to keep mypy --strict quiet.
_id3: Any = mutagen.id3
_flac: Any = mutagen.flac


def is_lossless(track: DemoTrack) -> bool:
    """Every 10th catalog track (by the running number at the end of its ISRC) is a FLAC original."""
    tail = track.isrc[-5:]
    return tail.isdigit() and int(tail) % 10 == 0


def sanitize_name(name: str, *, max_chars: int = MAX_NAME_CHARS) -> str:
    """One safe path component: no separators, ``..``, NUL or control characters, bounded length."""
    name = unicodedata.normalize("NFC", name)
    name = "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs") else ch for ch in name)
    name = _WINDOWS_RESERVED.sub("_", name)
    name = re.sub(r"\.{2,}", ".", name)
    name = " ".join(name.split()).strip(" .")
    while len(name) > max_chars or len(name.encode("utf-8")) > _MAX_NAME_BYTES:
        name = name[:-1].rstrip(" .")
    return name or "_"


def track_path(out_dir: Path, track: DemoTrack, *, multi_disc: bool = False) -> Path:
    """Where ``track`` is written under ``out_dir``."""
    ext = ".flac" if is_lossless(track) else ".mp3"
    number = f"{track.disc_number}-{track.track_number:02d}" if multi_disc else f"{track.track_number:02d}"
    stem = sanitize_name(f"{number} {track.title}", max_chars=MAX_NAME_CHARS - len(ext))
    return out_dir / sanitize_name(track.album_artist) / sanitize_name(track.album) / f"{stem}{ext}"


def write_demo_files(
    out_dir: Path,
    tracks: Sequence[DemoTrack],
    *,
    workers: int = 2,
    progress: Callable[[int], object] | None = None,
) -> list[Path]:
    """Render, encode and tag ``tracks`` under ``out_dir``; returns their paths in the same order.

    Files that already exist with a non-zero size are kept as they are.  ``progress(1)`` is called once
    per track, whether it was written or skipped.  ``workers`` processes render and encode in parallel
    (1 = in this process).
    """
    out_dir = Path(out_dir)
    paths = _plan_paths(out_dir, tracks)
    todo: list[tuple[DemoTrack, Path]] = []
    for track, path in zip(tracks, paths, strict=True):
        if path.is_file() and path.stat().st_size > 0:
            if progress is not None:
                progress(1)
        else:
            todo.append((track, path))
    if not todo:
        return paths
    if shutil.which("ffmpeg") is None:
        raise RuntimeError("ffmpeg was not found on PATH; it is needed to encode the demo catalog")

    if workers <= 1 or len(todo) == 1:
        for track, path in todo:
            _write_one(track, str(path))
            if progress is not None:
                progress(1)
        return paths

    # "spawn": a fresh interpreter per worker, safe even if the caller has threads running
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=context) as pool:
        pending: set[Future[str]] = {pool.submit(_write_one, track, str(path)) for track, path in todo}
        while pending:
            done, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for future in done:
                error = future.exception()
                if error is not None:
                    for other in pending:
                        other.cancel()
                    raise error
                if progress is not None:
                    progress(1)
    return paths


def _plan_paths(out_dir: Path, tracks: Sequence[DemoTrack]) -> list[Path]:
    multi = {(t.album_artist, t.album) for t in tracks if t.disc_number > 1}
    seen: set[Path] = set()
    paths: list[Path] = []
    for track in tracks:
        path = track_path(out_dir, track, multi_disc=(track.album_artist, track.album) in multi)
        n = 2
        candidate = path
        while candidate in seen:  # two titles that sanitise to the same name
            candidate = path.with_name(f"{path.stem} ({n}){path.suffix}")
            n += 1
        seen.add(candidate)
        paths.append(candidate)
    return paths


# --------------------------------------------------------------------------------------------------
# the worker side


def _write_one(track: DemoTrack, path_str: str) -> str:
    """Render, encode, tag, then atomically move into place.  Runs in a worker process."""
    path = Path(path_str)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    lossless = path.suffix == ".flac"
    try:
        audio = render(track.spec, SAMPLE_RATE)
        _encode(audio.tobytes(), tmp, lossless)
        cover = None
        if track.embed_cover:
            cover = generate_cover(track.cover_seed, track.album, track.album_artist, size=COVER_SIZE)
        if lossless:
            _tag_flac(tmp, track, cover)
        else:
            _tag_mp3(tmp, track, cover)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path_str


def _encode(pcm: bytes, dest: Path, lossless: bool) -> None:
    if lossless:
        codec = ["-c:a", "flac", "-sample_fmt", "s16", "-compression_level", "5", "-f", "flac"]
    else:
        # lame's -q 7: noticeably faster than the default, with no audible difference here.
        # 160 kbit/s is the free tier's cap: originals are playable by everyone before transcoding.
        codec = ["-c:a", "libmp3lame", "-b:a", "160k", "-compression_level", "7", "-joint_stereo", "0"]
        codec += ["-id3v2_version", "0"]
        codec += ["-write_xing", "1", "-f", "mp3"]
    cmd = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-threads", "1",
        "-f", "f32le", "-ar", str(SAMPLE_RATE), "-ac", "2", "-i", "pipe:0",
        "-map_metadata", "-1", *codec, str(dest),
    ]  # fmt: skip
    result = subprocess.run(cmd, input=pcm, capture_output=True, check=False, timeout=300)
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip()[-2000:]
        raise RuntimeError(f"ffmpeg failed ({result.returncode}) encoding {dest.name}: {message}")


def _tag_mp3(path: Path, track: DemoTrack, cover: bytes | None) -> None:
    tags = _id3.ID3()
    tags.add(_id3.TIT2(encoding=3, text=[track.title]))
    tags.add(_id3.TPE1(encoding=3, text=[track.artist]))
    tags.add(_id3.TALB(encoding=3, text=[track.album]))
    tags.add(_id3.TPE2(encoding=3, text=[track.album_artist]))
    tags.add(_id3.TCON(encoding=3, text=list(track.genres)))
    tags.add(_id3.TRCK(encoding=3, text=[str(track.track_number)]))
    tags.add(_id3.TPOS(encoding=3, text=[str(track.disc_number)]))
    tags.add(_id3.TDRC(encoding=3, text=[track.release_date]))
    tags.add(_id3.TSRC(encoding=3, text=[track.isrc]))
    tags.add(_id3.COMM(encoding=3, lang="eng", desc="", text=[track.description]))
    if track.explicit:
        tags.add(_id3.TXXX(encoding=3, desc="ITUNESADVISORY", text=["1"]))
    if cover is not None:
        tags.add(_id3.APIC(encoding=3, mime="image/jpeg", type=3, desc="Cover", data=cover))
    tags.save(str(path), v2_version=4)


def _tag_flac(path: Path, track: DemoTrack, cover: bytes | None) -> None:
    audio = _flac.FLAC(str(path))
    audio.clear()
    audio.clear_pictures()
    audio["TITLE"] = track.title
    audio["ARTIST"] = track.artist
    audio["ALBUM"] = track.album
    audio["ALBUMARTIST"] = track.album_artist
    audio["GENRE"] = list(track.genres)
    audio["TRACKNUMBER"] = str(track.track_number)
    audio["DISCNUMBER"] = str(track.disc_number)
    audio["DATE"] = track.release_date
    audio["ISRC"] = track.isrc
    audio["DESCRIPTION"] = track.description
    audio["COMMENT"] = track.description
    if track.explicit:
        audio["ITUNESADVISORY"] = "1"
    if cover is not None:
        picture = _flac.Picture()
        picture.type = 3  # front cover
        picture.mime = "image/jpeg"
        picture.desc = "Cover"
        picture.width = picture.height = COVER_SIZE
        picture.depth = 24
        picture.data = cover
        audio.add_picture(picture)
    audio.save()
