"""Wire models of the Microsoft AI Chat Protocol as this service speaks it.

The request side forbids unknown generation overrides so a typo (``max_token``) is a 422 instead of
a silently ignored option. The response side holds only our own fields: nothing from an SDK object
is dumped onto the wire.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

# The roles a client may send; the domain ``Role`` (providers.base) adds ``tool``.
MessageRole = Literal["user", "assistant", "system"]
FinishReason = str

_MESSAGES_EXAMPLE: list[JsonValue] = [
    {"role": "system", "content": "You answer in one sentence."},
    {"role": "user", "content": "What is the capital of France?"},
]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: MessageRole
    content: str
    context: dict[str, JsonValue] | None = None


class Overrides(BaseModel):
    """Generation options a client may set per request, in ``context.overrides``."""

    model_config = ConfigDict(extra="forbid")

    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1, le=128_000)
    seed: int | None = None
    stop: str | Annotated[list[str], Field(min_length=1, max_length=4)] | None = None


class RequestContext(BaseModel):
    model_config = ConfigDict(extra="allow")

    overrides: Overrides = Overrides()


class ChatRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "messages": _MESSAGES_EXAMPLE,
                    "context": {"overrides": {"temperature": 0.2, "max_tokens": 200}},
                    "sessionState": {"conversation": "42"},
                }
            ]
        },
    )

    messages: list[ChatMessage] = Field(min_length=1)
    context: RequestContext = RequestContext()
    sessionState: JsonValue = None  # noqa: N815 - the protocol's field name


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ResponseContext(BaseModel):
    # Features add their own fields (conversation_id, message_id, data_points, tool_calls).
    model_config = ConfigDict(extra="allow")

    finish_reason: FinishReason | None
    usage: Usage | None
    model: str


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "message": {"role": "assistant", "content": "Paris."},
                    "context": {
                        "finish_reason": "stop",
                        "usage": {"prompt_tokens": 25, "completion_tokens": 2, "total_tokens": 27},
                        "model": "gpt-4.1-mini",
                    },
                    "sessionState": {"conversation": "42"},
                }
            ]
        }
    )

    message: AssistantMessage
    context: ResponseContext
    sessionState: JsonValue = None  # noqa: N815 - the protocol's field name


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"error": {"code": "invalid_request", "message": "messages: ..."}}]
        }
    )

    error: ErrorDetail
