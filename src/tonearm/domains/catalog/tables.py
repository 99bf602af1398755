"""Artists, albums, tracks, genres, images and renditions."""

import sqlalchemy as sa

from tonearm.kernel.db import UTCDateTime, created_at, fk, id_column, metadata

images = sa.Table(
    "images",
    metadata,
    id_column(),
    sa.Column("source", sa.String(16), nullable=False),  # embedded|generated|uploaded
    sa.Column("content_hash", sa.String(64), nullable=True, index=True),
    created_at(),
)

image_variants = sa.Table(
    "image_variants",
    metadata,
    fk("image_id", "images.id", primary_key=True),
    sa.Column("size", sa.Integer(), primary_key=True),  # the square edge in px: 640, 300, 64
    sa.Column("width", sa.Integer(), nullable=False),
    sa.Column("height", sa.Integer(), nullable=False),
    sa.Column("blob_key", sa.String(200), nullable=False),
    sa.Column("content_type", sa.String(40), nullable=False),
    sa.Column("bytes", sa.Integer(), nullable=False),
)

artists = sa.Table(
    "artists",
    metadata,
    id_column(),
    sa.Column("name", sa.String(500), nullable=False),
    sa.Column("name_key", sa.String(500), nullable=False, unique=True),  # case/space-folded, for matching
    sa.Column("bio", sa.Text(), nullable=True),
    sa.Column("image_id", sa.String(22), sa.ForeignKey("images.id", ondelete="SET NULL"), nullable=True),
    sa.Column("owner_user_id", sa.String(22), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    sa.Column("followers", sa.Integer(), nullable=False, server_default="0"),
    created_at(),
)

albums = sa.Table(
    "albums",
    metadata,
    id_column(),
    sa.Column("name", sa.String(500), nullable=False),
    fk("artist_id", "artists.id", index=True),  # primary (album) artist
    sa.Column("match_key", sa.String(1100), nullable=False, unique=True),  # artist key + album key
    sa.Column("album_type", sa.String(16), nullable=False, server_default="album"),
    sa.Column("release_date", sa.String(10), nullable=True),
    sa.Column("release_date_precision", sa.String(5), nullable=True),  # year|month|day
    sa.Column("label", sa.String(200), nullable=True),
    sa.Column("image_id", sa.String(22), sa.ForeignKey("images.id", ondelete="SET NULL"), nullable=True),
    created_at(),
    sa.CheckConstraint("album_type in ('album','single','compilation')", name="album_type"),
)

genres = sa.Table(
    "genres",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(80), nullable=False),
    sa.Column("slug", sa.String(80), nullable=False, unique=True),
)

tracks = sa.Table(
    "tracks",
    metadata,
    id_column(),
    sa.Column("title", sa.String(500), nullable=False),
    fk("album_id", "albums.id", index=True),
    sa.Column("duration_ms", sa.Integer(), nullable=False),
    sa.Column("track_number", sa.Integer(), nullable=False, server_default="1"),
    sa.Column("disc_number", sa.Integer(), nullable=False, server_default="1"),
    sa.Column("isrc", sa.String(12), nullable=True, index=True),
    sa.Column("explicit", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("description", sa.Text(), nullable=True),
    sa.Column("release_date", sa.String(10), nullable=True),
    sa.Column("loudness_lufs", sa.Float(), nullable=True),
    sa.Column("true_peak_dbtp", sa.Float(), nullable=True),
    # Measured at ingest (media.audio_features): what the content model and radio read.
    sa.Column("tempo_bpm", sa.Float(), nullable=True),
    sa.Column("brightness_hz", sa.Float(), nullable=True),  # mean spectral centroid
    # processing: being ingested, invisible; ready: listed and playable; failed: never listed.
    sa.Column("status", sa.String(16), nullable=False, server_default="processing"),
    sa.Column("visibility", sa.String(16), nullable=False, server_default="public"),  # public|private
    sa.Column("owner_user_id", sa.String(22), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
    sa.Column("content_hash", sa.String(64), nullable=False, index=True),  # sha256 of the original file
    sa.Column("audio_hash", sa.String(64), nullable=True, index=True),  # hash of decoded audio: dup check
    sa.Column("play_count", sa.Integer(), nullable=False, server_default="0"),
    created_at(),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.CheckConstraint("status in ('processing','ready','failed')", name="status"),
    sa.CheckConstraint("visibility in ('public','private')", name="visibility"),
    sa.Index("ix_tracks_album_order", "album_id", "disc_number", "track_number"),
)

track_artists = sa.Table(
    "track_artists",
    metadata,
    fk("track_id", "tracks.id", primary_key=True),
    fk("artist_id", "artists.id", primary_key=True, index=True),
    sa.Column("position", sa.Integer(), nullable=False, server_default="0"),
)

track_genres = sa.Table(
    "track_genres",
    metadata,
    fk("track_id", "tracks.id", primary_key=True),
    sa.Column(
        "genre_id", sa.Integer(), sa.ForeignKey("genres.id", ondelete="CASCADE"), primary_key=True, index=True
    ),
)

renditions = sa.Table(
    "renditions",
    metadata,
    id_column(),
    fk("track_id", "tracks.id"),
    sa.Column("name", sa.String(32), nullable=False),  # aac_160, original, ...
    sa.Column("codec", sa.String(16), nullable=False),
    sa.Column("bitrate_kbps", sa.Integer(), nullable=False),  # 0 = lossless
    sa.Column("container", sa.String(8), nullable=False),
    sa.Column("content_type", sa.String(40), nullable=False),
    sa.Column("blob_key", sa.String(200), nullable=False),
    sa.Column("size_bytes", sa.BigInteger(), nullable=False),
    sa.Column("duration_ms", sa.Integer(), nullable=False),
    sa.Column("is_original", sa.Boolean(), nullable=False, server_default=sa.false()),
    # The same audio packaged as one fragmented MP4 (CMAF) for HLS, and its byte-range index
    # (media.HlsIndex as JSON); null for renditions that are not streamed adaptively.
    sa.Column("hls_blob_key", sa.String(200), nullable=True),
    sa.Column("hls_index", sa.Text(), nullable=True),
    created_at(),
    sa.UniqueConstraint("track_id", "name"),
)

# Who is producing a missing rendition right now: the primary key makes concurrent requests for
# the same (track, rendition) elect one transcoder, on one machine or many; the others wait for it.
# A claim whose holder died expires and can be taken over.
rendition_claims = sa.Table(
    "rendition_claims",
    metadata,
    sa.Column("track_id", sa.String(22), sa.ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("holder", sa.String(64), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
)
