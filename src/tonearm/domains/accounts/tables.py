"""Users and their login sessions."""

import sqlalchemy as sa

from tonearm.kernel.db import UTCDateTime, created_at, fk, id_column, metadata

users = sa.Table(
    "users",
    metadata,
    id_column(),
    sa.Column("email", sa.String(254), nullable=False, unique=True),  # stored lower-cased
    sa.Column("display_name", sa.String(100), nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("birth_date", sa.Date(), nullable=True),
    sa.Column("country", sa.String(2), nullable=True),
    sa.Column("role", sa.String(16), nullable=False, server_default="listener"),  # listener|artist|admin
    # Cached product ("free"/"premium"); billing keeps it in step with subscriptions.
    sa.Column("product", sa.String(16), nullable=False, server_default="free"),
    sa.Column(
        "avatar_image_id", sa.String(22), sa.ForeignKey("images.id", ondelete="SET NULL"), nullable=True
    ),
    # Bumped on password change: every access token minted before it stops working.
    sa.Column("token_version", sa.Integer(), nullable=False, server_default="0"),
    created_at(),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.CheckConstraint("role in ('listener','artist','admin')", name="role"),
    sa.CheckConstraint("product in ('free','premium')", name="product"),
)

# One row per login. The refresh token is `<session id>.<secret>`; only a hash of the secret is
# stored. Rotation replaces the hash; presenting the previous secret again means the token leaked,
# so the whole session is revoked (refresh-token reuse detection).
sessions = sa.Table(
    "sessions",
    metadata,
    id_column(),
    fk("user_id", "users.id", index=True),
    sa.Column("refresh_hash", sa.String(64), nullable=False),
    sa.Column("previous_hash", sa.String(64), nullable=True),
    sa.Column("user_agent", sa.String(200), nullable=True),
    created_at(),
    sa.Column("last_used_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
)
