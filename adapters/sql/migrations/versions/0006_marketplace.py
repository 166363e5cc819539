"""The marketplace: creators, packs and their items, entitlements and the
search state (catalog); checkout sessions, purchases and Stripe events
(payments); reward accounts and transactions (rewards).

Revision ID: 0006_marketplace
Revises: 0005_library
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006_marketplace"
down_revision = "0005_library"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine:  # type: ignore[type-arg]
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _time(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


INDEXES = (
    ("ix_packs_creator_id_request_id", "packs", ["creator_id", "request_id"], True),
    ("ix_pack_items_content_id", "pack_items", ["content_id"], False),
    ("ix_entitlements_user_id_pack_id_reference", "entitlements",
     ["user_id", "pack_id", "reference"], True),
    ("ix_entitlements_reference", "entitlements", ["reference"], False),
    ("ix_catalog_completions_user_id_completed_at", "catalog_completions",
     ["user_id", "completed_at"], False),
    ("ix_catalog_completions_completed_at", "catalog_completions", ["completed_at"], False),
    ("ix_checkout_sessions_user_id_request_id", "checkout_sessions",
     ["user_id", "request_id"], True),
    ("ix_purchases_user_id_id", "purchases", ["user_id", "id"], False),
    ("ix_purchases_payment_intent", "purchases", ["payment_intent"], False),
    ("ix_stripe_events_received_at", "stripe_events", ["received_at"], False),
    ("ix_subscriptions_user_id_id", "subscriptions", ["user_id", "id"], False),
    ("ix_reward_transactions_purchase_id_type", "reward_transactions",
     ["purchase_id", "type"], True),
    ("ix_reward_transactions_creator_id_id", "reward_transactions", ["creator_id", "id"], False),
    ("ix_member_plays_user_id_played_at", "member_plays", ["user_id", "played_at"], False),
)


def upgrade() -> None:
    op.create_table(
        "creators",
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("display_name", sa.String(60), nullable=False),
        sa.Column("bio", sa.String(1000), nullable=False),
        sa.Column("links", _json(), nullable=False),
        _time("created_at"), _time("updated_at"),
        sa.PrimaryKeyConstraint("user_id", name="pk_creators"),
    )
    op.create_table(
        "packs",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("creator_id", sa.Uuid, nullable=False),
        sa.Column("title", sa.String(120), nullable=False),
        sa.Column("description", sa.String(2000), nullable=False),
        sa.Column("price_type", sa.String(16), nullable=False),
        sa.Column("price_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("interval", sa.String(8), nullable=True),
        sa.Column("tags", _json(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("popularity", sa.BigInteger, nullable=False),
        sa.Column("indexed_popularity", sa.BigInteger, nullable=False),
        _time("created_at"), _time("updated_at"),
        _time("published_at", nullable=True), _time("archived_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_packs"),
        sa.CheckConstraint("price_minor >= 0", name="ck_packs_price_not_negative"),
    )
    op.create_table(
        "pack_items",
        sa.Column("pack_id", sa.Uuid, nullable=False),
        sa.Column("content_id", sa.Uuid, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("title", sa.String(120), nullable=False),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("pack_id", "content_id", name="pk_pack_items"),
        sa.ForeignKeyConstraint(["pack_id"], ["packs.id"], ondelete="CASCADE",
                                name="fk_pack_items_pack_id_packs"),
    )
    op.create_table(
        "entitlements",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("pack_id", sa.Uuid, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("reference", sa.String(128), nullable=False),
        _time("granted_at"), _time("expires_at", nullable=True),
        _time("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_entitlements"),
    )
    op.create_table(
        "pack_uploads",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("pack_id", sa.Uuid, nullable=False),
        sa.Column("creator_id", sa.Uuid, nullable=False),
        sa.Column("title", sa.String(120), nullable=False),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("object_key", sa.String(300), nullable=False),
        _time("created_at"), _time("expires_at"),
        sa.Column("content_id", sa.Uuid, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_pack_uploads"),
    )
    op.create_table(
        "catalog_completions",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("content_id", sa.Uuid, nullable=False),
        sa.Column("pack_id", sa.Uuid, nullable=True),
        sa.Column("content_type", sa.String(32), nullable=False),
        _time("completed_at"),
        sa.Column("local_hour", sa.Integer, nullable=True),
        sa.Column("tags", _json(), nullable=False),
        sa.Column("title", sa.String(120), nullable=False),
        sa.Column("mood_before", sa.Integer, nullable=True),
        sa.Column("mood_after", sa.Integer, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_catalog_completions"),
    )
    op.create_table(
        "search_state",
        sa.Column("id", sa.Integer, autoincrement=False, nullable=False),
        sa.Column("generation", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_search_state"),
    )
    op.create_table(
        "checkout_sessions",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("pack_id", sa.Uuid, nullable=True),
        sa.Column("creator_id", sa.Uuid, nullable=True),
        sa.Column("bundle_id", sa.String(32), nullable=True),
        sa.Column("credits", sa.Integer, nullable=False),
        sa.Column("product_name", sa.String(200), nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("provider_id", sa.String(255), nullable=False),
        sa.Column("url", sa.String(1000), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("purchase_id", sa.Uuid, nullable=True),
        sa.Column("plan_id", sa.String(32), nullable=True),
        sa.Column("interval", sa.String(8), nullable=True),
        _time("created_at"), _time("expires_at"),
        sa.PrimaryKeyConstraint("id", name="pk_checkout_sessions"),
    )
    op.create_table(
        "purchases",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("checkout_id", sa.Uuid, nullable=False),
        sa.Column("pack_id", sa.Uuid, nullable=True),
        sa.Column("creator_id", sa.Uuid, nullable=True),
        sa.Column("bundle_id", sa.String(32), nullable=True),
        sa.Column("credits", sa.Integer, nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("payment_intent", sa.String(255), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        _time("created_at"), _time("refunded_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_purchases"),
        sa.UniqueConstraint("checkout_id", name="uq_purchases_checkout_id"),
    )
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("plan_id", sa.String(32), nullable=False),
        sa.Column("provider_id", sa.String(255), nullable=False),
        sa.Column("checkout_id", sa.Uuid, nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        _time("current_period_end"),
        sa.Column("cancel_at_period_end", sa.Boolean, nullable=False),
        _time("created_at"), _time("updated_at"),
        sa.Column("pack_id", sa.Uuid, nullable=True),
        sa.Column("creator_id", sa.Uuid, nullable=True),
        sa.Column("interval", sa.String(8), nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_subscriptions"),
        sa.UniqueConstraint("provider_id", name="uq_subscriptions_provider_id"),
    )
    op.create_table(
        "stripe_events",
        sa.Column("id", sa.String(255), nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        _time("received_at"),
        sa.PrimaryKeyConstraint("id", name="pk_stripe_events"),
    )
    op.create_table(
        "reward_accounts",
        sa.Column("creator_id", sa.Uuid, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("balance", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("creator_id", "currency", name="pk_reward_accounts"),
        sa.CheckConstraint("balance >= 0", name="ck_reward_accounts_balance_not_negative"),
    )
    op.create_table(
        "reward_transactions",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("creator_id", sa.Uuid, nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("tokens", sa.BigInteger, nullable=False),
        sa.Column("balance_after", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("purchase_id", sa.Uuid, nullable=False),
        sa.Column("sale_amount", sa.BigInteger, nullable=False),
        _time("created_at"),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("plays", sa.Integer, nullable=False),
        sa.Column("total_plays", sa.Integer, nullable=False),
        sa.Column("share_percent", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_reward_transactions"),
        sa.CheckConstraint("balance_after >= 0",
                           name="ck_reward_transactions_balance_after_not_negative"),
    )
    op.create_table(
        "member_plays",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("creator_id", sa.Uuid, nullable=False),
        _time("played_at"),
        sa.PrimaryKeyConstraint("id", name="pk_member_plays"),
    )
    for name, table, columns, unique in INDEXES:
        op.create_index(name, table, columns, unique=unique)


def downgrade() -> None:
    for name, table, _, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
    for table in ("member_plays", "reward_transactions", "reward_accounts", "stripe_events",
                  "subscriptions", "purchases", "checkout_sessions", "search_state",
                  "catalog_completions", "pack_uploads",
                  "entitlements", "pack_items", "packs", "creators"):
        op.drop_table(table)
