"""Migrations up and down on SQLite and PostgreSQL, and the models match the migrated schema."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tonearm import migrate
from tonearm.kernel.db import make_engine
from tonearm.kernel.schema import metadata


def test_up_down_up_and_no_drift(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            plans = conn.execute(sa.text("SELECT id, price_minor FROM plans ORDER BY price_minor")).all()
            assert [p.id for p in plans] == ["free", "premium_individual", "premium_duo", "premium_family"]
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
            assert diff == [], diff
        migrate.downgrade(db_url, "base")
        with engine.connect() as conn:
            assert set(sa.inspect(conn).get_table_names()) <= {"alembic_version"}
        migrate.upgrade(db_url)
        with engine.connect() as conn:
            assert "tracks" in sa.inspect(conn).get_table_names()
    finally:
        engine.dispose()
