"""The worker's database: one engine and sessionmaker, built and disposed by the app lifespan.

``DATABASE_URL`` selects SQLite (aiosqlite, the default file ``data/chatbackend.db``) or
PostgreSQL (asyncpg, TCP or a Unix socket via ``?host=/dir``). Migrations run at start-up, inside
one transaction that first takes a cross-process lock: a PostgreSQL advisory lock, or SQLite's
``BEGIN IMMEDIATE`` write lock, so replicas starting together migrate once.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import greenlet_spawn

from chatbackend import errors

MIGRATIONS = Path(__file__).parent / "migrations"
# pg_advisory_xact_lock key shared by every replica: "chatbackend migrations".
MIGRATION_LOCK_KEY = 7_236_814_551_893_001
ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
SQLITE_PRAGMAS = (
    "busy_timeout = 30000",
    "journal_mode = WAL",
    "synchronous = NORMAL",
    "foreign_keys = ON",
    # Reads straight from the OS page cache instead of copying each page into SQLite's own
    # (2 MB by default): a vector search reads every stored vector (15 MB at 10,000 chunks of
    # 384 floats), and mapped it takes 8.7 ms instead of 10.9 (text search 3.4 against 5.4).
    "mmap_size = 268435456",
)
T = TypeVar("T")
# A pooled PostgreSQL connection unused for this long is pinged before use (_ping_after_idle).
PING_AFTER_IDLE_SECONDS = 2.0
_CHECKED_IN = "chatbackend.checked_in"
# The execution option of ``Database.reading`` sessions.
READ_ONLY = "chatbackend_read_only"
PasswordSource = Callable[[], Awaitable[str]]
CloseHook = Callable[[], Awaitable[None]]


class UnsupportedDatabase(ValueError):
    """A ``DATABASE_URL`` this service cannot use."""


def normalise_url(raw: str) -> URL:
    """``raw`` with its async driver (``postgresql://`` -> ``postgresql+asyncpg://``)."""
    url = make_url(raw)
    backend = (
        "postgresql"
        if url.get_backend_name() in ("postgresql", "postgres")
        else (url.get_backend_name())
    )
    driver = ASYNC_DRIVERS.get(backend)
    if driver is None:
        raise UnsupportedDatabase("DATABASE_URL: use a sqlite:// or postgresql:// URL")
    if url.drivername not in (backend, driver) and url.drivername != "postgres":
        raise UnsupportedDatabase(f"DATABASE_URL: use the {driver} driver")
    return url.set(drivername=driver)


class Database:
    """The engine and its sessions. ``async with db.session() as s, s.begin(): ...`` is one unit
    of work; on SQLite every transaction starts with ``BEGIN IMMEDIATE`` (no lock upgrades).
    ``db.reading()`` is a session for reads alone: on SQLite its transactions are deferred, so
    on a WAL database they read their snapshot without the write lock, never waiting for a writer
    in another process (an ingest, say)."""

    def __init__(self, engine: AsyncEngine, *, on_close: CloseHook | None = None) -> None:
        self.engine = engine
        self.session = async_sessionmaker(engine, expire_on_commit=False)
        self.reading = async_sessionmaker(
            engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False
        )
        self._on_close = on_close

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def migrate(self) -> None:
        """Upgrade the schema to every head, once across all processes sharing the database."""
        lock_path = _sqlite_lock_path(self.engine.url) if self.dialect == "sqlite" else None
        if lock_path is None:
            await self._migrate()
            return
        # SQLite's write lock alone did not serialise ten replicas starting together (one of
        # them re-ran a migration now and then): an exclusive lock on a file beside the
        # database does, for every process on the host (SQLite's only scope).
        with lock_path.open("a") as lock:
            await asyncio.to_thread(fcntl.flock, lock.fileno(), fcntl.LOCK_EX)
            try:
                await self._migrate()
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    async def _migrate(self) -> None:
        async with self.engine.connect() as connection:
            if self.dialect == "postgresql":
                await connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
            await connection.run_sync(_upgrade)
            await connection.commit()

    @contextlib.asynccontextmanager
    async def driver_connection(self) -> AsyncIterator[Any]:
        """The driver's own connection (aiosqlite's, asyncpg's), checked out of the pool for the
        block, for a hot path that runs its statements on the driver. The block commits or
        rolls back what it begins; the pool resets the connection on return as always, and a
        connection a block failed on (other than with a ``ChatError``, a refusal) is discarded."""
        raw = await greenlet_spawn(self.engine.sync_engine.raw_connection)
        try:
            yield raw.driver_connection
        except errors.ChatError:
            raise
        except BaseException:
            await greenlet_spawn(raw.invalidate)
            raise
        finally:
            await greenlet_spawn(raw.close)

    async def run_on_driver(self, work: Callable[[Any], T]) -> T:
        """``work(driver connection)``, run synchronously in one pool checkout: for SQLite, whose
        statements run on the loop's thread anyway (one greenlet switch for the whole
        transaction instead of one per call). The same rules as ``driver_connection``."""

        def checked_out() -> T:
            raw = self.engine.sync_engine.raw_connection()
            try:
                return work(raw.driver_connection)
            except errors.ChatError:
                raise
            except BaseException:
                raw.invalidate()
                raise
            finally:
                raw.close()

        return await greenlet_spawn(checked_out)

    async def aclose(self) -> None:
        await self.engine.dispose()
        if self._on_close is not None:
            await self._on_close()


async def open_database(
    url: str,
    *,
    pool_size: int = 10,
    password: PasswordSource | None = None,
    on_close: CloseHook | None = None,
) -> Database:
    """Connect, create the SQLite file's directory, and migrate. ``password`` is called for each
    new PostgreSQL connection (an Entra token); ``on_close`` runs after the engine is disposed
    (it closes what the password came from), also when opening fails."""
    try:
        engine = build_engine(url, pool_size=pool_size, password=password)
    except BaseException:
        if on_close is not None:
            await on_close()
        raise
    database = Database(engine, on_close=on_close)
    try:
        await database.migrate()
    except BaseException:
        await database.aclose()
        raise
    return database


def build_engine(
    raw_url: str, *, pool_size: int = 10, password: PasswordSource | None = None
) -> AsyncEngine:
    url = normalise_url(raw_url)
    connect_args: dict[str, Any] = {}
    options: dict[str, Any] = {}
    overflow = pool_size
    if url.get_backend_name() == "sqlite":
        # Every transaction takes SQLite's one write lock (BEGIN IMMEDIATE), so a process gains
        # nothing from a second connection; with several, the waiters sleep in SQLite's busy
        # handler (up to 100 ms a try) while the lock sits free, and 200 streams' turns queued
        # for seconds. One connection makes them wait in the pool's FIFO queue instead, woken
        # the moment it is free; other processes on the file still meet the busy timeout.
        pool_size, overflow = 1, 0
        _create_directory(url)
        # The DB-API module with sqlite-vec loaded on every connection (retrieval's vectors).
        from chatbackend.retrieval.sqlite_driver import sqlite_dbapi

        options["module"] = sqlite_dbapi()
    elif password is not None:
        connect_args["password"] = password
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=overflow,
        connect_args=connect_args,
        **options,
    )
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
    else:
        _ping_after_idle(engine.sync_engine, PING_AFTER_IDLE_SECONDS)
    return engine


def _ping_after_idle(engine: Engine, idle: float) -> None:
    """Ping a PostgreSQL connection before use when it sat in the pool for ``idle`` seconds.

    SQLAlchemy's ``pool_pre_ping`` pings at every checkout, and asyncpg's ping is three round
    trips (BEGIN, an empty query, ROLLBACK): six of a conversation turn's eleven. The
    connections that go stale (a server restart or failover, an idle timeout on the way) are
    the ones that sat unused; one in use moments ago is not pinged. A dead connection fails
    the checkout's ping and is replaced at once (``DisconnectionError``); one that died within
    the last ``idle`` seconds fails its statement instead, and is discarded.
    """

    def checked_in(_: Any, record: Any) -> None:
        record.info[_CHECKED_IN] = time.monotonic()

    def checked_out(dbapi_connection: Any, record: Any, _: Any) -> None:
        since = record.info.get(_CHECKED_IN)
        if since is None or time.monotonic() - since < idle:
            return  # new, or in use moments ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError("the connection failed its ping") from exc

    event.listen(engine, "checkin", checked_in)
    event.listen(engine, "checkout", checked_out)


def head_revisions() -> tuple[str, ...]:
    """The revisions a migrated database is at (one per branch of the migration history)."""
    return tuple(ScriptDirectory.from_config(_alembic_config()).get_heads())


def _sqlite_lock_path(url: URL) -> Path | None:
    name = url.database or ""
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    return Path(f"{name}.migrate.lock")


def _create_directory(url: URL) -> None:
    name = url.database or ""
    if name and name != ":memory:" and not name.startswith("file:"):
        Path(name).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_connect(dbapi_connection: Any, _: object) -> None:
    # The driver's own transaction handling would commit before DDL and begin lazily; we issue
    # BEGIN IMMEDIATE ourselves (see _sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    # A read-only session's transaction takes no lock until it reads (a WAL snapshot).
    read_only = connection.get_execution_options().get(READ_ONLY, False)
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    command.upgrade(_alembic_config(connection), "heads")
