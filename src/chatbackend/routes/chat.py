"""``POST /chat`` and ``POST /chat/stream``: a protocol request in, JSON, NDJSON or SSE out."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from chatbackend.dependencies import ServiceDep, SettingsDep, TokenMeterDep
from chatbackend.protocol import ChatRequest, ChatResponse
from chatbackend.routes.openapi import CHAT_ERRORS, STREAM_RESPONSES
from chatbackend.streaming import complete_answer, stream_answer

router = APIRouter()


@router.post("/chat", responses=CHAT_ERRORS)
async def chat(
    body: ChatRequest, service: ServiceDep, meter: TokenMeterDep, request: Request
) -> ChatResponse:
    """Answer a conversation with one JSON object."""
    answer = service.answer(service.prepare(body))
    answer.on_finish(meter)
    return await complete_answer(request, answer, session_state=body.sessionState)


@router.post("/chat/stream", response_class=Response, responses=STREAM_RESPONSES)
async def chat_stream(
    body: ChatRequest,
    service: ServiceDep,
    settings: SettingsDep,
    meter: TokenMeterDep,
    request: Request,
) -> Response:
    """Stream the answer as NDJSON lines, or as Server-Sent Events when the client accepts them."""
    answer = service.answer(service.prepare(body))
    answer.on_finish(meter)
    return stream_answer(request, answer, session_state=body.sessionState, settings=settings)
