"""``POST /chat`` and ``POST /chat/stream``: a protocol request in, JSON, NDJSON or SSE out."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from chatbackend.cache.replay import CACHE_HEADER, HIT, MISS, replay_stream, replay_whole
from chatbackend.dependencies import ChatRouteDep
from chatbackend.protocol import ChatRequest, ChatResponse
from chatbackend.retrieval.grounding import answer_for
from chatbackend.routes.openapi import CHAT_ERRORS, STREAM_RESPONSES
from chatbackend.streaming import complete_answer, stream_answer

router = APIRouter()


@router.post("/chat", responses=CHAT_ERRORS)
async def chat(
    body: ChatRequest, route: ChatRouteDep, request: Request, response: Response
) -> ChatResponse:
    """Answer a conversation with one JSON object."""
    answer = await answer_for(route.service, route.documents, route.caller, body, whole=True)
    answer.on_finish(route.meter)
    if (cache := route.cache) is not None:
        entry = await cache.consult(answer, route.caller)
        response.headers[CACHE_HEADER] = MISS if entry is None else HIT
        if entry is not None:
            return replay_whole(entry, answer, session_state=body.sessionState)
    return await complete_answer(request, answer, session_state=body.sessionState)


@router.post("/chat/stream", response_class=Response, responses=STREAM_RESPONSES)
async def chat_stream(body: ChatRequest, route: ChatRouteDep, request: Request) -> Response:
    """Stream the answer as NDJSON lines, or as Server-Sent Events when the client accepts them."""
    answer = await answer_for(route.service, route.documents, route.caller, body, whole=False)
    answer.on_finish(route.meter)
    settings = route.settings
    if (cache := route.cache) is None:
        return stream_answer(request, answer, session_state=body.sessionState, settings=settings)
    entry = await cache.consult(answer, route.caller)
    if entry is not None:
        return replay_stream(request, entry, answer, session_state=body.sessionState)
    stream = stream_answer(request, answer, session_state=body.sessionState, settings=settings)
    stream.headers[CACHE_HEADER] = MISS
    return stream
