"""Play queues (the player's, and the one Subsonic apps save) and bookmarks."""

import sqlalchemy as sa

from tonearm.kernel.db import UTCDateTime, created_at, fk, metadata

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

# Where a listener stopped in a long track (Subsonic bookmarks: audiobooks, DJ mixes).
bookmarks = sa.Table(
    "bookmarks",
    metadata,
    fk("user_id", "users.id", primary_key=True),
    fk("track_id", "tracks.id", primary_key=True, index=True),
    sa.Column("position_ms", sa.BigInteger(), nullable=False),
    sa.Column("comment", sa.String(500), nullable=True),
    created_at(),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

# The queue a Subsonic app saved (savePlayQueue), so another app can carry on where it stopped.
saved_queues = sa.Table(
    "saved_queues",
    metadata,
    fk("user_id", "users.id", primary_key=True),
    sa.Column("track_ids", sa.Text(), nullable=False, server_default="[]"),  # JSON list, play order
    sa.Column("current_index", sa.Integer(), nullable=True),
    sa.Column("position_ms", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("changed_at", UTCDateTime(), nullable=False),
    sa.Column("changed_by", sa.String(100), nullable=False),  # the client's `c` parameter
)
