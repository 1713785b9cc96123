"""Grounded answers: search with the user's question, put the chunks in the prompt as numbered
sources, and hand the sources to the client first (``context.data_points``).

The search runs before the answer opens, so no database connection is held while the model
streams. With history, the search query is the newest user message preceded by the one before it
(a follow-up such as "and how tall is it?" carries its subject from there); no model call is spent
on rewriting it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chatbackend.access.caller import Caller
from chatbackend.providers.base import GenerationRequest, Message
from chatbackend.retrieval.service import DocumentService, Hit

SOURCES_PROMPT = (
    "Answer using only the numbered sources below, and cite each source you use as [n]. "
    "If the sources do not contain the answer, say that you do not know.\n\nSources:\n{sources}"
)


class RetrievalOverride(BaseModel):
    """``context.overrides.retrieval``: answer from the caller's documents."""

    model_config = ConfigDict(extra="forbid")

    top_k: int = Field(default=5, ge=1, le=50)
    mode: Literal["hybrid", "vector", "text"] = "hybrid"


@dataclasses.dataclass(frozen=True, slots=True)
class Grounded:
    generation: GenerationRequest
    context: dict[str, Any]  # data_points and retrieval_ms, for the first line (and /chat)


def search_query(messages: Sequence[Message]) -> str:
    users = [m.content for m in messages if m.role == "user"]
    return "\n".join(users[-2:]) if len(users) > 1 else (users[-1] if users else "")


async def ground(
    documents: DocumentService,
    caller: Caller,
    generation: GenerationRequest,
    override: RetrievalOverride,
) -> Grounded:
    found = await documents.search(
        caller, search_query(generation.messages), top_k=override.top_k, mode=override.mode
    )
    sources = "\n\n".join(f"[{i}] {hit.title}\n{hit.text}" for i, hit in enumerate(found.hits, 1))
    instruction = Message(role="system", content=SOURCES_PROMPT.format(sources=sources or "none"))
    messages = list(generation.messages)
    last_system = max((i for i, m in enumerate(messages) if m.role == "system"), default=-1)
    messages.insert(last_system + 1, instruction)
    return Grounded(
        dataclasses.replace(generation, messages=messages),
        {"data_points": data_points(found.hits), "retrieval_ms": found.retrieval_ms},
    )


def data_points(hits: Sequence[Hit]) -> list[dict[str, Any]]:
    return [
        {"id": str(hit.chunk_id), "title": hit.title, "source": hit.source, "text": hit.text}
        for hit in hits
    ]
