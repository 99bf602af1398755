"""Plans, the premium features they carry (data, not code), subscriptions, payments and invoices.

Money is always an integer number of minor units (cents) with an ISO 4217 currency.
"""

import sqlalchemy as sa

from tonearm.kernel.db import UTCDateTime, created_at, fk, id_column, metadata

plans = sa.Table(
    "plans",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),  # free, premium_individual, premium_duo, ...
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("price_minor", sa.Integer(), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("interval", sa.String(8), nullable=False, server_default="month"),
    sa.Column("max_members", sa.Integer(), nullable=False, server_default="1"),
    sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
    sa.CheckConstraint("price_minor >= 0", name="price_nonnegative"),
)

premium_features = sa.Table(
    "premium_features",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),  # ad_free, unlimited_skips, high_quality, offline
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("description", sa.String(500), nullable=False),
)

plan_features = sa.Table(
    "plan_features",
    metadata,
    sa.Column("plan_id", sa.String(40), sa.ForeignKey("plans.id", ondelete="CASCADE"), primary_key=True),
    sa.Column(
        "feature_id",
        sa.String(40),
        sa.ForeignKey("premium_features.id", ondelete="CASCADE"),
        primary_key=True,
    ),
)

subscriptions = sa.Table(
    "subscriptions",
    metadata,
    id_column(),
    fk("user_id", "users.id", index=True),  # the manager, who pays
    sa.Column("plan_id", sa.String(40), sa.ForeignKey("plans.id"), nullable=False),
    sa.Column("pending_plan_id", sa.String(40), sa.ForeignKey("plans.id"), nullable=True),  # at period end
    sa.Column("status", sa.String(16), nullable=False),  # active|past_due|canceled|expired
    sa.Column("current_period_start", UTCDateTime(), nullable=False),
    sa.Column("current_period_end", UTCDateTime(), nullable=False),
    sa.Column("cancel_at_period_end", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("payment_method_token", sa.String(100), nullable=True),
    created_at(),
)

subscription_members = sa.Table(
    "subscription_members",
    metadata,
    fk("subscription_id", "subscriptions.id", primary_key=True),
    fk("user_id", "users.id", primary_key=True, index=True),
    sa.Column("role", sa.String(8), nullable=False),  # manager|member
    sa.Column("joined_at", UTCDateTime(), nullable=False),
)

payments = sa.Table(
    "payments",
    metadata,
    id_column(),
    fk("user_id", "users.id", index=True),
    sa.Column("subscription_id", sa.String(22), sa.ForeignKey("subscriptions.id", ondelete="SET NULL")),
    sa.Column("amount_minor", sa.Integer(), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending|succeeded|failed|refunded
    sa.Column("gateway", sa.String(20), nullable=False),
    sa.Column("gateway_ref", sa.String(100), nullable=True),
    sa.Column("idempotency_key", sa.String(100), nullable=False, unique=True),  # never charge twice
    sa.Column("failure_reason", sa.String(200), nullable=True),
    created_at(),
)

invoices = sa.Table(
    "invoices",
    metadata,
    id_column(),
    fk("user_id", "users.id", index=True),
    sa.Column("subscription_id", sa.String(22), sa.ForeignKey("subscriptions.id", ondelete="SET NULL")),
    sa.Column("payment_id", sa.String(22), sa.ForeignKey("payments.id", ondelete="SET NULL")),
    sa.Column("amount_minor", sa.Integer(), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("period_start", UTCDateTime(), nullable=False),
    sa.Column("period_end", UTCDateTime(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # open|paid|void
    created_at(),
)
