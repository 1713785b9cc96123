"""What the repository hands to the service: plain frozen values, no ORM rows."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import JsonValue

from chatbackend.providers.base import Message, ToolCall, ToolResult, Usage

StoredRole = Literal["user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class Conversation:
    id: uuid.UUID
    title: str | None
    metadata: dict[str, JsonValue]
    system_prompt: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: uuid.UUID
    seq: int
    role: StoredRole
    content: str
    created_at: datetime
    finish_reason: str | None = None
    usage: Usage | None = None
    model: str | None = None
    # An assistant message that asked for tools; a ``tool`` message's result.
    tool_calls: tuple[ToolCall, ...] = ()
    tool_result: ToolResult | None = None

    def for_model(self) -> Message:
        """The message as the model is sent it again on a later turn."""
        result = self.tool_result
        if result is not None:
            return Message(role="tool", content=result.for_model, tool_call_id=result.id)
        return Message(role=self.role, content=self.content, tool_calls=self.tool_calls)


# A page of a conversation's history as the model is sent it again, newest first (a turn reads
# the history back from its newest message, as far as it fits): each message with its sequence
# number, and its stored token count and the tokenizer that counted it (None: not stored).
HistoryPage = Sequence[tuple[int, Message, int | None, str | None]]


@dataclass(frozen=True, slots=True)
class Page:
    conversations: list[Conversation]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Turn:
    """A chat turn that holds the conversation's lease: its user message is committed, and its
    answer will be stored as ``answer_id`` with the lease's ``token``."""

    conversation: Conversation
    user_message_id: uuid.UUID
    user_seq: int
    answer_id: uuid.UUID
    token: str


@dataclass(frozen=True, slots=True)
class ToolRound:
    """One tool round of an answer: the text and tool calls of the model call that asked for
    them, then each call's result, in the calls' order."""

    text: str
    calls: tuple[ToolCall, ...]
    results: tuple[ToolResult, ...]


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """An answer to store: its completed tool rounds (stored before it), then its final text."""

    content: str
    finish_reason: str | None
    usage: Usage | None
    model: str | None
    rounds: tuple[ToolRound, ...] = ()

    @property
    def message_count(self) -> int:
        return 1 + sum(1 + len(r.results) for r in self.rounds)


@dataclass(frozen=True, slots=True)
class Changes:
    """A PATCH: only the fields present in the request are changed."""

    title: str | None = None
    metadata: dict[str, JsonValue] | None = None
    set_title: bool = False
    set_metadata: bool = False
