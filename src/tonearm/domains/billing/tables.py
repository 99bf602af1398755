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
    # Which PaymentGateway holds the card token, and what to show the user about the card.
    sa.Column("gateway", sa.String(20), nullable=False, server_default="sandbox"),
    sa.Column("card_brand", sa.String(20), nullable=True),
    sa.Column("card_last4", sa.String(4), nullable=True),
    # Failed renewal: premium stays until grace_until; charges are retried at next_retry_at.
    sa.Column("grace_until", UTCDateTime(), nullable=True),
    sa.Column("next_retry_at", UTCDateTime(), nullable=True),
    sa.Column("retry_count", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("ended_at", UTCDateTime(), nullable=True),
    sa.Column("updated_at", UTCDateTime(), nullable=True),
    sa.Index("ix_subscriptions_status_current_period_end", "status", "current_period_end"),
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
    sa.Column("invoice_id", sa.String(22), nullable=True, index=True),  # the invoice this attempt pays
    sa.Column("kind", sa.String(8), nullable=False, server_default="charge"),  # charge|refund
    sa.Column("updated_at", UTCDateTime(), nullable=True),
    sa.CheckConstraint("amount_minor >= 0", name="amount_nonnegative"),
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
    sa.Column("number", sa.String(32), nullable=True, unique=True),  # TA-<year>-<sequence>, human-facing
    sa.Column("plan_id", sa.String(40), nullable=True),
    sa.Column("description", sa.String(200), nullable=True),
    sa.Column("lines", sa.Text(), nullable=True),  # JSON: [{description, amount_minor}], proration included
    sa.Column("paid_at", UTCDateTime(), nullable=True),
    sa.CheckConstraint("amount_minor >= 0", name="amount_nonnegative"),
)

# Webhook events already applied, by the gateway's event id: a duplicate or replayed delivery
# changes nothing.
webhook_events = sa.Table(
    "webhook_events",
    metadata,
    sa.Column("gateway", sa.String(20), primary_key=True),
    sa.Column("event_id", sa.String(100), primary_key=True),
    sa.Column("type", sa.String(60), nullable=False),
    sa.Column("created", UTCDateTime(), nullable=False),  # when the gateway says it happened
    sa.Column("received_at", UTCDateTime(), nullable=False),
)

# Duo/Family invitations: by link (anyone holding the code) or bound to one email address.
family_invitations = sa.Table(
    "family_invitations",
    metadata,
    id_column(),
    fk("subscription_id", "subscriptions.id", index=True),
    sa.Column("code_hash", sa.String(64), nullable=False, unique=True),  # sha256 of the link's secret
    sa.Column("email", sa.String(254), nullable=True),
    created_at(),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    fk("accepted_by", "users.id", nullable=True, ondelete="SET NULL"),
    sa.Column("accepted_at", UTCDateTime(), nullable=True),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
)

# The sandbox gateway's own books (it stands in for an external service, so it keeps its own
# state: tokenized cards and the charges made against them, by idempotency key).
sandbox_cards = sa.Table(
    "sandbox_cards",
    metadata,
    sa.Column("token", sa.String(40), primary_key=True),
    sa.Column("brand", sa.String(20), nullable=False),
    sa.Column("last4", sa.String(4), nullable=False),
    sa.Column("exp_month", sa.Integer(), nullable=False),
    sa.Column("exp_year", sa.Integer(), nullable=False),
    sa.Column("behaviour", sa.String(30), nullable=False),  # what the test number does when charged
    created_at(),
)

sandbox_charges = sa.Table(
    "sandbox_charges",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("idempotency_key", sa.String(100), nullable=False, unique=True),
    sa.Column("token", sa.String(40), nullable=False),
    sa.Column("amount_minor", sa.BigInteger(), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # succeeded|failed|refunded
    sa.Column("failure_code", sa.String(40), nullable=True),
    created_at(),
)
