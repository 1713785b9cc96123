"""The two transactions of a chat turn, run on the database driver's own connection.

A turn is the hot path of a stored conversation: take the lease, write the user message, read the
history back; later, store the answer and give the lease back. Through SQLAlchemy's async layer
these cost about 3.5 ms of CPU per turn on SQLite (a greenlet switch and an execution context per
driver call, aiosqlite's future per call, the session's bookkeeping), ten times what the
statements themselves take; at 200 streams that CPU is the worker's queue. So they run on the
driver's connection (sqlite3, asyncpg), checked out of the engine's pool like any other query,
with values bound and read by the columns' own SQLAlchemy type processors: the rows are exactly
what the ORM writes and reads.

SQLite: a transaction runs synchronously, ``BEGIN IMMEDIATE`` to ``COMMIT``, on the event loop's
thread (where the ``InlineConnection`` runs every statement anyway): the write lock is held for
no loop turn at all.

PostgreSQL: the lease and the user message are one statement (a data-modifying CTE), in a
transaction with the history read, so a refused turn rolls both back; the answer and the lease's
release are one statement, atomic without a transaction block. Four round trips, then one.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NoReturn

from sqlalchemy import Column
from sqlalchemy.engine import Dialect

from chatbackend import errors
from chatbackend.conversations.domain import Conversation, HistoryPage, StoredRole
from chatbackend.providers.base import Message, ToolCall, ToolFailure, ToolResult
from chatbackend.store.models import ConversationRow, MessageRow

_CONVERSATIONS = ConversationRow.metadata.tables[ConversationRow.__tablename__]
_MESSAGES = MessageRow.metadata.tables[MessageRow.__tablename__]
MESSAGE_COLUMNS: tuple[str, ...] = tuple(_MESSAGES.c.keys())

# The first page holds a conversation of this many messages whole; later pages double.
FIRST_HISTORY_PAGE = 64
LARGEST_HISTORY_PAGE = 1024

Check = Callable[[Conversation], None]
Take = Callable[[HistoryPage], bool]


def _same(value: Any) -> Any:
    return value


class Codec:
    """The columns' SQLAlchemy type processors for one dialect (UUIDs, UTC times, JSON)."""

    def __init__(self, dialect: Dialect) -> None:
        # The dialect's own implementation of each type (SQLite's DATETIME text, say).
        def bind(column: Column[Any]) -> Callable[[Any], Any]:
            return column.type.dialect_impl(dialect).bind_processor(dialect) or _same

        def result(column: Column[Any]) -> Callable[[Any], Any]:
            return column.type.dialect_impl(dialect).result_processor(dialect, None) or _same

        conversations, messages = _CONVERSATIONS.c, _MESSAGES.c
        self.uuid = bind(messages.id)
        self.time = bind(messages.created_at)
        self.read_time = result(conversations.created_at)
        self.read_metadata = result(conversations["metadata"])
        self.read_tool_calls = result(messages.tool_calls)
        self._message = [bind(messages[name]) for name in MESSAGE_COLUMNS]

    def message(self, row: dict[str, Any]) -> list[Any]:
        """A messages row (every column) as the driver's parameters, in column order. None is
        SQL NULL (a JSON column's processor would write JSON ``null``)."""
        return [
            None if (value := row[name]) is None else bind(value)
            for bind, name in zip(self._message, MESSAGE_COLUMNS, strict=True)
        ]


@functools.cache
def codec(dialect: Dialect) -> Codec:
    return Codec(dialect)


# -- SQL ------------------------------------------------------------------------------------------
# Written once with :named parameters; asyncpg's $n form is derived from it.

_RETURNED = "title, metadata, system_prompt, created_at, updated_at, message_count"
_TAKE_LEASE = (
    "UPDATE conversations SET busy_token = :token, busy_until = :until, "
    "message_count = message_count + 1, updated_at = :now, "
    "system_prompt = coalesce(:system_prompt, system_prompt) "
    "WHERE id = :id AND owner_id {owner} AND (busy_token IS NULL OR busy_until < :now) "
    f"RETURNING {_RETURNED}"
)
_EXISTS = "SELECT 1 FROM conversations WHERE id = :id AND owner_id {owner}"
_GIVE_LEASE_BACK = (
    "UPDATE conversations SET busy_token = NULL, busy_until = NULL, "
    "message_count = message_count + :count, updated_at = :now "
    "WHERE id = :id AND busy_token = :token RETURNING message_count"
)
_HISTORY_PAGE = (
    "SELECT seq, role, content, tool_calls, tool_call_id, tool_error_code, tool_error_message, "
    "token_count, tokenizer FROM messages WHERE conversation_id = :id AND seq < :before "
    "ORDER BY seq DESC LIMIT :limit"
)
_INSERT_MESSAGE = (
    f"INSERT INTO messages ({', '.join(MESSAGE_COLUMNS)}) "
    f"VALUES ({', '.join(':' + name for name in MESSAGE_COLUMNS)})"
)
_SQLITE_TAKE_LEASE = _TAKE_LEASE.format(owner="IS :owner")
_SQLITE_EXISTS = _EXISTS.format(owner="IS :owner")
_SQLITE_INSERT_USER = (
    "INSERT INTO messages (id, conversation_id, seq, role, content, created_at, token_count, "
    "tokenizer) VALUES (:user_id, :id, :seq, 'user', :content, :now, :token_count, :tokenizer)"
)
# PostgreSQL: the lease and the user message in one statement (its CTEs run whether read or
# not). Parameters in a SELECT list have no type to infer: they are cast.
_PG_OWNER = "IS NOT DISTINCT FROM :owner"
_PG_TAKE_LEASE = (
    f"WITH lease AS ({_TAKE_LEASE.format(owner=_PG_OWNER)}), "
    "user_message AS (INSERT INTO messages (id, conversation_id, seq, role, content, created_at, "
    "token_count, tokenizer) "
    "SELECT CAST(:user_id AS uuid), CAST(:id AS uuid), message_count, 'user', "
    "CAST(:content AS text), CAST(:now AS timestamptz), CAST(:token_count AS integer), "
    "CAST(:tokenizer AS varchar) FROM lease) "
    f"SELECT {_RETURNED} FROM lease"
)
_PG_EXISTS = _EXISTS.format(owner=_PG_OWNER)
# A final answer without tool rounds (the common one): stored and the lease given back at once.
_ANSWER_COLUMNS = (
    "id, conversation_id, seq, role, content, finish_reason, model, prompt_tokens, "
    "completion_tokens, total_tokens, created_at, token_count, tokenizer"
)
_PG_STORE_ANSWER = (
    f"WITH lease AS ({_GIVE_LEASE_BACK}), "
    f"answer AS (INSERT INTO messages ({_ANSWER_COLUMNS}) "
    "SELECT CAST(:answer_id AS uuid), CAST(:id AS uuid), message_count, 'assistant', "
    "CAST(:content AS text), CAST(:finish_reason AS varchar), CAST(:model AS varchar), "
    "CAST(:prompt_tokens AS integer), CAST(:completion_tokens AS integer), "
    "CAST(:total_tokens AS integer), CAST(:now AS timestamptz), "
    "CAST(:token_count AS integer), CAST(:tokenizer AS varchar) FROM lease) "
    "SELECT message_count FROM lease"
)


class _Numbered:
    """A :named statement in asyncpg's form: ``$1``, ``$2``... and the names in that order."""

    def __init__(self, statement: str) -> None:
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in names:
                names.append(name)
            return f"${names.index(name) + 1}"

        self.sql = re.sub(r"(?<![:\w]):([a-z_]+)", number, statement)
        self.names = tuple(names)

    def args(self, values: dict[str, Any]) -> list[Any]:
        return [values[name] for name in self.names]


_PG = {
    name: _Numbered(statement)
    for name, statement in {
        "take_lease": _PG_TAKE_LEASE,
        "exists": _PG_EXISTS,
        "history": _HISTORY_PAGE,
        "give_back": _GIVE_LEASE_BACK,
        "store_answer": _PG_STORE_ANSWER,
        "insert": _INSERT_MESSAGE,
    }.items()
}


# -- the turn's first transaction ----------------------------------------------------------------


def lease_values(
    codec: Codec,
    *,
    conversation_id: uuid.UUID,
    owner: str | None,
    token: str,
    now: datetime,
    until: datetime,
    system_prompt: str | None,
    user_id: uuid.UUID,
    content: str,
    token_count: int | None,
    tokenizer: str | None,
) -> dict[str, Any]:
    return {
        "token_count": token_count,
        "tokenizer": tokenizer,
        "id": codec.uuid(conversation_id),
        "owner": owner,
        "token": token,
        "now": codec.time(now),
        "until": codec.time(until),
        "system_prompt": system_prompt,
        "user_id": codec.uuid(user_id),
        "content": content,
    }


def _conversation(codec: Codec, conversation_id: uuid.UUID, row: Sequence[Any]) -> Conversation:
    title, metadata, system_prompt, created_at, updated_at, _ = row
    return Conversation(
        id=conversation_id,
        title=title,
        metadata=codec.read_metadata(metadata),
        system_prompt=system_prompt,
        created_at=codec.read_time(created_at),
        updated_at=codec.read_time(updated_at),
    )


def sqlite_begin_turn(
    connection: Any,
    codec: Codec,
    conversation_id: uuid.UUID,
    values: dict[str, Any],
    *,
    check: Check,
    take: Take | None,
) -> tuple[Conversation, int]:
    """Lease, user message and history in one SQLite transaction on ``connection`` (sqlite3);
    the conversation and the user message's sequence number."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        row = connection.execute(_SQLITE_TAKE_LEASE, values).fetchone()
        if row is None:
            _refuse(connection.execute(_SQLITE_EXISTS, values).fetchone() is not None)
        conversation = _conversation(codec, conversation_id, row)
        check(conversation)
        seq: int = row[-1]
        connection.execute(_SQLITE_INSERT_USER, {**values, "seq": seq})
        if take is not None:
            before, limit = seq, FIRST_HISTORY_PAGE
            while before > 1:
                page = {"id": values["id"], "before": before, "limit": limit}
                rows = connection.execute(_HISTORY_PAGE, page).fetchall()
                if not _handed(codec, rows, take, limit):
                    break
                before, limit = rows[-1][0], min(2 * limit, LARGEST_HISTORY_PAGE)
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    return conversation, seq


async def postgres_begin_turn(
    connection: Any,
    codec: Codec,
    conversation_id: uuid.UUID,
    values: dict[str, Any],
    *,
    check: Check,
    take: Take | None,
) -> tuple[Conversation, int]:
    """The same on PostgreSQL, ``connection`` an asyncpg connection."""
    statements = _PG
    async with connection.transaction():
        taken = statements["take_lease"]
        row = await connection.fetchrow(taken.sql, *taken.args(values))
        if row is None:
            exists = statements["exists"]
            _refuse(await connection.fetchval(exists.sql, *exists.args(values)) is not None)
        conversation = _conversation(codec, conversation_id, row)
        check(conversation)
        seq: int = row[-1]
        if take is not None:
            history = statements["history"]
            before, limit = seq, FIRST_HISTORY_PAGE
            while before > 1:
                page = {"id": values["id"], "before": before, "limit": limit}
                rows = await connection.fetch(history.sql, *history.args(page))
                if not _handed(codec, rows, take, limit):
                    break
                before, limit = rows[-1][0], min(2 * limit, LARGEST_HISTORY_PAGE)
    return conversation, seq


def _refuse(exists: bool) -> NoReturn:
    if exists:
        raise errors.ConversationBusy()
    raise errors.NotFound("No conversation with this id.")


def _handed(codec: Codec, rows: Sequence[Any], take: Take, limit: int) -> bool:
    """Hand a page of history rows to ``take``; whether to read the next (older) page."""
    if not rows:
        return False
    read_calls = codec.read_tool_calls
    page = [(row[0], _for_model(row, read_calls), row[7], row[8]) for row in rows]
    return take(page) and len(rows) == limit


_ROLES: dict[str, StoredRole] = {"user": "user", "assistant": "assistant", "tool": "tool"}


def _for_model(row: Sequence[Any], read_calls: Callable[[Any], Any]) -> Message:
    """A history row as the model is sent it again (``StoredMessage.for_model``)."""
    _, role, content, calls, call_id, error_code, error_message, _, _ = row
    if role == "tool":
        if error_code is None:
            return Message(role="tool", content=content, tool_call_id=call_id or "")
        # The model reads only the failure's message (ToolResult.for_model).
        failure = ToolFailure(code="tool_failed", message=error_message or "")
        result = ToolResult(id=call_id or "", name="", error=failure)
        return Message(role="tool", content=result.for_model, tool_call_id=result.id)
    if calls is not None and (decoded := read_calls(calls)):
        tool_calls = tuple(
            ToolCall(id=c["id"], name=c["name"], arguments=c["arguments"]) for c in decoded
        )
        return Message(role=_ROLES.get(role, "user"), content=content, tool_calls=tool_calls)
    return Message(role=_ROLES.get(role, "user"), content=content)


# -- the turn's second transaction ---------------------------------------------------------------


def release_values(
    codec: Codec, *, conversation_id: uuid.UUID, token: str, now: datetime, count: int
) -> dict[str, Any]:
    return {
        "id": codec.uuid(conversation_id),
        "token": token,
        "now": codec.time(now),
        "count": count,
    }


def sqlite_finish_turn(
    connection: Any,
    codec: Codec,
    values: dict[str, Any],
    rows: Callable[[int], list[dict[str, Any]]],
) -> bool:
    """Give the lease back and insert ``rows(last sequence number)``, in one transaction."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        last = connection.execute(_GIVE_LEASE_BACK, values).fetchone()
        if last is not None:
            stored = [codec.message(row) for row in rows(last[0])]
            if stored:
                connection.executemany(_INSERT_MESSAGE_QMARK, stored)
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    return last is not None


_INSERT_MESSAGE_QMARK = (
    f"INSERT INTO messages ({', '.join(MESSAGE_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in MESSAGE_COLUMNS)})"
)


async def postgres_finish_turn(
    connection: Any,
    codec: Codec,
    values: dict[str, Any],
    rows: Callable[[int], list[dict[str, Any]]],
    *,
    answer: dict[str, Any] | None,
) -> bool:
    """The same on PostgreSQL. ``answer``: a final answer alone (no tool rounds), stored with
    the lease's release in one statement; else a transaction of the release and the rows."""
    statements = _PG
    if answer is not None:
        store = statements["store_answer"]
        bound = {
            **values,
            **answer,
            "answer_id": codec.uuid(answer["answer_id"]),
        }
        return await connection.fetchval(store.sql, *store.args(bound)) is not None
    give_back = statements["give_back"]
    async with connection.transaction():
        last = await connection.fetchval(give_back.sql, *give_back.args(values))
        if last is None:
            return False
        stored = [codec.message(row) for row in rows(last)]
        if stored:
            await connection.executemany(statements["insert"].sql, stored)
    return True
