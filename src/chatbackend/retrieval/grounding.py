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
from typing import Any

from chatbackend import errors
from chatbackend.access.caller import Caller
from chatbackend.chat import Answer, ChatService
from chatbackend.protocol import ChatRequest, RetrievalOverride
from chatbackend.providers.base import GenerationRequest, Message
from chatbackend.retrieval.service import DocumentService, Hit

SOURCES_PROMPT = (
    "Answer using only the numbered sources below, and cite each source you use as [n]. "
    "If the sources do not contain the answer, say that you do not know.\n\nSources:\n{sources}"
)


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


async def answer_for(
    service: ChatService,
    documents: DocumentService | None,
    caller: Caller,
    body: ChatRequest,
    *,
    whole: bool,
) -> Answer:
    """The answer to ``body``; grounded in the caller's documents when it asks for retrieval.

    The sources go on the first line of a stream, and into the response's ``context`` for a
    whole answer (``whole``)."""
    generation = service.prepare(body)
    override = body.context.overrides.retrieval
    if override is None:
        return service.answer(generation)
    if documents is None:
        raise errors.RetrievalUnavailable()
    grounded = await ground(documents, caller, generation, override)
    answer = service.answer(grounded.generation)
    (answer.context_final if whole else answer.context_first).update(grounded.context)
    return answer
