"""`tonearm import`: content-verified, idempotent, resumable, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.helpers import make_tone
from tonearm.bootstrap import Container
from tonearm.domains.catalog.tables import albums, artists, renditions, tracks
from tonearm.domains.ingest import importer as importer_module


def library(root: Path) -> Path:
    (root / "Band" / "Album One").mkdir(parents=True)
    (root / "Solo").mkdir()
    for i, suffix in enumerate((".mp3", ".flac", ".ogg", ".m4a")):
        make_tone(
            root / "Band" / "Album One" / f"{i + 1:02d} track{suffix}",
            seconds=1.5,
            freq=300 + 50 * i,
            tags={
                "title": f"Song {i + 1}",
                "artist": "The Band",
                "album_artist": "The Band",
                "album": "Album One",
                "track": str(i + 1),
                "genre": "Rock",
                "date": "1999-04-01",
            },
        )
    make_tone(root / "Solo" / "lonely.wav", seconds=1, tags={"title": "Lonely"})
    (root / "Solo" / "notes.mp3").write_text("this is not audio at all")
    (root / "Solo" / "empty.flac").write_bytes(b"")
    return root


def test_import_is_content_verified_and_idempotent(container: Container, tmp_path: Path) -> None:
    root = library(tmp_path / "music")
    seen: list[int] = []
    report = container.importer.run(root, transcode=False, workers=1, progress=lambda n, _f: seen.append(n))
    assert (report.found, report.imported, report.failed) == (7, 5, 2)
    assert sum(seen) == 7
    reasons = dict(report.failures)
    assert "not an audio file" in reasons[str(root / "Solo" / "notes.mp3")]
    assert "empty" in reasons[str(root / "Solo" / "empty.flac")]
    with container.db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tracks)).scalar_one() == 5
        band = conn.execute(sa.select(albums).where(albums.c.name == "Album One")).one()
        assert band.image_id is not None and band.release_date == "1999-04-01"
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(artists)).scalar_one() == 2
        )  # The Band + Unknown
        kinds = set(conn.execute(sa.select(renditions.c.codec)).scalars())
    assert kinds == {"mp3", "flac", "vorbis", "aac", "pcm_s16le"}
    again = container.importer.run(root, transcode=False, workers=1)
    assert (again.imported, again.unchanged) == (0, 7)
    # A changed file is re-imported and replaces its old track instead of duplicating it.
    changed = root / "Solo" / "lonely.wav"
    make_tone(changed, seconds=2)
    os.utime(changed, ns=(1, 2))
    third = container.importer.run(root, transcode=False, workers=1)
    assert third.imported == 1
    with container.db.read() as conn:
        rows = conn.execute(sa.select(tracks.c.title, tracks.c.duration_ms)).all()
    assert len(rows) == 5
    lonely = [r.duration_ms for r in rows if r.title == "lonely"]  # WAV INFO tags: title from the file name
    assert len(lonely) == 1 and 1900 <= lonely[0] <= 2100


def test_import_queues_renditions_and_worker_makes_them(
    container: Container, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer_module, "ANALYZE_AFTER", 1)  # exercise the post-import ANALYZE too
    root = tmp_path / "m"
    root.mkdir()
    make_tone(root / "a.flac", seconds=2, tags={"title": "A", "artist": "X"})
    report = container.importer.run(root, transcode=True, workers=1)
    assert report.imported == 1
    assert container.worker(name="t").drain() == 1
    with container.db.read() as conn:
        names = set(conn.execute(sa.select(renditions.c.name)).scalars())
        loud = conn.execute(sa.select(tracks.c.loudness_lufs)).scalar_one()
    assert names == {"original", "aac_96", "aac_160", "aac_320"}
    assert loud is not None
