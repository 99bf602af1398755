"""Skips (free listeners' rolling-hour limit), audio ads and their impressions, and the log of
entitlement decisions support reads to answer "why can't I ...?"."""

import sqlalchemy as sa

from tonearm.kernel.db import UTCDateTime, created_at, fk, id_column, metadata

skips = sa.Table(
    "skips",
    metadata,
    id_column(),
    fk("user_id", "users.id"),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("track_id", sa.String(22), nullable=True),  # the track skipped, when known
    sa.Index("ix_skips_user_id_at", "user_id", "at"),
)

ads = sa.Table(
    "ads",
    metadata,
    id_column(),
    fk("track_id", "tracks.id", index=True),  # the audio, uploaded by an admin like any track
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("advertiser", sa.String(200), nullable=False),
    sa.Column("click_url", sa.String(500), nullable=True),
    sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
    created_at(),
)

# How many tracks a free listener has started since their last ad.
ad_state = sa.Table(
    "ad_state",
    metadata,
    fk("user_id", "users.id", primary_key=True),
    sa.Column("tracks_since_ad", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("last_ad_at", UTCDateTime(), nullable=True),
)

ad_impressions = sa.Table(
    "ad_impressions",
    metadata,
    id_column(),
    fk("ad_id", "ads.id", index=True),
    fk("user_id", "users.id", index=True),
    sa.Column("before_track_id", sa.String(22), nullable=True),
    sa.Column("served_at", UTCDateTime(), nullable=False),
    sa.Column("completed_at", UTCDateTime(), nullable=True),
)

entitlement_log = sa.Table(
    "entitlement_log",
    metadata,
    id_column(),
    fk("user_id", "users.id"),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("action", sa.String(40), nullable=False),  # play|skip|quality|download|device|ad|product
    sa.Column("allowed", sa.Boolean(), nullable=False),
    sa.Column("reason", sa.String(60), nullable=False),  # machine-readable, e.g. skip_limit
    sa.Column("detail", sa.String(300), nullable=False),  # plain words for support
    sa.Index("ix_entitlement_log_user_id_at", "user_id", "at"),
)
