"""Schema migrations with Alembic, configured in code (the same as `alembic` with alembic.ini)."""

from __future__ import annotations

import os
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


def upgrade(url: str, revision: str = "head") -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            cfg = alembic_config(url)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()


def downgrade(url: str, revision: str = "base") -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            cfg = alembic_config(url)
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, revision)
    finally:
        engine.dispose()
