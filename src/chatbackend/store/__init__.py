"""Server-side storage: SQLAlchemy 2 (async) on SQLite or PostgreSQL, Alembic migrations."""

from chatbackend.store.configured import open_configured_database
from chatbackend.store.database import Database, open_database

__all__ = ["Database", "open_configured_database", "open_database"]
