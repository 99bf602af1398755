"""Bulk import: N tagged files (metadata + thumbnails, no transcode), files/s on this machine.

    .venv/bin/python bench/import_files.py [--files 10000] [--db sqlite|postgres]

Half the albums carry an embedded cover (JPEG, 1000x1000), half get a generated one.
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from mutagen.id3 import APIC, ID3, TALB, TCON, TDRC, TIT2, TPE1, TPE2, TRCK, TSRC
from PIL import Image

from _common import machine
from tonearm import migrate
from tonearm.bootstrap import bootstrap
from tonearm.config import Settings
from tonearm.covers import generate_cover

GENRES = ["Rock", "Jazz", "House", "Ambient", "Hip-Hop", "Pop", "Techno", "Folk"]


def make_library(root: Path, n_files: int, per_album: int = 10) -> None:
    base = root.parent / "_base.mp3"
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=3",
            "-ac",
            "2",
            "-b:a",
            "128k",
            str(base),
        ],
        check=True,
    )
    for a in range(n_files // per_album):
        d = root / f"Artist {a // 3}" / f"Album {a}"
        d.mkdir(parents=True, exist_ok=True)
        picture = None
        if a % 2 == 0:
            # Artwork-like pictures (gradients, shapes, text) at 1000 px, as scanned covers often are.
            art = Image.open(
                io.BytesIO(generate_cover(f"bench-{a}", f"Album {a}", f"Artist {a // 3}", size=1000))
            )
            buf = io.BytesIO()
            art.save(buf, format="JPEG", quality=90)
            picture = buf.getvalue()
        for t in range(per_album):
            path = d / f"{t + 1:02d} Track {t + 1}.mp3"
            shutil.copyfile(base, path)
            tags = ID3()
            tags.add(TIT2(encoding=3, text=f"Track {t + 1} of album {a}"))
            tags.add(TPE1(encoding=3, text=f"Artist {a // 3}"))
            tags.add(TPE2(encoding=3, text=f"Artist {a // 3}"))
            tags.add(TALB(encoding=3, text=f"Album {a}"))
            tags.add(TRCK(encoding=3, text=f"{t + 1}/{per_album}"))
            tags.add(TCON(encoding=3, text=[GENRES[a % len(GENRES)]]))
            tags.add(TDRC(encoding=3, text=str(1960 + a % 60)))
            tags.add(TSRC(encoding=3, text=f"ZZIMP{a * per_album + t:07d}"))
            if picture:
                tags.add(APIC(encoding=3, mime="image/jpeg", type=3, desc="cover", data=picture))
            tags.save(path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tonearm-import-"))
    lib = tmp / "library"
    lib.mkdir()
    t0 = time.perf_counter()
    make_library(lib, args.files)
    print(f"machine: {machine()}")
    print(f"made {args.files} files in {time.perf_counter() - t0:.1f} s")
    url = f"sqlite:///{tmp / 'import.db'}"
    if args.db == "postgres":
        import secrets

        import sqlalchemy as sa

        schema = "imp_" + secrets.token_hex(4)
        pg = "postgresql://postgres@127.0.0.1:5432/test"
        eng = sa.create_engine(pg.replace("postgresql://", "postgresql+psycopg://"))
        with eng.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        url = f"{pg}?options=-csearch_path%3D{schema}"
    migrate.upgrade(url)
    c = bootstrap(Settings(data_dir=tmp / "data", database_url=url, secret_key="x" * 40))
    t0 = time.perf_counter()
    report = c.importer.run(lib, transcode=False, workers=args.workers)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = c.importer.run(lib, transcode=False, workers=args.workers)
    second = time.perf_counter() - t0
    c.close()
    print(
        f"import: {report.imported} files in {first:.1f} s = {report.imported / first:.0f} files/s "
        f"({report.failed} failed) on {args.db} with {args.workers} reader processes"
    )
    print(
        f"re-run (nothing changed): {again.unchanged} files checked in {second:.2f} s "
        f"= {again.unchanged / second:.0f} files/s"
    )
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
