"""Playlists (ordered by fractional keys: a move rewrites one row), likes, saves and follows."""

import sqlalchemy as sa

from tonearm.kernel.db import UTCDateTime, created_at, fk, id_column, metadata

playlists = sa.Table(
    "playlists",
    metadata,
    id_column(),
    fk("owner_id", "users.id", index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.String(300), nullable=True),
    sa.Column("public", sa.Boolean(), nullable=False, server_default=sa.true()),
    sa.Column("collaborative", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("version", sa.Integer(), nullable=False, server_default="1"),  # -> snapshot_id
    sa.Column("image_id", sa.String(22), sa.ForeignKey("images.id", ondelete="SET NULL"), nullable=True),
    # Set on playlists the recommender writes for their owner (discover_weekly, daily_mix_1..):
    # regenerated on schedule, found again by (owner, generator).
    sa.Column("generator", sa.String(32), nullable=True),
    created_at(),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Index("ix_playlists_generated", "owner_id", "generator", unique=True),  # NULLs never clash
)

playlist_entries = sa.Table(
    "playlist_entries",
    metadata,
    id_column(),
    fk("playlist_id", "playlists.id"),
    fk("track_id", "tracks.id", index=True),
    # Fractional index: a string key between its neighbours, so insert/move touches one row.
    sa.Column("position_key", sa.String(64), nullable=False),
    sa.Column("added_by", sa.String(22), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    sa.Column("added_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("playlist_id", "position_key"),
)

playlist_collaborators = sa.Table(
    "playlist_collaborators",
    metadata,
    fk("playlist_id", "playlists.id", primary_key=True),
    fk("user_id", "users.id", primary_key=True, index=True),  # "playlists I collaborate on"
    created_at(),
)

track_likes = sa.Table(
    "track_likes",
    metadata,
    fk("user_id", "users.id", primary_key=True),
    fk("track_id", "tracks.id", primary_key=True, index=True),
    sa.Column("added_at", UTCDateTime(), nullable=False),
)

album_saves = sa.Table(
    "album_saves",
    metadata,
    fk("user_id", "users.id", primary_key=True),
    fk("album_id", "albums.id", primary_key=True, index=True),
    sa.Column("added_at", UTCDateTime(), nullable=False),
)

artist_follows = sa.Table(
    "artist_follows",
    metadata,
    fk("user_id", "users.id", primary_key=True),
    fk("artist_id", "artists.id", primary_key=True, index=True),
    sa.Column("followed_at", UTCDateTime(), nullable=False),
)

# A listener's 1-5 star rating of a track, album or artist (Subsonic's setRating; 0 removes it).
# `item_id` has no foreign key, as it names any of three tables; readers join and skip what is gone.
ratings = sa.Table(
    "ratings",
    metadata,
    fk("user_id", "users.id", primary_key=True),
    sa.Column("kind", sa.String(8), primary_key=True),  # track|album|artist
    sa.Column("item_id", sa.String(22), primary_key=True),
    sa.Column("rating", sa.Integer(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.CheckConstraint("kind in ('track','album','artist')", name="kind"),
    sa.CheckConstraint("rating between 1 and 5", name="rating"),
)
