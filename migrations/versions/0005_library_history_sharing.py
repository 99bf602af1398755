"""listening scores, data exports, share links; an index for collaborators

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 06:35:26.942771
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tonearm.kernel.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "data_exports",
        sa.Column("id", sa.String(length=22), nullable=False),
        sa.Column("user_id", sa.String(length=22), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("blob_key", sa.String(length=200), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.String(length=300), nullable=True),
        sa.Column("created_at", tonearm.kernel.db.UTCDateTime(), nullable=False),
        sa.Column("finished_at", tonearm.kernel.db.UTCDateTime(), nullable=True),
        sa.Column("expires_at", tonearm.kernel.db.UTCDateTime(), nullable=True),
        sa.CheckConstraint("status in ('pending','ready','failed')", name=op.f("ck_data_exports_status")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_data_exports_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_exports")),
    )
    with op.batch_alter_table("data_exports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_data_exports_user_id"), ["user_id"], unique=False)

    op.create_table(
        "listening_scores",
        sa.Column("user_id", sa.String(length=22), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("item_id", sa.String(length=22), nullable=False),
        sa.Column("plays", sa.Integer(), server_default="0", nullable=False),
        sa.Column("ms_played", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("short", sa.Float(), server_default="0", nullable=False),
        sa.Column("medium", sa.Float(), server_default="0", nullable=False),
        sa.Column("last_played_at", tonearm.kernel.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint("kind in ('track','artist')", name=op.f("ck_listening_scores_kind")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_listening_scores_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "kind", "item_id", name=op.f("pk_listening_scores")),
    )
    with op.batch_alter_table("listening_scores", schema=None) as batch_op:
        batch_op.create_index("ix_listening_scores_medium", ["user_id", "kind", "medium"], unique=False)
        batch_op.create_index("ix_listening_scores_plays", ["user_id", "kind", "plays"], unique=False)
        batch_op.create_index("ix_listening_scores_short", ["user_id", "kind", "short"], unique=False)

    op.create_table(
        "share_links",
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.String(length=22), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("object_id", sa.String(length=22), nullable=False),
        sa.Column("created_at", tonearm.kernel.db.UTCDateTime(), nullable=False),
        sa.Column("expires_at", tonearm.kernel.db.UTCDateTime(), nullable=True),
        sa.Column("clicks", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_clicked_at", tonearm.kernel.db.UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "kind in ('track','album','artist','playlist','user')", name=op.f("ck_share_links_kind")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_share_links_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_share_links")),
    )
    with op.batch_alter_table("share_links", schema=None) as batch_op:
        batch_op.create_index("ix_share_links_user_created", ["user_id", "created_at"], unique=False)

    with op.batch_alter_table("playlist_collaborators", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_playlist_collaborators_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("playlist_collaborators", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_playlist_collaborators_user_id"))

    with op.batch_alter_table("share_links", schema=None) as batch_op:
        batch_op.drop_index("ix_share_links_user_created")

    op.drop_table("share_links")
    with op.batch_alter_table("listening_scores", schema=None) as batch_op:
        batch_op.drop_index("ix_listening_scores_short")
        batch_op.drop_index("ix_listening_scores_plays")
        batch_op.drop_index("ix_listening_scores_medium")

    op.drop_table("listening_scores")
    with op.batch_alter_table("data_exports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_data_exports_user_id"))

    op.drop_table("data_exports")
