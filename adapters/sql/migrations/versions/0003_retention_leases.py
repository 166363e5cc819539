"""Scheduled jobs: the leases that elect one runner per job, and the indexes
the hold sweep and the retention jobs find their rows by.

Plain CREATE INDEX (inside the migration's transaction): it blocks writes to
the table while it builds, which is brief at this stage of the tables' lives.

Revision ID: 0003_retention_leases
Revises: 0002_outbox_traceparent
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_retention_leases"
down_revision = "0002_outbox_traceparent"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_audit_logs_created_at", "audit_logs", ["created_at"]),
    ("ix_credit_holds_state_created_at", "credit_holds", ["state", "created_at"]),
    ("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"]),
    ("ix_processed_events_processed_at", "processed_events", ["processed_at"]),
)


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_leases"),
    )
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
    op.drop_table("leases")
