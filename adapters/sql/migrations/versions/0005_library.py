"""Produced audio and a library people come back to: renditions, previews
and re-renders of items, their report and captions, tags and folders,
practices, share links and listening preferences.

Revision ID: 0005_library
Revises: 0004_creation
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005_library"
down_revision = "0004_creation"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine:  # type: ignore[type-arg]
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _time(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _item_columns() -> tuple[sa.Column, ...]:  # type: ignore[type-arg]
    """The columns items gain (fresh objects: a Column belongs to one table)."""
    return (
        sa.Column("folder_id", sa.Uuid, nullable=True),
        sa.Column("background", sa.String(16), nullable=False, server_default=""),
        sa.Column("audio_version", sa.Integer, nullable=False, server_default="0"),
        sa.Column("renditions", _json(), nullable=False, server_default="{}"),
        sa.Column("preview_key", sa.String(300), nullable=False, server_default=""),
        sa.Column("preview_ms", sa.Integer, nullable=False, server_default="0"),
        sa.Column("render_failure_reason", sa.String(64), nullable=False, server_default=""),
        sa.Column("render_request_id", sa.String(128), nullable=False, server_default=""),
        _time("render_started_at", nullable=True),
    )


INDEXES = (
    ("ix_content_items_folder_id", "content_items", ["folder_id"], False),
    ("ix_content_tags_user_id_tag", "content_tags", ["user_id", "tag"], False),
    ("ix_practices_user_id_id", "practices", ["user_id", "id"], False),
    ("ix_folders_user_id_name_key", "folders", ["user_id", "name_key"], True),
    ("ix_shares_content_id", "shares", ["content_id"], False),
)


def upgrade() -> None:
    with op.batch_alter_table("content_items") as batch:
        for column in _item_columns():
            batch.add_column(column)
    # Items rendered before: their one version is the playable one.
    op.execute("UPDATE content_items SET audio_version = version WHERE audio_key <> ''")
    # The defaults were for the rows already there; the application writes
    # every column (as schema.py says).
    with op.batch_alter_table("content_items") as batch:
        for column in _item_columns():
            if column.server_default is not None:
                batch.alter_column(column.name, server_default=None)
    op.create_table(
        "content_tags",
        sa.Column("content_id", sa.Uuid, nullable=False),
        sa.Column("tag", sa.String(40), nullable=False),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.PrimaryKeyConstraint("content_id", "tag", name="pk_content_tags"),
    )
    op.create_table(
        "content_audio",
        sa.Column("content_id", sa.Uuid, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("measurements", _json(), nullable=False),
        sa.Column("silences", _json(), nullable=False),
        sa.Column("waveform", _json(), nullable=False),
        sa.Column("captions", _json(), nullable=False),
        sa.Column("voice", sa.String(64), nullable=False),
        sa.Column("background", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("content_id", name="pk_content_audio"),
    )
    op.create_table(
        "practices",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("content_id", sa.Uuid, nullable=False),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        _time("started_at"),
        _time("completed_at", nullable=True),
        sa.Column("listened_seconds", sa.Float, nullable=False),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("local_date", sa.Date, nullable=False),
        sa.Column("device", sa.String(64), nullable=False),
        sa.Column("context", sa.String(64), nullable=False),
        sa.Column("mood_before", sa.Integer, nullable=True),
        sa.Column("mood_before_words", sa.String(200), nullable=False),
        sa.Column("mood_after", sa.Integer, nullable=True),
        sa.Column("mood_after_words", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_practices"),
    )
    op.create_table(
        "folders",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("display_name", sa.String(60), nullable=False),
        sa.Column("name_key", sa.String(60), nullable=False),
        _time("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_folders"),
    )
    op.create_table(
        "shares",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("content_id", sa.Uuid, nullable=False),
        _time("created_at"),
        _time("expires_at"),
        _time("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_shares"),
    )
    op.create_table(
        "listening_preferences",
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("voice", sa.String(64), nullable=False),
        sa.Column("background", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_listening_preferences"),
    )
    for name, table, columns, unique in INDEXES:
        op.create_index(name, table, columns, unique=unique)
    _tags_of_existing_items()


def _tags_of_existing_items() -> None:
    """`content_tags` rows for the tags items already have."""
    bind = op.get_bind()
    items = sa.table("content_items", sa.column("id", sa.Uuid), sa.column("user_id", sa.Uuid),
                     sa.column("tags", _json()))
    tags = sa.table("content_tags", sa.column("content_id", sa.Uuid),
                    sa.column("tag", sa.String), sa.column("user_id", sa.Uuid))
    rows = [{"content_id": row.id, "user_id": row.user_id, "tag": tag}
            for row in bind.execute(sa.select(items.c.id, items.c.user_id, items.c.tags))
            for tag in dict.fromkeys(row.tags or [])]
    if rows:
        op.bulk_insert(tags, rows)


def downgrade() -> None:
    for name, table, _columns, _unique in reversed(INDEXES):
        op.drop_index(name, table_name=table)
    for table in ("listening_preferences", "shares", "folders", "practices", "content_audio",
                  "content_tags"):
        op.drop_table(table)
    with op.batch_alter_table("content_items") as batch:
        for column in reversed(_item_columns()):
            batch.drop_column(column.name)
