"""Tempo and brightness measured at ingest, and the backfill for tracks ingested before that."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from fastapi.testclient import TestClient

from tests.helpers import ffmpeg
from tonearm.bootstrap import Container
from tonearm.cli import main as cli
from tonearm.domains.catalog.tables import renditions, tracks
from tonearm.domains.ingest.service import AUDIO_FEATURES_JOB

from .conftest import sign_up_and_login
from .test_ingest import drain, upload

pytestmark = pytest.mark.usefixtures("have_ffmpeg")


def metronome(path: Path, *, seconds: float = 20, bpm: float = 120) -> Path:
    """A decaying 1 kHz blip on every beat, encoded by the suffix."""
    period = 60 / bpm
    expr = f"0.8*sin(2*PI*1000*t)*exp(-150*mod(t\\,{period}))"
    ffmpeg("-f", "lavfi", "-i", f"aevalsrc={expr}:s=44100:d={seconds}", "-ac", "2", str(path))
    return path


def ingest(client: TestClient, container: Container, path: Path) -> str:
    tok = sign_up_and_login(client)
    up = upload(client, tok["headers"], path).json()
    drain(container)
    done = client.get(f"/v1/me/uploads/{up['id']}", headers=tok["headers"]).json()
    assert done["status"] == "ready", done
    return str(done["track"]["id"])


def features(container: Container, track_id: str) -> Any:
    with container.db.read() as conn:
        return conn.execute(
            sa.select(tracks.c.tempo_bpm, tracks.c.brightness_hz).where(tracks.c.id == track_id)
        ).one()


def forget_features(container: Container) -> None:
    with container.db.write() as conn:
        conn.execute(sa.update(tracks).values(tempo_bpm=None, brightness_hz=None))


def test_upload_is_measured(client: TestClient, container: Container, tmp_path: Path) -> None:
    track_id = ingest(client, container, metronome(tmp_path / "beat.flac"))
    row = features(container, track_id)
    assert row.tempo_bpm == pytest.approx(120, abs=3)
    assert 500 < row.brightness_hz < 2500  # a 1 kHz blip, a little spread by its decay


def test_backfill_measures_unmeasured_tracks(
    client: TestClient, container: Container, tmp_path: Path
) -> None:
    # A lossy upload keeps no original: the backfill reads its best rendition instead.
    track_id = ingest(client, container, metronome(tmp_path / "beat.mp3", bpm=90))
    with container.db.read() as conn:
        assert not conn.execute(
            sa.select(renditions.c.id).where(renditions.c.track_id == track_id, renditions.c.is_original)
        ).first()
    forget_features(container)  # as if ingested before features existed

    assert container.ingest.queue_audio_features() == 1
    assert drain_count(container) == 1
    row = features(container, track_id)
    assert row.tempo_bpm == pytest.approx(90, abs=3)
    assert row.brightness_hz > 0

    # Measured tracks are skipped unless asked for all.
    assert container.ingest.queue_audio_features() == 0
    assert container.ingest.queue_audio_features(missing_only=False) == 1
    drain(container)
    assert features(container, track_id).tempo_bpm == pytest.approx(90, abs=3)


def test_backfill_job_for_a_vanished_track_is_a_no_op(container: Container) -> None:
    with container.db.write() as conn:
        container.jobs.enqueue(conn, AUDIO_FEATURES_JOB, {"track_id": "0" * 22})
    assert drain_count(container) == 1
    assert container.jobs.counts().get("failed", 0) == 0


def test_cli_queues_the_backfill(client: TestClient, container: Container, tmp_path: Path) -> None:
    track_id = ingest(client, container, metronome(tmp_path / "beat.flac", seconds=10))
    forget_features(container)
    env = {
        "TONEARM_DATA_DIR": str(container.settings.data_dir),
        "TONEARM_DATABASE_URL": container.settings.resolved_database_url,
        "TONEARM_SECRET_KEY": container.settings.secret_key,
        "TONEARM_LOG_JSON": "false",
    }
    result = CliRunner().invoke(cli, ["features"], env=env)
    assert result.exit_code == 0, result.output
    assert "queued audio features for 1 track" in result.output
    drain(container)
    assert features(container, track_id).brightness_hz > 0


def drain_count(container: Container) -> int:
    return container.worker(name="test").drain()
