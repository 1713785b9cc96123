"""Wire models of the Microsoft AI Chat Protocol as this service speaks it.

The request side forbids unknown generation overrides so a typo (``max_token``) is a 422 instead of
a silently ignored option, and takes numbers only as JSON numbers (``"5"`` and ``true`` are
refused). It accepts only what can be sent on: every string in the body must be valid Unicode (the
JSON parser lets a lone surrogate escape like ``"\\ud800"`` through), and free-form JSON
(``sessionState``, ``context``) is bounded in depth and integer range (see ``wirecheck``). The
response side holds only our own fields: nothing from an SDK object is dumped onto the wire.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from chatbackend.wirecheck import (
    FREE_JSON_MARK,
    MAX_SAFE_INTEGER,
    check_json,
    check_text,
    integral,
)

# A string that is a sequence of Unicode scalar values (no lone surrogate).
Text = Annotated[str, AfterValidator(check_text)]
# Free-form JSON whose strings are ``Text``, nested at most ``MAX_JSON_DEPTH`` levels, with
# integers in the 64-bit range (what every JSON encoder on the way back can write).
SafeJson = Annotated[JsonValue, BeforeValidator(check_json), WithJsonSchema(FREE_JSON_MARK)]
StrictFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]
# Never a string or a boolean; a number without a fraction (``5.0``, an integer to JSON Schema
# too) is turned into one by the models' ``integral`` before-validators (a ``BeforeValidator``
# here would hide the bounds from the JSON schema).
StrictInt = Annotated[int, Field(strict=True)]

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
    content: Text
    context: dict[Text, SafeJson] | None = None


class RetrievalOverride(BaseModel):
    """``context.overrides.retrieval``: answer from the caller's documents (issue 15)."""

    model_config = ConfigDict(extra="forbid")

    top_k: StrictInt = Field(default=5, ge=1, le=50)
    mode: Literal["hybrid", "vector", "text"] = "hybrid"

    _integral = field_validator("top_k", mode="before")(integral)


class Overrides(BaseModel):
    """Generation options a client may set per request, in ``context.overrides``."""

    model_config = ConfigDict(extra="forbid")

    temperature: StrictFloat | None = Field(default=None, ge=0, le=2)
    top_p: StrictFloat | None = Field(default=None, gt=0, le=1)
    max_tokens: StrictInt | None = Field(default=None, ge=1, le=128_000)
    # JSON's interoperable integers (RFC 7493): a browser's seed past 2**53 is already rounded.
    seed: StrictInt | None = Field(default=None, ge=-MAX_SAFE_INTEGER, le=MAX_SAFE_INTEGER)
    stop: str | Annotated[list[str], Field(min_length=1, max_length=4)] | None = None
    # Function calling: narrow the server's tools by name, or turn them off for this request.
    tools: Annotated[list[str], Field(max_length=64)] | None = None
    tool_choice: Literal["auto", "none"] | None = None
    retrieval: RetrievalOverride | None = None

    _integral = field_validator("max_tokens", "seed", mode="before")(integral)

    @field_validator("stop")
    @classmethod
    def _check_stop(cls, stop: str | list[str] | None) -> str | list[str] | None:
        # Checked here rather than per union member, so an error names ``stop``, not a member.
        for text in [stop] if isinstance(stop, str) else stop or ():
            check_text(text)
        return stop


class RequestContext(BaseModel):
    model_config = ConfigDict(
        extra="allow", json_schema_extra={"additionalProperties": {"x-chatbackend-free-json": True}}
    )

    overrides: Overrides = Overrides()

    @model_validator(mode="after")
    def _check_extra(self) -> Self:
        # Unknown context keys are kept as given (the protocol allows them): check them as JSON.
        check_json(self.__pydantic_extra__ or {})
        return self


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
    sessionState: SafeJson = None  # noqa: N815 - the protocol's field name


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
