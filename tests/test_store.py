"""The store foundation: URLs, SQLite set-up, migrations at start-up under a cross-process lock."""

from __future__ import annotations

import asyncio
import multiprocessing
import re
import sqlite3
import subprocess
import sys
from multiprocessing.synchronize import Barrier as BarrierType
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import text

from chatbackend.app import create_app
from chatbackend.settings import SettingsError
from chatbackend.store import open_database
from chatbackend.store.database import head_revisions, normalise_url
from chatbackend.store.models import Base
from tests.conftest import openai_settings


async def _scalar_rows(url: str, statement: str) -> list[object]:
    database = await open_database(url)
    try:
        async with database.engine.connect() as connection:
            return list((await connection.execute(text(statement))).scalars())
    finally:
        await database.aclose()


def test_start_up_migrates_to_head(database_url: str) -> None:
    versions = asyncio.run(_scalar_rows(database_url, "SELECT version_num FROM alembic_version"))
    assert tuple(versions) == head_revisions()
    # A second start finds the schema current and changes nothing.
    again = asyncio.run(_scalar_rows(database_url, "SELECT version_num FROM alembic_version"))
    assert again == versions


def _replica(url: str, start: BarrierType) -> None:
    start.wait(30)
    asyncio.run(_scalar_rows(url, "SELECT 1"))


def test_ten_replicas_starting_together_migrate_once(database_url: str) -> None:
    # Forked after the package is imported, so the ten processes reach the database together.
    context = multiprocessing.get_context("fork")
    start = context.Barrier(10)
    replicas = [context.Process(target=_replica, args=(database_url, start)) for _ in range(10)]
    for replica in replicas:
        replica.start()
    for replica in replicas:
        replica.join(60)
    assert [replica.exitcode for replica in replicas] == [0] * 10
    versions = asyncio.run(_scalar_rows(database_url, "SELECT version_num FROM alembic_version"))
    assert tuple(versions) == head_revisions()


def test_default_database_is_a_sqlite_file_in_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.chdir(tmp_path)
    with TestClient(create_app(openai_settings())) as client:
        assert client.get("/health/live").status_code == 200
    database = tmp_path / "data" / "chatbackend.db"
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert {"conversations", "messages", "alembic_version"} <= tables


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("postgresql://u@h:5432/db", "postgresql+asyncpg://u@h:5432/db"),
        ("postgres://u@/db?host=/run/pg", "postgresql+asyncpg://u@/db?host=%2Frun%2Fpg"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
    ],
)
def test_urls_get_their_async_driver(raw: str, expected: str) -> None:
    assert normalise_url(raw).render_as_string(hide_password=False) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("mysql://u@h/db", "DATABASE_URL: use a sqlite:// or postgresql:// URL"),
        ("postgresql+psycopg://u@h/db", "DATABASE_URL: use the postgresql+asyncpg driver"),
        ("not a url", "DATABASE_URL: not a database URL"),
    ],
)
def test_unusable_database_urls_stop_the_start(raw: str, message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(f"invalid configuration: {message}")):
        openai_settings(database_url=raw)


def test_a_database_password_never_shows_in_settings() -> None:
    settings = openai_settings(database_url="postgresql://app:hunter2-SECRET@db/chat")
    assert "hunter2" not in repr(settings)


def _table_of(difference: Any) -> str:
    """The table an Alembic autogenerate difference is about."""
    if isinstance(difference, list):  # column modifications come grouped
        difference = difference[0]
    operation, subject = difference[0], difference[1]
    if operation.endswith("_table"):
        return str(subject.name)
    if operation.endswith(("_index", "_constraint", "_fk")):
        return str(subject.table.name)
    return str(difference[2])  # add_column / remove_column / modify_*: (op, schema, table, ...)


async def _schema_differences(url: str) -> list[Any]:
    database = await open_database(url)
    try:
        async with database.engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
            )
    finally:
        await database.aclose()


def test_the_migrations_build_the_conversation_tables_the_models_describe(
    database_url: str,
) -> None:
    differences = asyncio.run(_schema_differences(database_url))
    tables = {"conversations", "messages", "api_keys"}
    assert [d for d in differences if _table_of(d) in tables] == []


# Holds SQLite's write lock with an uncommitted row until its stdin closes. Another process:
# POSIX locks do not conflict within one, and two SQLite libraries in one process (the
# interpreter's and pysqlite3's) would not see each other's locks at all.
_HOLD_WRITE_LOCK = """
import sqlite3, sys
writer = sqlite3.connect(sys.argv[1], isolation_level=None)
writer.execute("BEGIN IMMEDIATE")
writer.execute(
    "INSERT INTO conversations (id, title, metadata, created_at, updated_at, message_count) "
    "VALUES ('00000000000000000000000000000001', 'uncommitted', '{}', '2026-01-01 00:00:00', "
    "'2026-01-01 00:00:00', 0)"
)
print("locked", flush=True)
sys.stdin.read()
writer.execute("ROLLBACK")
"""


def test_reads_never_wait_for_another_processs_write_lock(tmp_path: Path) -> None:
    """A ``reading()`` session on a WAL file reads its snapshot while another process holds the
    write lock (an ingest, say); a writing session's ``BEGIN IMMEDIATE`` would wait for it."""
    path = tmp_path / "store.db"
    url = f"sqlite+aiosqlite:///{path}"

    async def read_while_locked() -> tuple[list[object], float]:
        database = await open_database(url)
        holder = subprocess.Popen(
            [sys.executable, "-c", _HOLD_WRITE_LOCK, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
            started = asyncio.get_running_loop().time()
            async with database.reading() as session:
                titles = list(await session.scalars(text("SELECT title FROM conversations")))
            return titles, asyncio.get_running_loop().time() - started
        finally:
            holder.communicate("", timeout=30)
            await database.aclose()

    titles, waited = asyncio.run(read_while_locked())
    assert titles == []  # its snapshot: nothing uncommitted
    assert waited < 1.0  # not SQLite's busy timeout (5 s), nor its "database is locked"
