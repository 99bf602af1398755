"""public playlists become searchable: a change notice for each existing one

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 08:00:00

No schema change. Playlists made before search followed them have no notice in the change log,
and an index that is already built is not rebuilt by itself: one notice per public playlist lets
the indexer add them (as `tonearm search reindex` would, without rebuilding everything). Written
against table stubs, so later changes to the app cannot change what this migration does.
"""

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tonearm.kernel.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_playlists = sa.table("playlists", sa.column("id", sa.String()), sa.column("public", sa.Boolean()))
_changes = sa.table(
    "changes",
    sa.column("entity", sa.String()),
    sa.column("entity_id", sa.String()),
    sa.column("at", tonearm.kernel.db.UTCDateTime()),
)


def upgrade() -> None:
    now = dt.datetime.now(dt.UTC)
    op.get_bind().execute(
        sa.insert(_changes).from_select(
            ["entity", "entity_id", "at"],
            sa.select(
                sa.literal("playlist", sa.String()),
                _playlists.c.id,
                sa.literal(now, tonearm.kernel.db.UTCDateTime()),
            )
            .where(_playlists.c.public == sa.true())
            .order_by(_playlists.c.id),
        )
    )


def downgrade() -> None:
    pass  # the notices are harmless (the indexer reloads those playlists and finds what is true)
