"""Raw player events (idempotent by client event id) and the plays they add up to."""

import sqlalchemy as sa

from tonearm.kernel.db import UTCDateTime, fk, metadata

play_events = sa.Table(
    "play_events",
    metadata,
    sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    fk("user_id", "users.id"),
    fk("track_id", "tracks.id", index=True),
    sa.Column("client_event_id", sa.String(64), nullable=False),
    sa.Column("event_type", sa.String(16), nullable=False),
    sa.Column("position_ms", sa.Integer(), nullable=True),
    sa.Column("rendition", sa.String(32), nullable=True),
    sa.Column("context_uri", sa.String(100), nullable=True),
    sa.Column("device_id", sa.String(22), nullable=True),
    sa.Column("client_ts", UTCDateTime(), nullable=False),
    sa.Column("server_ts", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("user_id", "client_event_id"),  # a retried batch is not counted twice
)

plays = sa.Table(
    "plays",
    metadata,
    sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    fk("user_id", "users.id"),
    fk("track_id", "tracks.id", index=True),
    sa.Column("played_at", UTCDateTime(), nullable=False),
    sa.Column("ms_played", sa.Integer(), nullable=False),
    sa.Column("context_uri", sa.String(100), nullable=True),
    sa.Index("ix_plays_user_time", "user_id", "played_at"),
)

# One listening session of one track, as the player reports it (the client picks the id, so a
# retried batch lands on the same row). `counted` flips once, when the listener has heard 30 s,
# and adds exactly one row to `plays`.
playbacks = sa.Table(
    "playbacks",
    metadata,
    sa.Column("user_id", sa.String(22), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("id", sa.String(64), primary_key=True),
    fk("track_id", "tracks.id", index=True),
    sa.Column("rendition", sa.String(32), nullable=True),
    sa.Column("context_uri", sa.String(100), nullable=True),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("ms_played", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("startup_ms", sa.Integer(), nullable=True),
    sa.Column("rebuffer_ms", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("rebuffers", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("counted", sa.Boolean(), nullable=False, server_default=sa.false()),
)
