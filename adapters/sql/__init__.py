"""SQL adapters: SQLAlchemy 2 (async) over PostgreSQL (psycopg 3) or SQLite (aiosqlite)."""
