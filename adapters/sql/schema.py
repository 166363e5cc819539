"""The relational schema (SQLAlchemy Core). Changes reach databases through Alembic
migrations only; tests check that the migrations produce exactly this metadata."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    TypeDecorator,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect

metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})


class Timestamp(TypeDecorator[datetime]):
    """A point in time, stored in UTC and always read back timezone-aware (UTC).

    SQLite keeps no zone, so the value is stored as naive UTC there; PostgreSQL uses
    timestamptz. Naive datetimes are refused: they are a bug upstream."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware UTC time")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def json_type(*, none_as_null: bool = False) -> Any:
    """JSON, stored as JSONB on PostgreSQL."""
    return JSON(none_as_null=none_as_null).with_variant(
        JSONB(none_as_null=none_as_null), "postgresql")


users = Table(
    "users", metadata,
    Column("id", Uuid, primary_key=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("display_name", String(100), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("roles", json_type(), nullable=False),
    Column("preferences", json_type(), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
)

refresh_tokens = Table(
    "refresh_tokens", metadata,
    Column("id", Uuid, primary_key=True),
    Column("family_id", Uuid, nullable=False, index=True),
    Column("user_id", Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Column("used_at", Timestamp, nullable=True),
    Column("revoked_at", Timestamp, nullable=True),
)

audit_logs = Table(
    "audit_logs", metadata,
    Column("id", Uuid, primary_key=True),
    Column("action", String(64), nullable=False),
    Column("user_id", Uuid, nullable=True, index=True),
    Column("request_id", String(128), nullable=False),
    Column("details", json_type(), nullable=False),
    Column("created_at", Timestamp, nullable=False),
)
#: Retention: the oldest entries are found and deleted by this index.
Index("ix_audit_logs_created_at", audit_logs.c.created_at)

outbox = Table(
    "outbox", metadata,
    Column("event_id", Uuid, primary_key=True),
    Column("topic", String(200), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("published_at", Timestamp, nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", Timestamp, nullable=False),
    Column("last_error", Text, nullable=True),
    #: W3C traceparent of the transaction that wrote the event (NULL: none).
    Column("traceparent", String(128), nullable=True),
)
Index("ix_outbox_pending", outbox.c.published_at, outbox.c.next_attempt_at)

credit_accounts = Table(
    "credit_accounts", metadata,
    Column("user_id", Uuid, primary_key=True),
    Column("balance", BigInteger, nullable=False),
    Column("held", BigInteger, nullable=False),
    CheckConstraint("balance >= 0", name="balance_not_negative"),
    CheckConstraint("held >= 0", name="held_not_negative"),
    CheckConstraint("held <= balance", name="held_within_balance"),
)

credit_holds = Table(
    "credit_holds", metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, nullable=False, index=True),
    Column("amount", BigInteger, nullable=False),
    Column("state", String(16), nullable=False),
    Column("reason", String(200), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("resolved_at", Timestamp, nullable=True),
    CheckConstraint("amount > 0", name="amount_positive"),
)
#: The sweep of expired holds: active holds by age.
Index("ix_credit_holds_state_created_at", credit_holds.c.state, credit_holds.c.created_at)

credit_transactions = Table(
    "credit_transactions", metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, nullable=False),
    Column("type", String(16), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("balance_after", BigInteger, nullable=False),
    Column("reason", String(200), nullable=False),
    Column("hold_id", Uuid, ForeignKey("credit_holds.id"), nullable=True),
    Column("request_id", String(128), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("metadata", json_type(none_as_null=True), nullable=True),
    CheckConstraint("balance_after >= 0", name="balance_after_not_negative"),
)
Index("ix_credit_transactions_user_id_id", credit_transactions.c.user_id,
      credit_transactions.c.id)

idempotency_keys = Table(
    "idempotency_keys", metadata,
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("result", json_type(none_as_null=True), nullable=True),
    Column("created_at", Timestamp, nullable=False),
)
Index("ix_idempotency_keys_created_at", idempotency_keys.c.created_at)

processed_events = Table(
    "processed_events", metadata,
    Column("consumer", String(100), nullable=False),
    Column("event_id", Uuid, nullable=False),
    Column("processed_at", Timestamp, nullable=False),
    PrimaryKeyConstraint("consumer", "event_id"),
)
Index("ix_processed_events_processed_at", processed_events.c.processed_at)

#: Named leases with an expiry (ports.common.Leases): which process runs a
#: scheduled job. A holder that dies stops renewing; its lease then expires.
leases = Table(
    "leases", metadata,
    Column("name", String(200), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("expires_at", Timestamp, nullable=False),
)

# --- creation (issue 8): library, conversation, content, audio ---

#: A person's content items (library). The creation pipeline moves `state`:
#: generating_text -> rendering_audio -> ready | failed.
content_items = Table(
    "content_items", metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, nullable=False),
    Column("content_type", String(32), nullable=False),
    Column("state", String(32), nullable=False),
    Column("failure_reason", String(64), nullable=False, default=""),
    Column("failure_message", String(500), nullable=False, default=""),
    Column("title", String(200), nullable=False, default=""),
    Column("text", Text, nullable=False, default=""),
    Column("structure", json_type(none_as_null=True), nullable=True),
    Column("script", json_type(none_as_null=True), nullable=True),
    Column("depth", String(16), nullable=False, default=""),
    Column("tags", json_type(), nullable=False),
    Column("brief", json_type(), nullable=False),
    Column("voice", String(64), nullable=False, default=""),
    Column("model", String(128), nullable=False, default=""),
    Column("request_id", String(128), nullable=False),
    Column("conversation_id", Uuid, nullable=True),
    Column("hold_id", Uuid, nullable=True),
    Column("cost", Integer, nullable=False),
    Column("version", Integer, nullable=False, default=1),
    Column("audio_key", String(300), nullable=False, default=""),
    Column("audio_mime_type", String(64), nullable=False, default=""),
    Column("audio_duration_ms", Integer, nullable=False, default=0),
    Column("audio_bytes", Integer, nullable=False, default=0),
    Column("play_count", Integer, nullable=False, default=0),
    Column("last_played_at", Timestamp, nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Column("folder_id", Uuid, nullable=True),
    Column("background", String(16), nullable=False, default=""),
    Column("audio_version", Integer, nullable=False, default=0),
    Column("renditions", json_type(), nullable=False),
    Column("preview_key", String(300), nullable=False, default=""),
    Column("preview_ms", Integer, nullable=False, default=0),
    Column("render_failure_reason", String(64), nullable=False, default=""),
    Column("render_request_id", String(128), nullable=False, default=""),
    Column("render_started_at", Timestamp, nullable=True),
)
#: A folder's items.
Index("ix_content_items_folder_id", content_items.c.folder_id)
#: The library list (newest first) and the rate limit (a user's recent items).
Index("ix_content_items_user_id_id", content_items.c.user_id, content_items.c.id)
#: One item per creation request: a retried confirm finds the first.
Index("ix_content_items_request_id", content_items.c.request_id, unique=True)
#: The sweep of creations stuck mid-pipeline.
Index("ix_content_items_state_updated_at", content_items.c.state, content_items.c.updated_at)

#: Tags of items, one row each (filtering and counting by tag in SQL on both
#: dialects); kept in step with `content_items.tags` by the repository.
content_tags = Table(
    "content_tags", metadata,
    Column("content_id", Uuid, nullable=False),
    Column("tag", String(40), nullable=False),
    Column("user_id", Uuid, nullable=False),
    PrimaryKeyConstraint("content_id", "tag"),
)
Index("ix_content_tags_user_id_tag", content_tags.c.user_id, content_tags.c.tag)

#: The report and captions of each item's playable version.
content_audio = Table(
    "content_audio", metadata,
    Column("content_id", Uuid, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("measurements", json_type(), nullable=False),
    Column("silences", json_type(), nullable=False),
    Column("waveform", json_type(), nullable=False),
    Column("captions", json_type(), nullable=False),
    Column("voice", String(64), nullable=False, default=""),
    Column("background", String(16), nullable=False, default=""),
)

#: The seed's practice events: one listening of an item each.
practices = Table(
    "practices", metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, nullable=False),
    Column("content_id", Uuid, nullable=False),
    Column("content_type", String(32), nullable=False),
    Column("state", String(16), nullable=False),
    Column("started_at", Timestamp, nullable=False),
    Column("completed_at", Timestamp, nullable=True),
    Column("listened_seconds", Float, nullable=False, default=0.0),
    Column("time_zone", String(64), nullable=False),
    Column("local_date", Date, nullable=False),
    Column("device", String(64), nullable=False, default=""),
    Column("context", String(64), nullable=False, default=""),
    Column("mood_before", Integer, nullable=True),
    Column("mood_before_words", String(200), nullable=False, default=""),
    Column("mood_after", Integer, nullable=True),
    Column("mood_after_words", String(200), nullable=False, default=""),
)
Index("ix_practices_user_id_id", practices.c.user_id, practices.c.id)

folders = Table(
    "folders", metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, nullable=False),
    Column("display_name", String(60), nullable=False),
    #: The name case-folded: one folder per name per person, whatever the case.
    Column("name_key", String(60), nullable=False),
    Column("created_at", Timestamp, nullable=False),
)
Index("ix_folders_user_id_name_key", folders.c.user_id, folders.c.name_key, unique=True)

shares = Table(
    "shares", metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, nullable=False),
    Column("content_id", Uuid, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Column("revoked_at", Timestamp, nullable=True),
)
Index("ix_shares_content_id", shares.c.content_id)

listening_preferences = Table(
    "listening_preferences", metadata,
    Column("user_id", Uuid, primary_key=True),
    Column("voice", String(64), nullable=False, default=""),
    Column("background", String(16), nullable=False, default=""),
)

#: Live conversations when neither Redis nor memory:// holds them: the
#: embedded mode's worker processes share them through the database.
sessions = Table(
    "sessions", metadata,
    Column("id", Uuid, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("document", LargeBinary, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
)
Index("ix_sessions_expires_at", sessions.c.expires_at)

#: Conversations, kept for personalisation once started (conversation).
conversations = Table(
    "conversations", metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, nullable=False),
    Column("state", String(32), nullable=False),
    Column("document", json_type(), nullable=False),
    Column("resulting_content_id", Uuid, nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
)
Index("ix_conversations_user_id", conversations.c.user_id)

#: One row per call to a text model (content); no prompt text, no secrets.
ai_history = Table(
    "ai_history", metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, nullable=False),
    Column("request_id", String(200), nullable=False),
    Column("template", String(64), nullable=False),
    Column("template_version", String(16), nullable=False),
    Column("model", String(128), nullable=False),
    Column("input_tokens", Integer, nullable=False),
    Column("output_tokens", Integer, nullable=False),
    Column("latency_ms", Integer, nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("created_at", Timestamp, nullable=False),
)
Index("ix_ai_history_created_at", ai_history.c.created_at)
Index("ix_ai_history_user_id_created_at", ai_history.c.user_id, ai_history.c.created_at)

#: Finished renders (audio), one per (content, version): a redelivered job
#: finds its render done and does not upload or announce it twice.
audio_renders = Table(
    "audio_renders", metadata,
    Column("content_id", Uuid, nullable=False),
    Column("version", Integer, nullable=False),
    Column("user_id", Uuid, nullable=False),
    Column("object_key", String(300), nullable=False),
    Column("mime_type", String(64), nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("bytes", Integer, nullable=False),
    Column("render_ms", Integer, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    PrimaryKeyConstraint("content_id", "version"),
)

# --- the marketplace (issue 10): catalog, payments, rewards ---

#: Creator profiles (catalog): one per person who became a creator.
creators = Table(
    "creators", metadata,
    Column("user_id", Uuid, primary_key=True),
    Column("display_name", String(60), nullable=False),
    Column("bio", String(1000), nullable=False),
    Column("links", json_type(), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
)

#: Marketplace packs (the seed's `ritual_packs`). Money: integer minor units
#: plus an ISO 4217 currency.
packs = Table(
    "packs", metadata,
    Column("id", Uuid, primary_key=True),
    Column("creator_id", Uuid, nullable=False),
    Column("title", String(120), nullable=False),
    Column("description", String(2000), nullable=False),
    Column("price_type", String(16), nullable=False),
    Column("price_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    #: A subscription pack's renewal (`month`, `year`); NULL otherwise.
    Column("interval", String(8), nullable=True),
    Column("tags", json_type(), nullable=False),
    Column("state", String(16), nullable=False),
    #: CreatePack's idempotency key (NULL when none: NULLs never collide).
    Column("request_id", String(128), nullable=True),
    Column("popularity", BigInteger, nullable=False),
    #: The popularity the search index last got.
    Column("indexed_popularity", BigInteger, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Column("published_at", Timestamp, nullable=True),
    Column("archived_at", Timestamp, nullable=True),
    CheckConstraint("price_minor >= 0", name="price_not_negative"),
)
Index("ix_packs_creator_id_request_id", packs.c.creator_id, packs.c.request_id, unique=True)

pack_items = Table(
    "pack_items", metadata,
    Column("pack_id", Uuid, ForeignKey("packs.id", ondelete="CASCADE"), nullable=False),
    Column("content_id", Uuid, nullable=False),
    Column("position", Integer, nullable=False),
    Column("title", String(120), nullable=False),
    Column("content_type", String(32), nullable=False),
    Column("duration_ms", Integer, nullable=False),
    PrimaryKeyConstraint("pack_id", "content_id"),
)
#: CheckAccess: the packs holding an item.
Index("ix_pack_items_content_id", pack_items.c.content_id)

#: Who may play which pack, given by what (`reference`: a purchase, a
#: subscription, a grant's request id), until when, or revoked.
entitlements = Table(
    "entitlements", metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, nullable=False),
    Column("pack_id", Uuid, nullable=False),
    Column("source", String(16), nullable=False),
    Column("reference", String(128), nullable=False),
    Column("granted_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=True),
    Column("revoked_at", Timestamp, nullable=True),
)
Index("ix_entitlements_user_id_pack_id_reference", entitlements.c.user_id,
      entitlements.c.pack_id, entitlements.c.reference, unique=True)
Index("ix_entitlements_reference", entitlements.c.reference)

#: Recordings creators upload into packs (catalog).
pack_uploads = Table(
    "pack_uploads", metadata,
    Column("id", Uuid, primary_key=True),
    Column("pack_id", Uuid, nullable=False),
    Column("creator_id", Uuid, nullable=False),
    Column("title", String(120), nullable=False),
    Column("content_type", String(32), nullable=False),
    Column("object_key", String(300), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Column("content_id", Uuid, nullable=True),
)

#: Completed practices as recommendations read them (catalog's read model of
#: library's practice.completed).
catalog_completions = Table(
    "catalog_completions", metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, nullable=False),
    Column("content_id", Uuid, nullable=False),
    Column("pack_id", Uuid, nullable=True),
    Column("content_type", String(32), nullable=False),
    Column("completed_at", Timestamp, nullable=False),
    Column("local_hour", Integer, nullable=True),
    Column("tags", json_type(), nullable=False),
    Column("title", String(120), nullable=False),
    Column("mood_before", Integer, nullable=True),
    Column("mood_after", Integer, nullable=True),
)
Index("ix_catalog_completions_user_id_completed_at", catalog_completions.c.user_id,
      catalog_completions.c.completed_at)
Index("ix_catalog_completions_completed_at", catalog_completions.c.completed_at)

#: One row: a number moved whenever the search index changes (cached search
#: results carry it).
search_state = Table(
    "search_state", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("generation", BigInteger, nullable=False),
)

#: Payments in progress (payments).
checkout_sessions = Table(
    "checkout_sessions", metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, nullable=False),
    Column("pack_id", Uuid, nullable=True),
    Column("creator_id", Uuid, nullable=True),
    Column("bundle_id", String(32), nullable=True),
    Column("credits", Integer, nullable=False),
    Column("product_name", String(200), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("provider_id", String(255), nullable=False),
    Column("url", String(1000), nullable=False),
    Column("request_id", String(128), nullable=True),
    Column("purchase_id", Uuid, nullable=True),
    Column("plan_id", String(32), nullable=True),
    Column("interval", String(8), nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
)
Index("ix_checkout_sessions_user_id_request_id", checkout_sessions.c.user_id,
      checkout_sessions.c.request_id, unique=True)

#: What people paid for: one per completed checkout session.
purchases = Table(
    "purchases", metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, nullable=False),
    Column("checkout_id", Uuid, nullable=False, unique=True),
    Column("pack_id", Uuid, nullable=True),
    Column("creator_id", Uuid, nullable=True),
    Column("bundle_id", String(32), nullable=True),
    Column("credits", Integer, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("payment_intent", String(255), nullable=True),
    Column("state", String(16), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("refunded_at", Timestamp, nullable=True),
)
Index("ix_purchases_user_id_id", purchases.c.user_id, purchases.c.id)
Index("ix_purchases_payment_intent", purchases.c.payment_intent)

#: Memberships: one row per provider subscription.
subscriptions = Table(
    "subscriptions", metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, nullable=False),
    Column("plan_id", String(32), nullable=False),
    Column("provider_id", String(255), nullable=False, unique=True),
    Column("checkout_id", Uuid, nullable=True),
    Column("state", String(16), nullable=False),
    Column("current_period_end", Timestamp, nullable=False),
    Column("cancel_at_period_end", Boolean, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    #: A subscription to one pack (NULL: the membership), and its creator.
    Column("pack_id", Uuid, nullable=True),
    Column("creator_id", Uuid, nullable=True),
    Column("interval", String(8), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
)
Index("ix_subscriptions_user_id_id", subscriptions.c.user_id, subscriptions.c.id)

#: Stripe webhook events received: the id deduplicates deliveries.
stripe_events = Table(
    "stripe_events", metadata,
    Column("id", String(255), primary_key=True),
    Column("type", String(100), nullable=False),
    Column("received_at", Timestamp, nullable=False),
)
Index("ix_stripe_events_received_at", stripe_events.c.received_at)

#: Creators' reward balances, one per currency (rewards).
reward_accounts = Table(
    "reward_accounts", metadata,
    Column("creator_id", Uuid, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("balance", BigInteger, nullable=False),
    PrimaryKeyConstraint("creator_id", "currency"),
    CheckConstraint("balance >= 0", name="balance_not_negative"),
)

#: The reward ledger: accruals and reversals, each with the balance after it.
reward_transactions = Table(
    "reward_transactions", metadata,
    Column("id", Uuid, primary_key=True),
    Column("creator_id", Uuid, nullable=False),
    Column("type", String(16), nullable=False),
    Column("tokens", BigInteger, nullable=False),
    Column("balance_after", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("purchase_id", Uuid, nullable=False),
    Column("sale_amount", BigInteger, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    #: A membership share's provider payment ("" for a sale).
    Column("source", String(255), nullable=False),
    Column("plays", Integer, nullable=False),
    Column("total_plays", Integer, nullable=False),
    Column("share_percent", Integer, nullable=False),
    CheckConstraint("balance_after >= 0", name="balance_after_not_negative"),
)
#: One accrual and at most one reversal per purchase.
Index("ix_reward_transactions_purchase_id_type", reward_transactions.c.purchase_id,
      reward_transactions.c.type, unique=True)
Index("ix_reward_transactions_creator_id_id", reward_transactions.c.creator_id,
      reward_transactions.c.id)

#: Members' plays of members-only items, by creator (rewards): what a
#: membership fee is shared by.
member_plays = Table(
    "member_plays", metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, nullable=False),
    Column("creator_id", Uuid, nullable=False),
    Column("played_at", Timestamp, nullable=False),
)
Index("ix_member_plays_user_id_played_at", member_plays.c.user_id, member_plays.c.played_at)

#: The marketplace's search documents (adapters/sql/search.py), kept from
#: catalog's events: what is filtered and ordered on, and the text. The text
#: index itself is made by migration 0007 outside this metadata, being
#: dialect-specific: on PostgreSQL a weighted tsvector column of this table
#: with a GIN index; on SQLite the FTS5 table `pack_search_fts`, whose rowid
#: is `doc` (NULL on PostgreSQL).
pack_search = Table(
    "pack_search", metadata,
    Column("pack_id", Uuid, primary_key=True),
    Column("doc", BigInteger, nullable=True),
    Column("title", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("creator_id", Uuid, nullable=False),
    Column("creator_name", Text, nullable=False),
    Column("tags", json_type(), nullable=False),
    Column("content_types", json_type(), nullable=False),
    Column("price_type", String(16), nullable=False),
    Column("published_at", Timestamp, nullable=False),
    Column("popularity", Integer, nullable=False),
    #: The document's distinct words (folded, space-separated): what it
    #: added to `pack_search_words`, taken back when it changes or goes.
    Column("words", Text, nullable=False),
)
Index("ix_pack_search_doc", pack_search.c.doc, unique=True)
Index("ix_pack_search_creator_id", pack_search.c.creator_id)
Index("ix_pack_search_published_at_pack_id", pack_search.c.published_at,
      pack_search.c.pack_id)
Index("ix_pack_search_popularity_published_at_pack_id", pack_search.c.popularity,
      pack_search.c.published_at, pack_search.c.pack_id)

#: Every word of the search documents and how many hold it: the vocabulary
#: a misspelt query word is corrected against (on PostgreSQL through a
#: pg_trgm GIN index, made by migration 0007).
pack_search_words = Table(
    "pack_search_words", metadata,
    Column("word", Text, primary_key=True),
    Column("documents", Integer, nullable=False),
)
