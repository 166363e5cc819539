"""The marketplace's search index: `pack_search` (the documents) and
`pack_search_words` (their vocabulary, for typos), plus the text index of
each dialect, which schema.py's metadata cannot describe:

- PostgreSQL: the pg_trgm extension, a weighted `search_vector` tsvector
  column (title A, tags and creator B, description C; written by the
  adapter, which folds the text first) with a GIN index, and a trigram GIN
  index on the vocabulary;
- SQLite: the FTS5 table `pack_search_fts` (its rowid is pack_search.doc),
  with prefix indexes for two- and three-letter prefixes.

Nothing to backfill: packs reach the index through catalog's events, and
0006 made the packs in the same release.

Revision ID: 0007_search
Revises: 0006_marketplace
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007_search"
down_revision = "0006_marketplace"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_pack_search_doc", "pack_search", ["doc"], True),
    ("ix_pack_search_creator_id", "pack_search", ["creator_id"], False),
    ("ix_pack_search_published_at_pack_id", "pack_search", ["published_at", "pack_id"], False),
    ("ix_pack_search_popularity_published_at_pack_id", "pack_search",
     ["popularity", "published_at", "pack_id"], False),
)


def _json() -> sa.types.TypeEngine:  # type: ignore[type-arg]
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    text_index: list[sa.Column] = []  # type: ignore[type-arg]
    if dialect == "postgresql":
        text_index.append(sa.Column("search_vector", postgresql.TSVECTOR, nullable=False))
    op.create_table(
        "pack_search",
        sa.Column("pack_id", sa.Uuid, nullable=False),
        sa.Column("doc", sa.BigInteger, nullable=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("creator_id", sa.Uuid, nullable=False),
        sa.Column("creator_name", sa.Text, nullable=False),
        sa.Column("tags", _json(), nullable=False),
        sa.Column("content_types", _json(), nullable=False),
        sa.Column("price_type", sa.String(16), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("popularity", sa.Integer, nullable=False),
        sa.Column("words", sa.Text, nullable=False),
        *text_index,
        sa.PrimaryKeyConstraint("pack_id", name="pk_pack_search"),
    )
    op.create_table(
        "pack_search_words",
        sa.Column("word", sa.Text, nullable=False),
        sa.Column("documents", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("word", name="pk_pack_search_words"),
    )
    for name, table, columns, unique in INDEXES:
        op.create_index(name, table, columns, unique=unique)
    if dialect == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute("CREATE INDEX ix_pack_search_search_vector ON pack_search "
                   "USING gin (search_vector)")
        op.execute("CREATE INDEX ix_pack_search_words_word_trgm ON pack_search_words "
                   "USING gin (word gin_trgm_ops)")
    elif dialect == "sqlite":
        op.execute("CREATE VIRTUAL TABLE pack_search_fts USING fts5("
                   "title, tags, creator_name, description, "
                   "tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3')")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE pack_search_fts")
    # PostgreSQL's text indexes go with their tables; pg_trgm stays, as other
    # things may have come to use it.
    for name, table, _columns, _unique in reversed(INDEXES):
        op.drop_index(name, table_name=table)
    op.drop_table("pack_search_words")
    op.drop_table("pack_search")
