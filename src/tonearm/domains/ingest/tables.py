"""Uploads (one per received file) and the import ledger that makes `tonearm import` resumable."""

import sqlalchemy as sa

from tonearm.kernel.db import UTCDateTime, created_at, fk, id_column, metadata

uploads = sa.Table(
    "uploads",
    metadata,
    id_column(),
    fk("user_id", "users.id", index=True),
    sa.Column("filename", sa.String(255), nullable=False),  # sanitised; for display only, never a path
    sa.Column("status", sa.String(16), nullable=False),  # pending|processing|ready|failed
    sa.Column("stage", sa.String(32), nullable=True),  # current pipeline stage, for progress
    sa.Column("error_code", sa.String(40), nullable=True),
    sa.Column("error_message", sa.String(500), nullable=True),
    sa.Column("size_bytes", sa.BigInteger(), nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("blob_key", sa.String(200), nullable=True),  # the original, until it becomes a rendition
    sa.Column("visibility", sa.String(16), nullable=False, server_default="private"),
    sa.Column("track_id", sa.String(22), sa.ForeignKey("tracks.id", ondelete="SET NULL"), nullable=True),
    sa.Column("duplicate_of", sa.String(22), sa.ForeignKey("tracks.id", ondelete="SET NULL"), nullable=True),
    created_at(),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.CheckConstraint("status in ('pending','processing','ready','failed')", name="status"),
)

import_files = sa.Table(
    "import_files",
    metadata,
    sa.Column("path", sa.String(4096), primary_key=True),
    sa.Column("size_bytes", sa.BigInteger(), nullable=False),
    sa.Column("mtime_ns", sa.BigInteger(), nullable=False),
    sa.Column("track_id", sa.String(22), sa.ForeignKey("tracks.id", ondelete="CASCADE"), nullable=True),
    sa.Column("error", sa.String(500), nullable=True),
    sa.Column("imported_at", UTCDateTime(), nullable=False),
)

# Rescans of the server's music folder (`library_dir`), started by an admin (Subsonic's startScan)
# and run by a job: getScanStatus reads the newest row, so any process can answer it.
library_scans = sa.Table(
    "library_scans",
    metadata,
    id_column(),
    sa.Column("status", sa.String(16), nullable=False, server_default="queued"),
    sa.Column("found", sa.Integer(), nullable=False, server_default="0"),  # files to read (new/changed)
    sa.Column("done", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("imported", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("unchanged", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("failed", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("error", sa.String(300), nullable=True),
    created_at(),
    sa.Column("finished_at", UTCDateTime(), nullable=True),
    sa.CheckConstraint("status in ('queued','running','done','failed')", name="status"),
)
