"""The relational schema (SQLAlchemy Core). Changes reach databases through Alembic
migrations only; tests check that the migrations produce exactly this metadata."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
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
