"""seed the plans and the premium features they carry (features are data, not code)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FEATURES = [
    ("ad_free", "Ad-free listening", "No audio ads between tracks."),
    ("unlimited_skips", "Unlimited skips", "Skip as often as you like."),
    ("high_quality", "High-quality audio", "Up to 320 kbps, and lossless originals where they exist."),
    ("offline", "Offline downloads", "Download up to 10,000 tracks on each of up to 5 devices."),
    ("personalised", "Personalised mixes", "Made-for-you playlists and daily mixes."),
]
# Prices in minor units (cents); operators change them with SQL or, later, the admin API.
PLANS = [
    ("free", "Free", 0, "USD", 1, []),
    ("premium_individual", "Premium Individual", 1199, "USD", 1, [f[0] for f in FEATURES]),
    ("premium_duo", "Premium Duo", 1699, "USD", 2, [f[0] for f in FEATURES]),
    ("premium_family", "Premium Family", 1999, "USD", 6, [f[0] for f in FEATURES]),
]


def upgrade() -> None:
    features = sa.table("premium_features", sa.column("id"), sa.column("name"), sa.column("description"))
    plans = sa.table(
        "plans",
        sa.column("id"),
        sa.column("name"),
        sa.column("price_minor"),
        sa.column("currency"),
        sa.column("interval"),
        sa.column("max_members"),
        sa.column("active"),
    )
    plan_features = sa.table("plan_features", sa.column("plan_id"), sa.column("feature_id"))
    op.bulk_insert(features, [{"id": i, "name": n, "description": d} for i, n, d in FEATURES])
    op.bulk_insert(
        plans,
        [
            {
                "id": i,
                "name": n,
                "price_minor": p,
                "currency": c,
                "interval": "month",
                "max_members": m,
                "active": True,
            }
            for i, n, p, c, m, _ in PLANS
        ],
    )
    op.bulk_insert(plan_features, [{"plan_id": i, "feature_id": f} for i, *_, fs in PLANS for f in fs])


def downgrade() -> None:
    op.execute("DELETE FROM plan_features")
    op.execute("DELETE FROM plans")
    op.execute("DELETE FROM premium_features")
