"""The durable job table: jobs are rows written in the same transaction as the data they act on."""

import sqlalchemy as sa

from tonearm.kernel.db import UTCDateTime, created_at, metadata

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("payload", sa.Text(), nullable=False),  # JSON; jobs carry ids and reload rows
    sa.Column("status", sa.String(16), nullable=False),  # queued|running|done|failed
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("max_attempts", sa.Integer(), nullable=False),
    sa.Column("run_after", UTCDateTime(), nullable=False),
    sa.Column("locked_by", sa.String(64), nullable=True),
    sa.Column("locked_until", UTCDateTime(), nullable=True),  # the lease; expired = worker died
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("dedupe_key", sa.String(200), nullable=True, unique=True),
    created_at(),
    sa.Column("finished_at", UTCDateTime(), nullable=True),
    sa.Index("ix_jobs_claim", "status", "run_after"),
)
