"""Wire models of the conversation API (the chat turns reuse the protocol's own models)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chatbackend.conversations.domain import Conversation, StoredMessage, StoredRole
from chatbackend.protocol import SafeJson, Text, Usage
from chatbackend.providers.base import ToolResult

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


class ToolCallOut(BaseModel):
    id: str
    name: str
    arguments: str = Field(description="The JSON text of the arguments, as the model wrote it")


class ToolErrorOut(BaseModel):
    code: str
    message: str


class MessageOut(BaseModel):
    """A stored message. An assistant message that asked for tools has ``tool_calls``; each
    call's result follows as a ``tool`` message with ``tool_call_id``, ``name`` and ``content``,
    or ``content: null`` and ``error`` when the tool failed. The optional fields a message does
    not have are left unset, and its route leaves unset fields out of the response."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0b8f3c1e-6a7d-4f61-9d0e-2c4b5a6f7e81",
                    "role": "assistant",
                    "content": "",
                    "created_at": "2026-12-01T21:00:00Z",
                    "finish_reason": "tool_calls",
                    "tool_calls": [
                        {"id": "call_1", "name": "calculate", "arguments": '{"expression":"2+2"}'}
                    ],
                },
                {
                    "id": "5d2e9a47-1c3b-4e8f-a6d0-7b9c8e1f2a34",
                    "role": "tool",
                    "content": "4",
                    "created_at": "2026-12-01T21:00:00Z",
                    "tool_call_id": "call_1",
                    "name": "calculate",
                },
            ]
        }
    )

    id: str
    role: StoredRole
    content: str | None
    created_at: datetime
    finish_reason: str | None = None
    usage: Usage | None = None
    model: str | None = None
    tool_calls: list[ToolCallOut] | None = None
    tool_call_id: str | None = None
    name: str | None = None
    error: ToolErrorOut | None = None

    @classmethod
    def of(cls, message: StoredMessage) -> MessageOut:
        known: dict[str, Any] = {
            "finish_reason": message.finish_reason,
            "usage": Usage(**message.usage.as_dict()) if message.usage else None,
            "model": message.model,
        }
        if message.tool_calls:
            known["tool_calls"] = [
                ToolCallOut(id=c.id, name=c.name, arguments=c.arguments) for c in message.tool_calls
            ]
        fields = {key: value for key, value in known.items() if value is not None}
        if message.tool_result is not None:
            fields.update(_tool_result(message.tool_result))
        return cls(
            id=str(message.id),
            role=message.role,
            content=fields.pop("content", message.content),
            created_at=message.created_at,
            **fields,
        )


def _tool_result(result: ToolResult) -> dict[str, Any]:
    error = result.error
    if error is None:
        return {"tool_call_id": result.id, "name": result.name, "content": result.content}
    failure = ToolErrorOut(code=error.code, message=error.message)
    return {"tool_call_id": result.id, "name": result.name, "content": None, "error": failure}


class ConversationDetail(ConversationOut):
    messages: list[MessageOut]


class ConversationPage(BaseModel):
    data: list[ConversationOut]
    next_cursor: str | None
