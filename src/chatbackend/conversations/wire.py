"""Wire models of the conversation API (the chat turns reuse the protocol's own models)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from chatbackend.conversations.domain import Conversation, StoredMessage, StoredRole
from chatbackend.protocol import SafeJson, Text, Usage

# Free-form, checked like the protocol's own free-form JSON (``wirecheck``).
Metadata = dict[Text, SafeJson]


class ConversationCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"title": "Trip to Paris", "metadata": {"tag": "travel"}}]},
    )

    title: str | None = Field(default=None, max_length=300)
    metadata: Metadata = Field(default_factory=dict, max_length=64)


class ConversationPatch(BaseModel):
    """Only the fields present are changed; ``title: null`` clears the title."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, max_length=300)
    metadata: Metadata | None = Field(default=None, max_length=64)


class ConversationOut(BaseModel):
    id: str
    title: str | None
    metadata: Metadata
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, conversation: Conversation) -> ConversationOut:
        return cls(
            id=str(conversation.id),
            title=conversation.title,
            metadata=conversation.metadata,
            created_at=conversation.created_at,
            updated_at=conversation.updated_at,
        )


class MessageOut(BaseModel):
    id: str
    role: StoredRole
    content: str
    created_at: datetime
    finish_reason: str | None = None
    usage: Usage | None = None
    model: str | None = None

    @model_serializer(mode="wrap")
    def _omit_unknown(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {key: value for key, value in data.items() if value is not None or key == "content"}

    @classmethod
    def of(cls, message: StoredMessage) -> MessageOut:
        return cls(
            id=str(message.id),
            role=message.role,
            content=message.content,
            created_at=message.created_at,
            finish_reason=message.finish_reason,
            usage=Usage(**message.usage.as_dict()) if message.usage else None,
            model=message.model,
        )


class ConversationDetail(ConversationOut):
    messages: list[MessageOut]


class ConversationPage(BaseModel):
    data: list[ConversationOut]
    next_cursor: str | None
