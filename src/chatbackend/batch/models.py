"""The wire models of ``POST /batch``: items that are ``/chat`` bodies with an id, and results."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator
from pydantic_core import PydanticCustomError

from chatbackend.protocol import (
    AssistantMessage,
    ChatMessage,
    ChatRequest,
    ErrorDetail,
    RequestContext,
    ResponseContext,
    Text,
)

MAX_ITEMS = 100
ItemId = Annotated[Text, Field(min_length=1, max_length=200)]

_EXAMPLE: list[JsonValue] = [
    {"id": "q1", "messages": [{"role": "user", "content": "What is the capital of France?"}]},
    {
        "id": "q2",
        "messages": [{"role": "user", "content": "And of Italy?"}],
        "context": {"overrides": {"temperature": 0}},
    },
]


class BatchItem(BaseModel):
    """One request of a batch: a ``/chat`` body (without ``sessionState``) and its id."""

    model_config = ConfigDict(extra="forbid")

    id: ItemId
    messages: list[ChatMessage] = Field(min_length=1)
    context: RequestContext = RequestContext()

    def chat_request(self) -> ChatRequest:
        """The item as a ``/chat`` body (already validated: not checked again)."""
        return ChatRequest.model_construct(
            messages=self.messages, context=self.context, sessionState=None
        )


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"items": _EXAMPLE}]})

    items: list[BatchItem] = Field(min_length=1, max_length=MAX_ITEMS)

    @field_validator("items")
    @classmethod
    def _unique_ids(cls, items: list[BatchItem]) -> list[BatchItem]:
        first: dict[str, int] = {}
        for index, item in enumerate(items):
            if (earlier := first.setdefault(item.id, index)) != index:
                raise PydanticCustomError(
                    "duplicate_id",
                    "the id of items[{index}] repeats the id of items[{earlier}]",
                    {"index": index, "earlier": earlier},
                )
        return items


class BatchAnswer(BaseModel):
    """An item that was answered: its message and ``context``, as ``/chat`` returns them."""

    id: str
    message: AssistantMessage
    context: ResponseContext


class BatchFailure(BaseModel):
    """An item that failed, with the error ``/chat`` would have answered (the batch goes on)."""

    id: str
    error: ErrorDetail


class BatchResponse(BaseModel):
    """Every item's result, in the order of the request's items."""

    items: list[BatchAnswer | BatchFailure]
