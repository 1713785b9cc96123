"""The conversation service: CRUD over the repository, and chat turns on stored history."""

from __future__ import annotations

import uuid

from pydantic import JsonValue

from chatbackend import errors
from chatbackend.access.caller import Caller
from chatbackend.conversations.domain import Changes, Conversation, Page, StoredMessage
from chatbackend.conversations.repository import ConversationRepository


def parse_id(raw: str) -> uuid.UUID:
    """A conversation id; anything that is not a UUID names no conversation (404)."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise errors.NotFound("No conversation with this id.") from None


class ConversationService:
    def __init__(self, repository: ConversationRepository) -> None:
        self.repository = repository

    async def create(
        self, caller: Caller, *, title: str | None, metadata: dict[str, JsonValue]
    ) -> Conversation:
        return await self.repository.create(caller.key_id, title=title, metadata=metadata)

    async def page(self, caller: Caller, *, limit: int, cursor: str | None) -> Page:
        return await self.repository.page(caller.key_id, limit=limit, cursor=cursor)

    async def detail(self, caller: Caller, raw_id: str) -> tuple[Conversation, list[StoredMessage]]:
        conversation_id = parse_id(raw_id)
        conversation = await self.repository.get(caller.key_id, conversation_id)
        return conversation, await self.repository.messages(caller.key_id, conversation_id)

    async def update(self, caller: Caller, raw_id: str, changes: Changes) -> Conversation:
        return await self.repository.update(caller.key_id, parse_id(raw_id), changes)

    async def delete(self, caller: Caller, raw_id: str) -> None:
        await self.repository.delete(caller.key_id, parse_id(raw_id))
