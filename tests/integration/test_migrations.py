"""Migrations up and down on SQLite and PostgreSQL, and the models match the migrated schema."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tonearm import migrate
from tonearm.domains.accounts.tables import users
from tonearm.domains.billing.tables import subscription_members, subscriptions
from tonearm.domains.catalog.service import CatalogService
from tonearm.domains.catalog.tables import tracks
from tonearm.domains.history.tables import plays
from tonearm.kernel.db import Database, make_engine
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


def test_downgrades_keep_the_rows_of_tables_they_rebuild(db_url: str) -> None:
    """On SQLite, batch mode drops a column by rebuilding the table; with foreign keys on, that
    would cascade-delete every row pointing at it (0003 rebuilds `renditions`, 0007
    `subscriptions`, 0008 dropped `tracks` columns). Going down to 0002 keeps a listener's play
    of a track and the members of a subscription."""
    engine = make_engine(db_url)
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    catalog = CatalogService(Database(engine), "http://testserver")
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.insert(users).values(
                    id="u" * 22,
                    email="u@example.com",
                    display_name="U",
                    password_hash="!",
                    created_at=now,
                    updated_at=now,
                )
            )
            artist_id = catalog.ensure_artist(conn, "A", now)
            album_id, _ = catalog.ensure_album(conn, "Al", artist_id, "2024", now)
            conn.execute(
                sa.insert(tracks).values(
                    id="t" * 22,
                    title="T",
                    album_id=album_id,
                    duration_ms=1000,
                    status="ready",
                    content_hash="h",
                    created_at=now,
                    updated_at=now,
                )
            )
            conn.execute(
                sa.insert(plays).values(user_id="u" * 22, track_id="t" * 22, played_at=now, ms_played=1000)
            )
            conn.execute(
                sa.insert(subscriptions).values(
                    id="s" * 22,
                    user_id="u" * 22,
                    plan_id="premium_individual",
                    status="active",
                    current_period_start=now,
                    current_period_end=now,
                    created_at=now,
                    updated_at=now,
                )
            )
            conn.execute(
                sa.insert(subscription_members).values(
                    subscription_id="s" * 22, user_id="u" * 22, role="manager", joined_at=now
                )
            )
        migrate.downgrade(db_url, "0002")
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM plays")).scalar_one() == 1
            assert conn.execute(sa.text("SELECT count(*) FROM tracks")).scalar_one() == 1
            assert conn.execute(sa.text("SELECT count(*) FROM subscription_members")).scalar_one() == 1
        migrate.upgrade(db_url)
    finally:
        engine.dispose()
