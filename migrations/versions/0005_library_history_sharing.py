"""listening scores, data exports, share links; an index for collaborators

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 06:35:26.942771
"""

import datetime as dt
from collections.abc import Sequence
from typing import Any

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
        batch_op.create_index(
            "ix_listening_scores_medium", ["user_id", "kind", "medium", "item_id"], unique=False
        )
        batch_op.create_index(
            "ix_listening_scores_plays", ["user_id", "kind", "plays", "item_id"], unique=False
        )
        batch_op.create_index(
            "ix_listening_scores_recent", ["user_id", "kind", "last_played_at", "item_id"], unique=False
        )
        batch_op.create_index(
            "ix_listening_scores_short", ["user_id", "kind", "short", "item_id"], unique=False
        )
    _backfill_listening_scores(op.get_bind())

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


# The backfill: listening_scores from the plays already counted, as history.service keeps them
# from now on (one row per user and track, and per user and artist of that track). Written against
# lightweight table stubs and with the score formula frozen here (history/scores.py at the time
# of writing), so later changes to the app cannot change what this migration does.
_SCORE_EPOCH = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
_SHORT_S = 14 * 86400.0
_MEDIUM_S = 90 * 86400.0
_MAX_AGE_S = 994 * _SHORT_S  # later plays are scored as of then: beyond it `short` would overflow
_BATCH = 1000

_plays = sa.table(
    "plays",
    sa.column("user_id", sa.String()),
    sa.column("track_id", sa.String()),
    sa.column("played_at", tonearm.kernel.db.UTCDateTime()),
    sa.column("ms_played", sa.Integer()),
)
_track_artists = sa.table(
    "track_artists", sa.column("track_id", sa.String()), sa.column("artist_id", sa.String())
)
_scores = sa.table(
    "listening_scores",
    sa.column("user_id", sa.String()),
    sa.column("kind", sa.String()),
    sa.column("item_id", sa.String()),
    sa.column("plays", sa.Integer()),
    sa.column("ms_played", sa.BigInteger()),
    sa.column("short", sa.Float()),
    sa.column("medium", sa.Float()),
    sa.column("last_played_at", tonearm.kernel.db.UTCDateTime()),
)


def _backfill_listening_scores(conn: sa.Connection) -> None:
    """One user at a time (a listener's totals fit in memory: one entry per track and artist they
    played), reading their plays in batches through the (user_id, played_at) index."""
    user_ids = conn.execute(sa.select(_plays.c.user_id).distinct()).scalars().all()
    for user_id in user_ids:
        totals: dict[tuple[str, str], list[Any]] = {}  # (kind, id) -> [plays, ms, short, medium, last]
        per_track: dict[str, list[Any]] = {}
        result = conn.execute(
            sa.select(_plays.c.track_id, _plays.c.played_at, _plays.c.ms_played)
            .where(_plays.c.user_id == user_id)
            .execution_options(stream_results=True, yield_per=5000)
        )
        for track_id, played_at, ms_played in result:
            age_s = min((played_at - _SCORE_EPOCH).total_seconds(), _MAX_AGE_S)
            t = per_track.setdefault(track_id, [0, 0, 0.0, 0.0, played_at])
            t[0] += 1
            t[1] += ms_played
            t[2] += 2.0 ** (age_s / _SHORT_S)
            t[3] += 2.0 ** (age_s / _MEDIUM_S)
            t[4] = max(t[4], played_at)
        track_ids = sorted(per_track)
        for i in range(0, len(track_ids), 500):
            chunk = track_ids[i : i + 500]
            for track_id, artist_id in conn.execute(
                sa.select(_track_artists.c.track_id, _track_artists.c.artist_id).where(
                    _track_artists.c.track_id.in_(chunk)
                )
            ):
                t, a = per_track[track_id], totals.setdefault(("artist", artist_id), [0, 0, 0.0, 0.0, None])
                a[0] += t[0]
                a[1] += t[1]
                a[2] += t[2]
                a[3] += t[3]
                a[4] = t[4] if a[4] is None else max(a[4], t[4])
        for track_id, t in per_track.items():
            totals[("track", track_id)] = t
        rows = [
            {
                "user_id": user_id,
                "kind": kind,
                "item_id": item_id,
                "plays": n,
                "ms_played": ms,
                "short": short,
                "medium": medium,
                "last_played_at": last,
            }
            for (kind, item_id), (n, ms, short, medium, last) in sorted(totals.items())
        ]
        for i in range(0, len(rows), _BATCH):
            conn.execute(sa.insert(_scores), rows[i : i + _BATCH])


def downgrade() -> None:
    with op.batch_alter_table("playlist_collaborators", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_playlist_collaborators_user_id"))

    with op.batch_alter_table("share_links", schema=None) as batch_op:
        batch_op.drop_index("ix_share_links_user_created")

    op.drop_table("share_links")
    with op.batch_alter_table("listening_scores", schema=None) as batch_op:
        batch_op.drop_index("ix_listening_scores_short")
        batch_op.drop_index("ix_listening_scores_recent")
        batch_op.drop_index("ix_listening_scores_plays")
        batch_op.drop_index("ix_listening_scores_medium")

    op.drop_table("listening_scores")
    with op.batch_alter_table("data_exports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_data_exports_user_id"))

    op.drop_table("data_exports")
