"""Raw player events (idempotent by client event id) and the plays they add up to."""

import sqlalchemy as sa

from tonearm.kernel.db import UTCDateTime, created_at, fk, id_column, metadata

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

# Running totals per listener and track / artist, updated when a play counts, so the top lists
# read an index instead of aggregating every play. `short` and `medium` are decayed scores:
# sum of 2 ** ((played_at - SCORE_EPOCH) / half-life) over plays (half-lives of 2 weeks and 3
# months; see history/scores.py), so ordering by them ranks recent listening first without a
# rescan; `plays` is the all-time count (long_term). `item_id` has no foreign key (it names a
# track or an artist): readers join the catalog and skip what is gone. The ranking indexes end
# with `item_id`, the tie-break, so a top list is read in index order and stops at the page's end;
# the `last_played_at` one counts a short/medium list's total.
listening_scores = sa.Table(
    "listening_scores",
    metadata,
    fk("user_id", "users.id", primary_key=True),
    sa.Column("kind", sa.String(8), primary_key=True),  # track|artist
    sa.Column("item_id", sa.String(22), primary_key=True),
    sa.Column("plays", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("ms_played", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("short", sa.Float(), nullable=False, server_default="0"),
    sa.Column("medium", sa.Float(), nullable=False, server_default="0"),
    sa.Column("last_played_at", UTCDateTime(), nullable=False),
    sa.CheckConstraint("kind in ('track','artist')", name="kind"),
    sa.Index("ix_listening_scores_short", "user_id", "kind", "short", "item_id"),
    sa.Index("ix_listening_scores_medium", "user_id", "kind", "medium", "item_id"),
    sa.Index("ix_listening_scores_plays", "user_id", "kind", "plays", "item_id"),
    sa.Index("ix_listening_scores_recent", "user_id", "kind", "last_played_at", "item_id"),
)

# A listener's request for a copy of their data: built by a job (it can be large), kept as a
# blob for a while, downloaded through a short-lived signed link.
data_exports = sa.Table(
    "data_exports",
    metadata,
    id_column(),
    fk("user_id", "users.id", index=True),
    sa.Column("status", sa.String(16), nullable=False, server_default="pending"),  # pending|ready|failed
    sa.Column("blob_key", sa.String(200), nullable=True),
    sa.Column("size_bytes", sa.BigInteger(), nullable=True),
    sa.Column("error", sa.String(300), nullable=True),
    created_at(),
    sa.Column("finished_at", UTCDateTime(), nullable=True),
    sa.Column("expires_at", UTCDateTime(), nullable=True),
    sa.CheckConstraint("status in ('pending','ready','failed')", name="status"),
)

# What each listener's app said it is playing now (scrobble with submission=false), for
# getNowPlaying; an entry older than the track's length is stale and not shown.
now_playing = sa.Table(
    "now_playing",
    metadata,
    fk("user_id", "users.id", primary_key=True),
    fk("track_id", "tracks.id"),
    sa.Column("client", sa.String(100), nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=False),
)
