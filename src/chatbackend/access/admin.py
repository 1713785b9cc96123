"""The ``keys`` command on the configured database (migrated first, like the server does)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from chatbackend.access import cli
from chatbackend.access.keys import KeyRepository
from chatbackend.access.repository import SqlKeyRepository
from chatbackend.settings import SettingsError, load_settings
from chatbackend.store import open_configured_database


def run_keys_command(argv: list[str]) -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"chatbackend: {exc}", file=sys.stderr)  # noqa: T201 - the one line an operator reads
        return 2

    @asynccontextmanager
    async def repository() -> AsyncIterator[KeyRepository]:
        database = await open_configured_database(settings, pool_size=1)
        try:
            yield SqlKeyRepository(database)
        finally:
            await database.aclose()

    return cli.run(argv, repository)
