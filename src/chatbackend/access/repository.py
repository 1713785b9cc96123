"""The API keys' table and the repository over it (domain ``KeyRecord``s in and out)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, select, update
from sqlalchemy.orm import Mapped, mapped_column

from chatbackend.access.keys import DatabaseKeys, KeyRecord
from chatbackend.retrieval.sqlite_driver import sqlite_module
from chatbackend.settings import Settings
from chatbackend.store import Database
from chatbackend.store.models import Base
from chatbackend.store.types import UTCDateTime, utcnow


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    requests_per_minute: Mapped[int | None]
    tokens_per_minute: Mapped[int | None]


class SqlKeyRepository:
    def __init__(self, database: Database) -> None:
        self.database = database
        self._reader: Any = None  # the store's sqlite3 (or pysqlite3) connection

    async def get(self, key_id: str) -> KeyRecord | None:
        """Every request's key check. On a SQLite file it is one query on a plain DB-API
        connection in the event loop: a read by primary key on a WAL database takes about ten
        microseconds and never waits for a writer, where aiosqlite hands the query to its thread
        eight times (connection, cursor, execute, fetch, rollback, ...), each hand-off a wait
        for the loop under load, and a SQLAlchemy connection per check costs some 150 us of
        pool checkout, execution context and reset. The connection is in autocommit mode, so
        every read sees the newest committed key (a key revoked by another process included)."""
        reader = self._sqlite_reader()
        if reader is not None:
            found = reader.execute(_BY_ID_SQLITE, (key_id,)).fetchone()
            return _sqlite_record(found) if found is not None else None
        async with self.database.reading() as session:
            row = await session.get(ApiKeyRow, key_id)
            return _record(row) if row is not None else None

    def _sqlite_reader(self) -> Any:
        if self._reader is None:
            url = self.database.engine.url
            name = url.database or ""
            if url.get_backend_name() != "sqlite" or not name or name == ":memory:":
                return None
            if name.startswith("file:"):
                return None
            # Readers never block on a WAL database; the timeout only covers its recovery.
            # The very SQLite library the store's engine uses: two copies of SQLite in one
            # process do not see each other's POSIX locks, and one closing the file would drop
            # the other's (sqlite.org/howtocorrupt.html, "multiple copies of SQLite").
            self._reader = sqlite_module().connect(
                name, timeout=5, isolation_level=None, check_same_thread=False
            )
        return self._reader

    async def aclose(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    async def touch(self, key_id: str) -> None:
        statement = update(ApiKeyRow).where(ApiKeyRow.id == key_id).values(last_used_at=utcnow())
        async with self.database.session() as session, session.begin():
            await session.execute(statement)

    async def add(self, record: KeyRecord) -> None:
        async with self.database.session() as session, session.begin():
            session.add(
                ApiKeyRow(
                    id=record.id,
                    name=record.name,
                    key_hash=record.key_hash,
                    created_at=record.created_at,
                    last_used_at=record.last_used_at,
                    revoked_at=record.revoked_at,
                    requests_per_minute=record.requests_per_minute,
                    tokens_per_minute=record.tokens_per_minute,
                )
            )

    async def all(self) -> list[KeyRecord]:
        statement = select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.id)
        async with self.database.reading() as session:
            return [_record(row) for row in (await session.scalars(statement)).all()]

    async def revoke(self, key_id: str) -> bool:
        statement = (
            update(ApiKeyRow)
            .where(ApiKeyRow.id == key_id, ApiKeyRow.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        async with self.database.session() as session, session.begin():
            result = await session.execute(statement)
            if result.rowcount:  # type: ignore[attr-defined]
                return True
            return await session.get(ApiKeyRow, key_id) is not None


_COLUMNS = (
    "id", "name", "key_hash", "created_at", "last_used_at", "revoked_at", "requests_per_minute",
    "tokens_per_minute",
)  # fmt: skip
_BY_ID_SQLITE = f"SELECT {', '.join(_COLUMNS)} FROM api_keys WHERE id = ?"


def _sqlite_record(found: tuple[Any, ...]) -> KeyRecord:
    """A row of ``_BY_ID_SQLITE``; its times are UTC text as ``UTCDateTime`` stores them."""
    key_id, name, key_hash, created_at, last_used_at, revoked_at, requests, tokens = found
    return KeyRecord(
        id=key_id,
        name=name,
        key_hash=key_hash,
        created_at=_utc(created_at),
        last_used_at=_utc(last_used_at) if last_used_at is not None else None,
        revoked_at=_utc(revoked_at) if revoked_at is not None else None,
        requests_per_minute=requests,
        tokens_per_minute=tokens,
    )


def _utc(stored: str) -> datetime:
    return datetime.fromisoformat(stored).replace(tzinfo=UTC)


def _record(row: ApiKeyRow) -> KeyRecord:
    return KeyRecord(
        id=row.id,
        name=row.name,
        key_hash=row.key_hash,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
        requests_per_minute=row.requests_per_minute,
        tokens_per_minute=row.tokens_per_minute,
    )


def api_keys(settings: Settings, database: Database) -> DatabaseKeys | None:
    """The key checker on ``database`` when ``AUTH_MODE=api-key``, else ``None``."""
    if settings.auth_mode != "api-key":
        return None
    return DatabaseKeys(SqlKeyRepository(database))
