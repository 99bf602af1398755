"""One play queue per listener (what `/v1/me/player` shows and next/previous move through)."""

import sqlalchemy as sa

from tonearm.kernel.db import UTCDateTime, fk, metadata

player_queues = sa.Table(
    "player_queues",
    metadata,
    fk("user_id", "users.id", primary_key=True),
    sa.Column("track_ids", sa.Text(), nullable=False, server_default="[]"),  # JSON list, play order
    sa.Column("position", sa.Integer(), nullable=False, server_default="0"),  # index of the current one
    sa.Column("context_uri", sa.String(100), nullable=True),
    sa.Column("progress_ms", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("is_playing", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("shuffle", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("repeat", sa.String(8), nullable=False, server_default="off"),  # off|track|context
    sa.Column("device_id", sa.String(22), nullable=True),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)
