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
from sqlalchemy import ColumnElement, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from chatbackend import errors
from chatbackend.conversations.domain import (
    Changes,
    Conversation,
    Page,
    StoredAnswer,
    StoredMessage,
    StoredRole,
    Turn,
)
from chatbackend.providers.base import ToolCall, ToolFailure, ToolFailureCode, ToolResult, Usage
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
        async with self._database.session() as session:
            rows = list((await session.scalars(query.limit(limit + 1))).all())
        more = len(rows) > limit
        conversations = [_conversation(row) for row in rows[:limit]]
        last = conversations[-1] if more else None
        return Page(conversations, _encode_cursor(last) if last else None)

    async def get(self, owner: Owner, conversation_id: uuid.UUID) -> Conversation:
        async with self._database.session() as session:
            return _conversation(await _load(session, owner, conversation_id))

    async def messages(self, owner: Owner, conversation_id: uuid.UUID) -> list[StoredMessage]:
        async with self._database.session() as session:
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
    ) -> Turn:
        """Take the conversation's lease and commit the user message, in one transaction.

        The lease is one conditional UPDATE, so of concurrent turns (in any process) exactly one
        wins; the others get ``ConversationBusy`` and store nothing. ``check`` sees the
        conversation as the turn will have it (its system prompt replaced by ``system_prompt``,
        if given) before anything is written; whatever it raises rolls the transaction back, so
        a refused turn stores nothing and leaves the conversation free.
        """
        token = str(uuid.uuid4())
        now = utcnow()
        lease_values = {
            "p_id": conversation_id,
            "p_owner": owner,
            "p_now": now,
            "p_token": token,
            "p_until": now + lease,
            "p_system_prompt": system_prompt,
        }
        async with self._database.session() as session, session.begin():
            row = (await session.execute(_TAKE_LEASE, lease_values)).first()
            if row is None:
                await _load(session, owner, conversation_id)  # 404 when it is not there
                raise errors.ConversationBusy()
            conversation = Conversation(*row[:-1])
            check(conversation)
            history = await _history(session, conversation_id)
            user_id = uuid.uuid4()
            user = {
                "id": user_id,
                "conversation_id": conversation_id,
                "seq": row.message_count,
                "role": "user",
                "content": content,
                "created_at": now,
            }
            await session.execute(_INSERT_MESSAGE, user)
        return Turn(conversation, history, user_id, uuid.uuid4(), token)

    async def renew_leases(self, tokens: list[str], lease: timedelta) -> None:
        """Move the leases held with ``tokens`` to ``lease`` from now (one UPDATE)."""
        async with self._database.session() as session, session.begin():
            await session.execute(
                update(ConversationRow)
                .where(ConversationRow.busy_token.in_(tokens))
                .values(busy_until=utcnow() + lease)
            )

    async def finish_turn(self, turn: Turn, answer: StoredAnswer | None) -> bool:
        """Store ``answer`` (if any: its tool rounds, then its final message, with the next
        sequence numbers) and give the lease back, in one transaction; False when the lease was
        lost (the conversation was deleted, or the lease expired and another turn took it)."""
        now = utcnow()
        count = answer.message_count if answer is not None else 0
        release = {
            "p_id": turn.conversation.id,
            "p_token": turn.token,
            "p_now": now,
            "p_count": count,
        }
        async with self._database.session() as session, session.begin():
            last = (await session.execute(_GIVE_LEASE_BACK, release)).scalar_one_or_none()
            if last is None:
                return False
            if answer is not None:
                session.add_all(_answer_rows(turn, answer, first=last - count + 1, now=now))
        return True


# The statements of a turn, built once (building a statement costs more than running it).
# Taking the lease also numbers the user message and sets the system prompt, if one is sent.
# Core statements on the tables, not the ORM: an ORM UPDATE first evaluates its WHERE against
# every loaded object, and ORM rows cost several times a plain row to load.
_CONVERSATIONS = ConversationRow.metadata.tables[ConversationRow.__tablename__]
_MESSAGES = MessageRow.metadata.tables[MessageRow.__tablename__]
_conversation_columns = _CONVERSATIONS.c
_CONVERSATION_FIELDS = ("id", "title", "metadata", "system_prompt", "created_at", "updated_at")
_TAKE_LEASE = (
    update(_CONVERSATIONS)
    .where(
        _conversation_columns.id == bindparam("p_id"),
        _conversation_columns.owner_id.is_not_distinct_from(bindparam("p_owner")),
        or_(
            _conversation_columns.busy_token.is_(None),
            _conversation_columns.busy_until < bindparam("p_now"),
        ),
    )
    .values(
        busy_token=bindparam("p_token"),
        busy_until=bindparam("p_until"),
        message_count=_conversation_columns.message_count + 1,
        updated_at=bindparam("p_now"),
        system_prompt=func.coalesce(
            bindparam("p_system_prompt"), _conversation_columns.system_prompt
        ),
    )
    .returning(
        # a Conversation's fields, in order, then the user message's sequence number
        *(_conversation_columns[name] for name in _CONVERSATION_FIELDS),
        _conversation_columns.message_count,
    )
)
_GIVE_LEASE_BACK = (
    update(_CONVERSATIONS)
    .where(
        _conversation_columns.id == bindparam("p_id"),
        _conversation_columns.busy_token == bindparam("p_token"),
    )
    .values(
        busy_token=None,
        busy_until=None,
        message_count=_conversation_columns.message_count + bindparam("p_count"),
        updated_at=bindparam("p_now"),
    )
    .returning(_conversation_columns.message_count)
)
_INSERT_MESSAGE = insert(_MESSAGES)
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


def _answer_rows(
    turn: Turn, answer: StoredAnswer, *, first: int, now: datetime
) -> list[MessageRow]:
    """The answer's rows, numbered from ``first``: per tool round the assistant message that
    asked for the tools and one ``tool`` message per result, then the final assistant message."""
    conversation_id = turn.conversation.id
    rows: list[MessageRow] = []
    for round_ in answer.rounds:
        calls = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in round_.calls]
        rows.append(
            MessageRow(
                id=uuid.uuid4(),
                role="assistant",
                content=round_.text,
                finish_reason="tool_calls",
                tool_calls=calls,
            )
        )
        rows.extend(_tool_row(result) for result in round_.results)
    usage = answer.usage
    rows.append(
        MessageRow(
            id=turn.answer_id,
            role="assistant",
            content=answer.content,
            finish_reason=answer.finish_reason,
            model=answer.model,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
            total_tokens=usage.total_tokens if usage else None,
        )
    )
    for seq, row in enumerate(rows, start=first):
        row.conversation_id, row.seq, row.created_at = conversation_id, seq, now
    return rows


def _tool_row(result: ToolResult) -> MessageRow:
    error = result.error
    return MessageRow(
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


def _tool_result(row: MessageRow) -> ToolResult:
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
