"""The outbox keeps the trace context of the transaction that wrote each event.

Revision ID: 0002_outbox_traceparent
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_outbox_traceparent"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: a plain ADD COLUMN on SQLite and PostgreSQL alike
    # (no table rewrite); rows written before it have no trace.
    op.add_column("outbox", sa.Column("traceparent", sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("traceparent")
