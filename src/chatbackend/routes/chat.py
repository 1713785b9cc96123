"""``POST /chat`` and ``POST /chat/stream``: a protocol request in, JSON, NDJSON or SSE out."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from chatbackend.dependencies import (
    CallerDep,
    OptionalDocumentsDep,
    ServiceDep,
    SettingsDep,
    TokenMeterDep,
    ToolContextDep,
)
from chatbackend.protocol import ChatRequest, ChatResponse
from chatbackend.retrieval.grounding import answer_for
from chatbackend.routes.openapi import CHAT_ERRORS, STREAM_RESPONSES
from chatbackend.streaming import complete_answer, stream_answer

router = APIRouter()


@router.post("/chat", responses=CHAT_ERRORS, dependencies=[ToolContextDep])
async def chat(
    body: ChatRequest,
    service: ServiceDep,
    documents: OptionalDocumentsDep,
    caller: CallerDep,
    meter: TokenMeterDep,
    request: Request,
) -> ChatResponse:
    """Answer a conversation with one JSON object."""
    answer = await answer_for(service, documents, caller, body, whole=True)
    answer.on_finish(meter)
    return await complete_answer(request, answer, session_state=body.sessionState)


@router.post(
    "/chat/stream",
    response_class=Response,
    responses=STREAM_RESPONSES,
    dependencies=[ToolContextDep],
)
async def chat_stream(
    body: ChatRequest,
    service: ServiceDep,
    documents: OptionalDocumentsDep,
    caller: CallerDep,
    meter: TokenMeterDep,
    settings: SettingsDep,
    request: Request,
) -> Response:
    """Stream the answer as NDJSON lines, or as Server-Sent Events when the client accepts them."""
    answer = await answer_for(service, documents, caller, body, whole=False)
    answer.on_finish(meter)
    return stream_answer(request, answer, session_state=body.sessionState, settings=settings)
