"""Training runs of the recommender, and what listeners asked never to be recommended."""

import sqlalchemy as sa

from tonearm.kernel.db import UTCDateTime, created_at, fk, id_column, metadata

# One training run. The model itself (factors, content vectors, popularity) is a set of blobs under
# `blob_prefix`; the newest `ready` row is what every process serves. `stage` and `progress` show
# where a running job is; a job killed mid-way resumes from the last stage it finished, whose
# output is already in the blob store. `watermark` fingerprints the data trained on: a second
# run over unchanged data finds the model already made and stops (training is idempotent).
rec_models = sa.Table(
    "rec_models",
    metadata,
    id_column(),
    sa.Column("status", sa.String(16), nullable=False, server_default="running"),  # running|ready|failed
    sa.Column("stage", sa.String(32), nullable=False, server_default="queued"),
    sa.Column("progress", sa.Float(), nullable=False, server_default="0"),
    sa.Column("watermark", sa.String(64), nullable=False, index=True),
    sa.Column("blob_prefix", sa.String(200), nullable=False),
    sa.Column("stats", sa.Text(), nullable=True),  # JSON: sizes, seconds per stage
    sa.Column("error", sa.String(300), nullable=True),
    created_at(),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("finished_at", UTCDateTime(), nullable=True),
    sa.CheckConstraint("status in ('running','ready','failed')", name="status"),
)

# "Not interested": never recommend this track to this listener again (until they undo it).
rec_hidden = sa.Table(
    "rec_hidden",
    metadata,
    fk("user_id", "users.id", primary_key=True),
    fk("track_id", "tracks.id", primary_key=True, index=True),
    sa.Column("hidden_at", UTCDateTime(), nullable=False),
)
