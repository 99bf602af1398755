"""Shared fixtures: a migrated database on SQLite *and* PostgreSQL, a container, an API client,
and real audio files made with ffmpeg."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from tests.helpers import make_settings
from tonearm import migrate

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


@contextlib.contextmanager
def _private_pg_schema(prefix: str) -> Iterator[str]:
    """A new schema on the PostgreSQL server, dropped afterwards; skips (fails in CI) without one."""
    if not PG_OK:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required in CI but {PG_URL} does not answer")
        pytest.skip("PostgreSQL not reachable")
    schema = prefix + secrets.token_hex(6)
    admin = sa.create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://"))
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield schema
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def _pg_url(search_path: str) -> str:
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{search_path}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A freshly migrated database: a SQLite file, or a private schema on the PostgreSQL server."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.db'}"
        migrate.upgrade(url)
        yield url
        return
    with _private_pg_schema("t_") as schema:
        url = _pg_url(schema)
        migrate.upgrade(url)
        yield url


@pytest.fixture
def pg_search_url() -> Iterator[str]:
    """A URL for the PostgreSQL search index in a private schema, dropped after the test."""
    with _private_pg_schema("s_") as schema:
        yield _pg_url(f"{schema},public")


@pytest.fixture
def container(tmp_path: Path, db_url: str) -> Iterator[Container]:
    from tonearm.bootstrap import bootstrap

    c = bootstrap(make_settings(tmp_path, db_url))
    yield c
    c.close()


@pytest.fixture(scope="session")
def have_ffmpeg() -> None:
    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is required (make system-deps installs it)")
