"""The application factory: settings, middleware, routes, error handlers and the lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx2
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from fastapi.telemetry import TelemetryConfig
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from chatbackend import errors
from chatbackend.chat import ChatService
from chatbackend.dependencies import State
from chatbackend.gctune import tune_garbage_collector
from chatbackend.limits import BodySizeLimit
from chatbackend.providers import build_provider
from chatbackend.requestlog import RequestLog, TraceIdSource, configure_request_logger
from chatbackend.routes import router
from chatbackend.settings import Settings, load_settings
from chatbackend.streaming import error_response
from chatbackend.telemetry import start_telemetry
from chatbackend.webui import add_page

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

    from chatbackend.telemetry.setup import Telemetry

logger = logging.getLogger("chatbackend")

# FastAPI's own OpenTelemetry support stays off, whatever the environment says: telemetry is set
# up once, from settings, in ``chatbackend.telemetry``; a second server span per request would
# double the cost, and FastAPI's validation-error logs could carry request bodies (prompts).
FASTAPI_NATIVE_TELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
    "auto_configure": False,
}


def create_app(
    settings: Settings | None = None,
    *,
    transport: httpx2.AsyncBaseTransport | None = None,
    credential: AsyncTokenCredential | None = None,
    telemetry: Telemetry | None = None,
) -> FastAPI:
    """Build the app. ``transport`` and ``credential`` replace the upstream HTTP transport and
    the Azure credential, ``telemetry`` the exporters (tests); everything else comes from
    ``settings`` or the environment. Telemetry built here is shut down with the app."""
    settings = settings or load_settings()
    logging.basicConfig(level=settings.log_level, format="%(levelname)s:     %(name)s %(message)s")
    configure_request_logger()
    owned_telemetry = None if telemetry is not None else start_telemetry(settings)
    telemetry = telemetry or owned_telemetry

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[State]:
        provider = await build_provider(settings, transport=transport, credential=credential)
        try:
            logger.info(
                "serving provider=%s model=%s auth=%s telemetry=%s",
                provider.name,
                provider.model,
                provider.auth_mode,
                ",".join(sorted(settings.telemetry_exporters)) or "off",
            )
            tracer = telemetry.tracer(provider, settings) if telemetry is not None else None
            service = ChatService(provider, settings, tracer=tracer)
            tune_garbage_collector(settings.gc_threshold)
            yield {"settings": settings, "service": service}
        finally:
            await provider.aclose()
            if owned_telemetry is not None:
                owned_telemetry.shutdown()

    app = FastAPI(
        title="chatbackend",
        summary="A chat backend speaking the Microsoft AI Chat Protocol.",
        version="0.1.0",
        lifespan=lifespan,
        telemetry=FASTAPI_NATIVE_TELEMETRY,
    )
    app.include_router(router)
    add_page(app)
    _add_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.chat_max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "Accept", "X-Request-ID"],
            expose_headers=["X-Request-ID"],
        )
    app.add_middleware(
        RequestLog,
        trace_id=_trace_id_source(telemetry),
        on_end=telemetry.record_request if telemetry is not None else None,
    )
    if telemetry is not None:
        telemetry.instrument(app)
    return app


def _trace_id_source(telemetry: Telemetry | None) -> TraceIdSource | None:
    if telemetry is None:
        return None
    from chatbackend.telemetry.setup import current_trace_id

    return current_trace_id


def _add_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(errors.ChatError, _chat_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(Exception, _unexpected)


async def _chat_error(_: Request, exc: errors.ChatError) -> JSONResponse:
    if exc.status >= 500:
        logger.warning("request failed: %s", exc.code)
    return error_response(exc)


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    problems = exc.errors()
    if any(problem.get("type") == "json_invalid" for problem in problems):
        return error_response(errors.InvalidJson())
    return error_response(errors.InvalidRequest("; ".join(_describe(p) for p in problems[:3])))


def _describe(problem: dict[str, Any]) -> str:
    location: Sequence[str | int] = problem.get("loc", ())
    if location and location[0] == "body":
        location = location[1:]
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    message = str(problem.get("msg", "is invalid"))
    if problem.get("type") == "extra_forbidden":
        message = "is not a recognised field"
    return f"{path or 'body'}: {message}"


async def _http_error(_: Request, exc: HTTPException) -> JSONResponse:
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else "The request failed."
    body = errors.error_body(code, message)
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def _client_gone(_: Request, __: Exception) -> Response:
    # Nobody is left to read it; 499 marks the access log line as a client disconnect.
    return Response(status_code=499)


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    logger.error("unhandled %s", type(exc).__name__, exc_info=exc)
    return error_response(errors.ChatError())
