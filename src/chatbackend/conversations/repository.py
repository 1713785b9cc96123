"""Conversations and messages in the database, scoped to one owner.

Every query filters by the caller's owner id (``IS NOT DISTINCT FROM``, so the anonymous caller
owns the rows without one): another owner's conversation is indistinguishable from a missing one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, get_args

from pydantic import JsonValue
from sqlalchemy import ColumnElement, and_, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from chatbackend import errors
from chatbackend.context.budget import MessageCosts
from chatbackend.conversations import turnsql
from chatbackend.conversations.domain import (
    Changes,
    Conversation,
    HistoryPage,
    Page,
    StoredAnswer,
    StoredMessage,
    StoredRole,
    Turn,
)
from chatbackend.providers.base import (
    Message,
    ToolCall,
    ToolFailure,
    ToolFailureCode,
    ToolResult,
    Usage,
)
from chatbackend.store import Database
from chatbackend.store import cursor as keyset
from chatbackend.store.models import ConversationRow, MessageRow
from chatbackend.store.types import utcnow

Owner = str | None


class ConversationRepository:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def create(
        self, owner: Owner, *, title: str | None, metadata: dict[str, JsonValue]
    ) -> Conversation:
        now = utcnow()
        row = ConversationRow(
            id=uuid.uuid4(),
            owner_id=owner,
            title=title,
            meta=metadata,
            system_prompt=None,
            created_at=now,
            updated_at=now,
            message_count=0,
        )
        async with self._database.session() as session, session.begin():
            session.add(row)
        return _conversation(row)

    async def page(self, owner: Owner, *, limit: int, cursor: str | None) -> Page:
        """Most recently updated first; ``cursor`` continues after the last one of a page."""
        query = select(ConversationRow).where(_owned_by(owner))
        if cursor is not None:
            updated_at, last_id = _decode_cursor(cursor)
            query = query.where(
                or_(
                    ConversationRow.updated_at < updated_at,
                    and_(ConversationRow.updated_at == updated_at, ConversationRow.id < last_id),
                )
            )
        query = query.order_by(ConversationRow.updated_at.desc(), ConversationRow.id.desc())
        async with self._database.reading() as session:
            rows = list((await session.scalars(query.limit(limit + 1))).all())
        more = len(rows) > limit
        conversations = [_conversation(row) for row in rows[:limit]]
        last = conversations[-1] if more else None
        return Page(conversations, _encode_cursor(last) if last else None)

    async def get(self, owner: Owner, conversation_id: uuid.UUID) -> Conversation:
        async with self._database.reading() as session:
            return _conversation(await _load(session, owner, conversation_id))

    async def messages(self, owner: Owner, conversation_id: uuid.UUID) -> list[StoredMessage]:
        async with self._database.reading() as session:
            await _load(session, owner, conversation_id)
            return await _history(session, conversation_id)

    async def update(
        self, owner: Owner, conversation_id: uuid.UUID, changes: Changes
    ) -> Conversation:
        async with self._database.session() as session, session.begin():
            row = await _load(session, owner, conversation_id)
            if changes.set_title:
                row.title = changes.title
            if changes.set_metadata:
                row.meta = changes.metadata or {}
            row.updated_at = utcnow()
        return _conversation(row)

    async def delete(self, owner: Owner, conversation_id: uuid.UUID) -> None:
        async with self._database.session() as session, session.begin():
            row = await _load(session, owner, conversation_id)
            await session.delete(row)

    async def begin_turn(
        self,
        owner: Owner,
        conversation_id: uuid.UUID,
        *,
        content: str,
        system_prompt: str | None,
        lease: timedelta,
        check: Callable[[Conversation], None],
        history: Callable[[HistoryPage], bool] | None = None,
        token_count: int | None = None,
        tokenizer: str | None = None,
    ) -> Turn:
        """Take the conversation's lease and commit the user message, in one transaction.

        The lease is one conditional UPDATE, so of concurrent turns (in any process) exactly one
        wins; the others get ``ConversationBusy`` and store nothing. ``check`` sees the
        conversation as the turn will have it (its system prompt replaced by ``system_prompt``,
        if given) before anything is written; whatever it raises rolls the transaction back, so
        a refused turn stores nothing and leaves the conversation free.

        ``history`` is handed the messages before the new one, newest first, a page at a time,
        for as long as it returns True (and older messages are left): a turn reads only as much
        of a long conversation as its context budget holds. ``token_count`` (counted with
        ``tokenizer``) is stored with the user message.
        """
        token, user_id, now = str(uuid.uuid4()), uuid.uuid4(), utcnow()
        database = self._database
        codec = turnsql.codec(database.engine.dialect)
        values = turnsql.lease_values(
            codec,
            conversation_id=conversation_id,
            owner=owner,
            token=token,
            now=now,
            until=now + lease,
            system_prompt=system_prompt,
            user_id=user_id,
            content=content,
            token_count=token_count,
            tokenizer=tokenizer,
        )
        if database.dialect == "sqlite":
            conversation, seq = await database.run_on_driver(
                lambda driver: turnsql.sqlite_begin_turn(
                    driver.sqlite, codec, conversation_id, values, check=check, take=history
                )
            )
        else:
            async with database.driver_connection() as driver:
                conversation, seq = await turnsql.postgres_begin_turn(
                    driver, codec, conversation_id, values, check=check, take=history
                )
        return Turn(conversation, user_id, seq, uuid.uuid4(), token)

    async def renew_leases(self, tokens: list[str], lease: timedelta) -> None:
        """Move the leases held with ``tokens`` to ``lease`` from now (one UPDATE)."""
        async with self._database.session() as session, session.begin():
            await session.execute(
                update(ConversationRow)
                .where(ConversationRow.busy_token.in_(tokens))
                .values(busy_until=utcnow() + lease)
            )

    async def finish_turn(
        self, turn: Turn, answer: StoredAnswer | None, *, costs: MessageCosts | None = None
    ) -> bool:
        """Store ``answer`` (if any: its tool rounds, then its final message, with the next
        sequence numbers) and give the lease back, in one transaction; False when the lease was
        lost (the conversation was deleted, or the lease expired and another turn took it).
        With ``costs`` (and its tokenizer) each message is stored with its token count."""
        counted = _counter(costs)
        now = utcnow()
        count = answer.message_count if answer is not None else 0
        database = self._database
        codec = turnsql.codec(database.engine.dialect)
        values = turnsql.release_values(
            codec, conversation_id=turn.conversation.id, token=turn.token, now=now, count=count
        )

        def rows(last: int) -> list[dict[str, Any]]:
            if answer is None:
                return []
            return _answer_rows(turn, answer, first=last - count + 1, now=now, counted=counted)

        if database.dialect == "sqlite":
            return await database.run_on_driver(
                lambda driver: turnsql.sqlite_finish_turn(driver.sqlite, codec, values, rows)
            )
        alone = None
        if answer is not None and not answer.rounds:
            alone = _final_answer(turn, answer, counted)
        async with database.driver_connection() as driver:
            return await turnsql.postgres_finish_turn(driver, codec, values, rows, answer=alone)


# The turn's own statements are in ``turnsql`` (run on the driver's connection).
_MESSAGES = MessageRow.metadata.tables[MessageRow.__tablename__]
_HISTORY = (
    select(_MESSAGES)
    .where(_MESSAGES.c.conversation_id == bindparam("p_id"))
    .order_by(_MESSAGES.c.seq)
)


def _owned_by(owner: Owner) -> ColumnElement[bool]:
    return ConversationRow.owner_id.is_not_distinct_from(owner)


async def _load(session: AsyncSession, owner: Owner, conversation_id: uuid.UUID) -> ConversationRow:
    row = await session.scalar(
        select(ConversationRow).where(ConversationRow.id == conversation_id, _owned_by(owner))
    )
    if row is None:
        raise errors.NotFound("No conversation with this id.")
    return row


async def _history(session: AsyncSession, conversation_id: uuid.UUID) -> list[StoredMessage]:
    rows = await session.execute(_HISTORY, {"p_id": conversation_id})
    return [_message(row) for row in rows]


Counted = Callable[[Message], dict[str, Any]]


def _counter(costs: MessageCosts | None) -> Counted:
    """The ``token_count`` and ``tokenizer`` columns of a message (NULL without a tokenizer)."""
    if costs is None or costs.tokenizer is None:
        return lambda _: {}
    tokenizer = costs.tokenizer
    return lambda message: {"token_count": costs.tokens(message), "tokenizer": tokenizer}


def _answer_rows(
    turn: Turn, answer: StoredAnswer, *, first: int, now: datetime, counted: Counted
) -> list[dict[str, Any]]:
    """The answer's rows, numbered from ``first``: per tool round the assistant message that
    asked for the tools and one ``tool`` message per result, then the final assistant message.
    Every row has every column (one INSERT statement takes them all)."""
    conversation_id = turn.conversation.id
    rows: list[dict[str, Any]] = []
    for round_ in answer.rounds:
        calls = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in round_.calls]
        asked = Message(role="assistant", content=round_.text, tool_calls=round_.calls)
        rows.append(
            _row(id=uuid.uuid4(), role="assistant", content=round_.text, finish_reason="tool_calls",
                 tool_calls=calls, **counted(asked))
        )  # fmt: skip
        for result in round_.results:
            sent = Message(role="tool", content=result.for_model, tool_call_id=result.id)
            rows.append(_tool_row(result, counted(sent)))
    usage = answer.usage
    rows.append(
        _row(
            id=turn.answer_id,
            role="assistant",
            content=answer.content,
            finish_reason=answer.finish_reason,
            model=answer.model,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
            total_tokens=usage.total_tokens if usage else None,
            **counted(Message(role="assistant", content=answer.content)),
        )
    )
    for seq, row in enumerate(rows, start=first):
        row["conversation_id"], row["seq"], row["created_at"] = conversation_id, seq, now
    return rows


_MESSAGE_COLUMNS = dict.fromkeys(_MESSAGES.c.keys())


def _final_answer(turn: Turn, answer: StoredAnswer, counted: Counted) -> dict[str, Any]:
    """A final answer's own columns (``turnsql.postgres_finish_turn`` stores it alone)."""
    usage = answer.usage
    return {
        "token_count": None,
        "tokenizer": None,
        **counted(Message(role="assistant", content=answer.content)),
        "answer_id": turn.answer_id,
        "content": answer.content,
        "finish_reason": answer.finish_reason,
        "model": answer.model,
        "prompt_tokens": usage.prompt_tokens if usage else None,
        "completion_tokens": usage.completion_tokens if usage else None,
        "total_tokens": usage.total_tokens if usage else None,
    }


def _row(**values: Any) -> dict[str, Any]:
    """A messages row: ``values``, every other column NULL."""
    return {**_MESSAGE_COLUMNS, **values}


def _tool_row(result: ToolResult, counted: dict[str, Any]) -> dict[str, Any]:
    error = result.error
    return _row(
        **counted,
        id=uuid.uuid4(),
        role="tool",
        content=result.content or "",
        tool_call_id=result.id,
        tool_name=result.name,
        tool_error_code=error.code if error else None,
        tool_error_message=error.message if error else None,
    )


def _conversation(row: ConversationRow) -> Conversation:
    return Conversation(
        id=row.id,
        title=row.title,
        metadata=row.meta,
        system_prompt=row.system_prompt,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _message(row: Any) -> StoredMessage:
    """A message from a ``MessageRow`` or a plain row of the messages table (same names)."""
    usage = None
    if row.prompt_tokens is not None and row.completion_tokens is not None:
        total = row.total_tokens or row.prompt_tokens + row.completion_tokens
        usage = Usage(
            prompt_tokens=row.prompt_tokens,
            completion_tokens=row.completion_tokens,
            total_tokens=total,
        )
    return StoredMessage(
        id=row.id,
        seq=row.seq,
        role=_ROLES.get(row.role, "user"),
        content=row.content,
        created_at=row.created_at,
        finish_reason=row.finish_reason,
        usage=usage,
        model=row.model,
        tool_calls=tuple(
            ToolCall(id=c["id"], name=c["name"], arguments=c["arguments"])
            for c in row.tool_calls or ()
        ),
        tool_result=_tool_result(row) if row.role == "tool" else None,
    )


_ROLES: dict[str, StoredRole] = {"user": "user", "assistant": "assistant", "tool": "tool"}
_FAILURES: dict[str, ToolFailureCode] = {code: code for code in get_args(ToolFailureCode)}


def _tool_result(row: Any) -> ToolResult:
    call_id, name = row.tool_call_id or "", row.tool_name or ""
    if row.tool_error_code is None:
        return ToolResult(id=call_id, name=name, content=row.content)
    code = _FAILURES.get(row.tool_error_code, "tool_failed")
    failure = ToolFailure(code=code, message=row.tool_error_message or "")
    return ToolResult(id=call_id, name=name, error=failure)


def _encode_cursor(last: Conversation) -> str:
    return keyset.encode(last.updated_at, last.id)


def _decode_cursor(text: str) -> tuple[datetime, uuid.UUID]:
    try:
        return keyset.decode(text)
    except ValueError:
        raise errors.InvalidRequest("cursor: not a cursor this API returned") from None
