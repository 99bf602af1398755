"""Schema migrations with Alembic, configured in code (the same as `alembic` with alembic.ini)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config

from tonearm.kernel.db import make_engine

MIGRATIONS = Path(os.environ.get("TONEARM_MIGRATIONS", Path(__file__).resolve().parents[2] / "migrations"))


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # configparser interpolation
    return cfg


def _run(url: str, action: Callable[[Config, str], None], revision: str) -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                # Batch mode changes a column by rebuilding the table (copy, DROP, rename): with
                # foreign keys on, the DROP would cascade-delete every row that points at it (all
                # plays, likes, ... of `tracks`). SQLite reads this pragma outside transactions only.
                # Straight on the driver's connection: SQLAlchemy would BEGIN first (see kernel.db).
                raw = conn.connection.dbapi_connection
                assert raw is not None
                raw.execute("PRAGMA foreign_keys=OFF")
            with conn.begin():
                cfg = alembic_config(url)
                cfg.attributes["connection"] = conn
                action(cfg, revision)
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> None:
    _run(url, command.upgrade, revision)


def downgrade(url: str, revision: str = "base") -> None:
    _run(url, command.downgrade, revision)
