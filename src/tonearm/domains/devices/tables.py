"""Devices a premium listener registered for offline play, and what each has downloaded."""

import sqlalchemy as sa

from tonearm.kernel.db import UTCDateTime, created_at, fk, id_column, metadata

devices = sa.Table(
    "devices",
    metadata,
    id_column(),
    fk("user_id", "users.id", index=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),  # browser|phone|desktop|speaker
    created_at(),
    sa.Column("last_seen_at", UTCDateTime(), nullable=False),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
    # When the device last renewed its licences online (they expire 30 days after).
    sa.Column("licences_renewed_at", UTCDateTime(), nullable=True),
)

downloads = sa.Table(
    "downloads",
    metadata,
    fk("device_id", "devices.id", primary_key=True),
    fk("track_id", "tracks.id", primary_key=True),
    sa.Column("rendition", sa.String(32), nullable=False),
    created_at(),
    sa.Column("expires_at", UTCDateTime(), nullable=True),  # the licence's end unless renewed online
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
    sa.Column("revoke_reason", sa.String(100), nullable=True),
)
