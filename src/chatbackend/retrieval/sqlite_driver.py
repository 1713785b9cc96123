"""The SQLite driver with sqlite-vec loaded on every connection.

SQLAlchemy's aiosqlite dialect runs on the interpreter's ``sqlite3``; some builds of it (pyenv's
default, for one) cannot load extensions at all. Then ``pysqlite3`` (the same module, built with a
current SQLite that can) takes its place: ``sqlite_dbapi()`` is the dialect's DB-API module built on
whichever is usable, errors included, so ``IntegrityError`` and friends are still recognised.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import types
from collections.abc import Callable, Generator
from typing import Any

import aiosqlite
import sqlite_vec
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_dbapi

_ERRORS = (
    "DatabaseError",
    "Error",
    "IntegrityError",
    "NotSupportedError",
    "OperationalError",
    "ProgrammingError",
    "sqlite_version",
    "sqlite_version_info",
)


def sqlite_module() -> types.ModuleType:
    """``sqlite3`` when it can load extensions, else ``pysqlite3.dbapi2``."""
    if hasattr(sqlite3.Connection, "enable_load_extension"):
        return sqlite3
    try:
        from pysqlite3 import dbapi2
    except ImportError:
        raise RuntimeError(
            "this Python's sqlite3 cannot load extensions (sqlite-vec); pip install "
            "pysqlite3-binary, or use a Python built with --enable-loadable-sqlite-extensions"
        ) from None
    module: types.ModuleType = dbapi2
    return module


class _RunAtOnce:
    """What aiosqlite's connection puts its calls in: here each call runs when it is put."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting caller
            if future is not None:
                future.set_exception(exc)
        else:
            if future is not None:
                future.set_result(result)


class InlineConnection(aiosqlite.Connection):
    """aiosqlite's connection, its calls run on the event loop's thread instead of its own.

    A statement on a local SQLite file takes microseconds; handing each call to a thread and
    back (four per statement) cost the event loop far more under load, in GIL hand-offs, and a
    transaction holding the write lock lasted as many loop turns. The price: a slow statement,
    or another process holding the write lock (``busy_timeout``), blocks the loop meanwhile.
    """

    def __init__(self, connector: Callable[[], sqlite3.Connection], iter_chunk_size: int) -> None:
        super().__init__(connector, iter_chunk_size)
        self._tx = _RunAtOnce()  # type: ignore[assignment]

    def __await__(self) -> Generator[Any, None, aiosqlite.Connection]:
        return self._connect().__await__()  # no thread to start

    @property
    def sqlite(self) -> sqlite3.Connection:
        """The sqlite3 connection itself, for a transaction run synchronously, start to end, on
        the loop's thread (the conversation turns': no loop turn while it holds the lock)."""
        return self._conn


@functools.cache
def sqlite_dbapi() -> Any:
    """The DB-API module to pass as ``create_async_engine(url, module=...)`` for SQLite."""
    module = sqlite_module()

    def connect(database: str, **kwargs: Any) -> aiosqlite.Connection:
        kwargs.pop("iter_chunk_size", None)

        def connector() -> Any:
            connection = module.connect(database, **kwargs)
            connection.enable_load_extension(True)
            sqlite_vec.load(connection)
            connection.enable_load_extension(False)
            return connection

        return InlineConnection(connector, 64)

    shim = types.ModuleType("chatbackend_aiosqlite")
    shim.connect = connect  # type: ignore[attr-defined]
    shim.Connection = aiosqlite.Connection  # type: ignore[attr-defined]
    shim.sqlite_version = module.sqlite_version  # type: ignore[attr-defined]
    for name in _ERRORS:
        setattr(shim, name, getattr(module, name))
    return AsyncAdapt_aiosqlite_dbapi(shim, module)
