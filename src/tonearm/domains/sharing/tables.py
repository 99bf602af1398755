"""Short share links: a random code naming one object, with an optional expiry and a click count."""

import sqlalchemy as sa

from tonearm.kernel.db import UTCDateTime, created_at, fk, metadata

share_links = sa.Table(
    "share_links",
    metadata,
    sa.Column("code", sa.String(16), primary_key=True),  # random, URL-safe; the short link is /s/<code>
    fk("user_id", "users.id"),
    sa.Column("kind", sa.String(16), nullable=False),  # track|album|artist|playlist|user
    sa.Column("object_id", sa.String(22), nullable=False),
    created_at(),
    sa.Column("expires_at", UTCDateTime(), nullable=True),
    # The sharer's own words (Subsonic apps' createShare/updateShare); shown on nothing public.
    sa.Column("description", sa.String(300), nullable=True),
    sa.Column("clicks", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("last_clicked_at", UTCDateTime(), nullable=True),
    sa.CheckConstraint("kind in ('track','album','artist','playlist','user')", name="kind"),
    sa.Index("ix_share_links_user_created", "user_id", "created_at"),
)
