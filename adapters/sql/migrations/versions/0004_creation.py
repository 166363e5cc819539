"""Creation: a person's content items (library), conversations kept for
personalisation and live ones (sessions, when there is no Redis), the AI
history of text generation and audio's renders.

Revision ID: 0004_creation
Revises: 0003_retention_leases
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004_creation"
down_revision = "0003_retention_leases"
branch_labels = None
depends_on = None


def _json(*, none_as_null: bool = False) -> sa.types.TypeEngine:  # type: ignore[type-arg]
    return sa.JSON(none_as_null=none_as_null).with_variant(
        postgresql.JSONB(none_as_null=none_as_null), "postgresql")


def _time(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


INDEXES = (
    ("ix_content_items_user_id_id", "content_items", ["user_id", "id"], False),
    ("ix_content_items_request_id", "content_items", ["request_id"], True),
    ("ix_content_items_state_updated_at", "content_items", ["state", "updated_at"], False),
    ("ix_conversations_user_id", "conversations", ["user_id"], False),
    ("ix_sessions_expires_at", "sessions", ["expires_at"], False),
    ("ix_ai_history_created_at", "ai_history", ["created_at"], False),
    ("ix_ai_history_user_id_created_at", "ai_history", ["user_id", "created_at"], False),
)


def upgrade() -> None:
    op.create_table(
        "content_items",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("failure_reason", sa.String(64), nullable=False),
        sa.Column("failure_message", sa.String(500), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("structure", _json(none_as_null=True), nullable=True),
        sa.Column("script", _json(none_as_null=True), nullable=True),
        sa.Column("depth", sa.String(16), nullable=False),
        sa.Column("tags", _json(), nullable=False),
        sa.Column("brief", _json(), nullable=False),
        sa.Column("voice", sa.String(64), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("conversation_id", sa.Uuid, nullable=True),
        sa.Column("hold_id", sa.Uuid, nullable=True),
        sa.Column("cost", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("audio_key", sa.String(300), nullable=False),
        sa.Column("audio_mime_type", sa.String(64), nullable=False),
        sa.Column("audio_duration_ms", sa.Integer, nullable=False),
        sa.Column("audio_bytes", sa.Integer, nullable=False),
        sa.Column("play_count", sa.Integer, nullable=False),
        _time("last_played_at", nullable=True),
        _time("created_at"),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_content_items"),
    )
    op.create_table(
        "conversations",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("document", _json(), nullable=False),
        sa.Column("resulting_content_id", sa.Uuid, nullable=True),
        _time("created_at"),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_conversations"),
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("document", sa.LargeBinary, nullable=False),
        _time("expires_at"),
        sa.PrimaryKeyConstraint("id", name="pk_sessions"),
    )
    op.create_table(
        "ai_history",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("request_id", sa.String(200), nullable=False),
        sa.Column("template", sa.String(64), nullable=False),
        sa.Column("template_version", sa.String(16), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        sa.Column("latency_ms", sa.Integer, nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        _time("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_ai_history"),
    )
    op.create_table(
        "audio_renders",
        sa.Column("content_id", sa.Uuid, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("object_key", sa.String(300), nullable=False),
        sa.Column("mime_type", sa.String(64), nullable=False),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.Column("bytes", sa.Integer, nullable=False),
        sa.Column("render_ms", sa.Integer, nullable=False),
        _time("created_at"),
        sa.PrimaryKeyConstraint("content_id", "version", name="pk_audio_renders"),
    )
    for name, table, columns, unique in INDEXES:
        op.create_index(name, table, columns, unique=unique)


def downgrade() -> None:
    for name, table, _columns, _unique in reversed(INDEXES):
        op.drop_index(name, table_name=table)
    for table in ("audio_renders", "ai_history", "sessions", "conversations", "content_items"):
        op.drop_table(table)
