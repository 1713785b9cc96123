"""HTTP <-> service: request models in, JSON, NDJSON or SSE out. No provider logic lives here."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import JsonValue
from starlette.requests import ClientDisconnect

from chatbackend.chat import ChatStream
from chatbackend.dependencies import ServiceDep, SettingsDep
from chatbackend.encoders import ndjson, opened_events, protocol_events, sse, with_keepalive
from chatbackend.protocol import (
    AssistantMessage,
    ChatRequest,
    ChatResponse,
    ErrorResponse,
    ResponseContext,
)
from chatbackend.providers.fallback import FallbackChain
from chatbackend.streaming import ClosingStreamingResponse, unless_disconnected

NDJSON = "application/x-ndjson"
EVENT_STREAM = "text/event-stream"

_NDJSON_EXAMPLE = "\n".join(
    [
        '{"delta":{"role":"assistant"}}',
        '{"delta":{"content":"Paris"}}',
        '{"delta":{"content":"."}}',
        '{"delta":{},"context":{"finish_reason":"stop","usage":{"prompt_tokens":25,'
        '"completion_tokens":2,"total_tokens":27},"model":"gpt-4.1-mini"},"sessionState":null}',
    ]
)
_SSE_EXAMPLE = 'data: {"delta":{"role":"assistant"}}\n\ndata: {"delta":{"content":"Paris."}}\n\n'
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "Invalid JSON, or the request was refused (content_filter, upstream_rejected)",
        413: "Request body too large",
        422: "Request failed validation; the message names the field",
        429: "Rate limited upstream; see Retry-After",
        502: "The model provider failed or is misconfigured",
        503: "The embedded model's queue is full; see Retry-After",
        504: "The model provider did not answer in time",
    }.items()
}
_STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "One JSON object per line (NDJSON), or SSE with `Accept: text/event-stream`",
        "content": {
            NDJSON: {"schema": {"type": "string"}, "example": _NDJSON_EXAMPLE},
            EVENT_STREAM: {"schema": {"type": "string"}, "example": _SSE_EXAMPLE},
        },
    },
    **_ERRORS,
}

router = APIRouter()


@router.post("/chat", responses=_ERRORS)
async def chat(body: ChatRequest, service: ServiceDep, request: Request) -> ChatResponse:
    """Answer a conversation with one JSON object."""
    answer = await unless_disconnected(request.receive, service.complete(service.prepare(body)))
    finish = answer.finish
    return ChatResponse(
        message=AssistantMessage(content=answer.content),
        context=ResponseContext(
            finish_reason=finish.finish_reason, usage=finish.usage, model=finish.model
        ),
        sessionState=body.sessionState,
    )


@router.post("/chat/stream", response_class=Response, responses=_STREAM_RESPONSES)
async def chat_stream(
    body: ChatRequest, service: ServiceDep, settings: SettingsDep, request: Request
) -> Response:
    """Stream the answer as NDJSON lines, or as Server-Sent Events when the client accepts them."""
    generation = service.prepare(body)
    if EVENT_STREAM in request.headers.get("accept", ""):
        return await _sse_response(
            request,
            service.open_stream(generation),
            body.sessionState,
            settings.sse_keepalive_seconds,
        )
    stream = await unless_disconnected(request.receive, service.open_stream(generation))
    return ClosingStreamingResponse(
        ndjson(protocol_events(stream, body.sessionState)),
        media_type=NDJSON,
        on_close=stream.aclose,
    )


async def _sse_response(
    request: Request,
    opening_work: Awaitable[ChatStream],
    session_state: JsonValue,
    keepalive: float,
) -> Response:
    """Wait up to one keep-alive interval for the first delta before committing to ``200``.

    A failure inside that interval still gets its real status; after the first keep-alive has
    gone out the status is sent, so any later failure is an ``event: error``.
    """
    opening: asyncio.Future[ChatStream] = asyncio.ensure_future(opening_work)
    try:
        await unless_disconnected(request.receive, asyncio.wait({opening}, timeout=keepalive))
    except ClientDisconnect:
        await _discard(opening)
        raise
    if opening.done():
        opening.result()  # raises the opening's ChatError, answered with its status
    events = with_keepalive(opened_events(opening, session_state), keepalive)

    async def release() -> None:
        await _discard(opening)

    return ClosingStreamingResponse(sse(events), media_type=EVENT_STREAM, on_close=release)


async def _discard(opening: asyncio.Future[ChatStream]) -> None:
    if not opening.done():
        opening.cancel()
        await asyncio.gather(opening, return_exceptions=True)
    elif not opening.cancelled() and opening.exception() is None:
        await opening.result().aclose()


@router.get("/health/live")
async def live() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/health/ready", responses={503: {"model": ErrorResponse}})
async def ready(service: ServiceDep) -> Response:
    """The provider is configured (and, for the embedded model, loaded); makes no paid call."""
    provider = service.provider
    if not provider.is_ready():
        return JSONResponse(
            {"error": {"code": "not_ready", "message": f"provider {provider.name} is not ready"}},
            status_code=503,
        )
    body: dict[str, Any] = {"status": "ready", "provider": provider.name, "model": provider.model}
    if isinstance(provider, FallbackChain):
        body["providers"] = await provider.states()
    return JSONResponse(body)
