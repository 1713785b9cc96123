"""What the repository hands to the service: plain frozen values, no ORM rows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import JsonValue

from chatbackend.providers.base import Usage

StoredRole = Literal["user", "assistant"]


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


@dataclass(frozen=True, slots=True)
class Page:
    conversations: list[Conversation]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Turn:
    """A chat turn that holds the conversation's lease: its user message is committed, and its
    answer will be stored as ``answer_id`` with the lease's ``token``."""

    conversation: Conversation
    history: list[StoredMessage]
    user_message_id: uuid.UUID
    answer_id: uuid.UUID
    token: str


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    content: str
    finish_reason: str | None
    usage: Usage | None
    model: str | None


@dataclass(frozen=True, slots=True)
class Changes:
    """A PATCH: only the fields present in the request are changed."""

    title: str | None = None
    metadata: dict[str, JsonValue] | None = None
    set_title: bool = False
    set_metadata: bool = False
