"""streaming: hls packaging, rendition claims, playbacks

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 15:16:09.934612
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tonearm.kernel.db

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "playbacks",
        sa.Column("user_id", sa.String(length=22), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("track_id", sa.String(length=22), nullable=False),
        sa.Column("rendition", sa.String(length=32), nullable=True),
        sa.Column("context_uri", sa.String(length=100), nullable=True),
        sa.Column("started_at", tonearm.kernel.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", tonearm.kernel.db.UTCDateTime(), nullable=False),
        sa.Column("ms_played", sa.Integer(), server_default="0", nullable=False),
        sa.Column("startup_ms", sa.Integer(), nullable=True),
        sa.Column("rebuffer_ms", sa.Integer(), server_default="0", nullable=False),
        sa.Column("rebuffers", sa.Integer(), server_default="0", nullable=False),
        sa.Column("counted", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(
            ["track_id"], ["tracks.id"], name=op.f("fk_playbacks_track_id_tracks"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_playbacks_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "id", name=op.f("pk_playbacks")),
    )
    with op.batch_alter_table("playbacks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_playbacks_track_id"), ["track_id"], unique=False)

    op.create_table(
        "rendition_claims",
        sa.Column("track_id", sa.String(length=22), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("expires_at", tonearm.kernel.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["track_id"], ["tracks.id"], name=op.f("fk_rendition_claims_track_id_tracks"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("track_id", "name", name=op.f("pk_rendition_claims")),
    )
    with op.batch_alter_table("renditions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hls_blob_key", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("hls_index", sa.Text(), nullable=True))


def downgrade() -> None:

    with op.batch_alter_table("renditions", schema=None) as batch_op:
        batch_op.drop_column("hls_index")
        batch_op.drop_column("hls_blob_key")

    op.drop_table("rendition_claims")
    with op.batch_alter_table("playbacks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_playbacks_track_id"))

    op.drop_table("playbacks")
