"""Alembic environment: the URL comes from Tonearm's settings unless the caller passed a connection."""

from __future__ import annotations

from alembic import context

from tonearm.kernel.db import make_engine
from tonearm.kernel.schema import metadata

config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_with(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        from tonearm.config import Settings

        url = Settings().resolved_database_url
    engine = make_engine(url)
    with engine.connect() as conn:
        _run_with(conn)
    engine.dispose()


def _run_with(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=metadata,
        render_as_batch=True,  # SQLite needs batch mode to alter tables
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
