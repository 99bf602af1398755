"""Shared fixtures: a migrated database on SQLite *and* PostgreSQL, a container, an API client,
and real audio files made with ffmpeg."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from tonearm import migrate
from tonearm.config import Settings

if TYPE_CHECKING:
    from tonearm.bootstrap import Container

PG_URL = os.environ.get("TONEARM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_available() -> bool:
    try:
        eng = sa.create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://"))
        with eng.connect() as conn:
            conn.execute(sa.text("select 1"))
        eng.dispose()
        return True
    except Exception:
        return False


PG_OK = _pg_available()
REQUIRE_PG = os.environ.get("CI") == "true"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A freshly migrated database: a SQLite file, or a private schema on the PostgreSQL server."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.db'}"
        migrate.upgrade(url)
        yield url
        return
    if not PG_OK:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required in CI but {PG_URL} does not answer")
        pytest.skip("PostgreSQL not reachable")
    schema = "t_" + secrets.token_hex(6)
    admin = sa.create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://"))
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in PG_URL else "?"
    url = f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    migrate.upgrade(url)
    try:
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


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


@pytest.fixture
def container(tmp_path: Path, db_url: str) -> Iterator[Container]:
    from tonearm.bootstrap import bootstrap

    c = bootstrap(make_settings(tmp_path, db_url))
    yield c
    c.close()


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def make_tone(
    path: Path, *, seconds: float = 3.0, freq: int = 440, tags: dict[str, str] | None = None
) -> Path:
    """A real audio file (format from the suffix) with a chord-ish tone and optional tags."""
    meta: list[str] = []
    for k, v in (tags or {}).items():
        meta += ["-metadata", f"{k}={v}"]
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency={freq}:duration={seconds}",
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency={freq * 3 // 2}:duration={seconds}",
        "-filter_complex",
        "amix=inputs=2",
        "-ac",
        "2",
        *meta,
        str(path),
    )
    return path


@pytest.fixture(scope="session")
def have_ffmpeg() -> None:
    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is required (make system-deps installs it)")
