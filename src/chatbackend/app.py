"""The application factory: settings, middleware, routes, error handlers and the lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Sequence
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
from starlette.routing import Match, Route

from chatbackend import errors
from chatbackend.access.middleware import AccessControl
from chatbackend.access.openapi import document_access
from chatbackend.access.ratelimit import RATE_LIMIT_HEADERS, LimitStore
from chatbackend.access.repository import api_keys
from chatbackend.access.service import build_access
from chatbackend.batch.service import CallerSlots
from chatbackend.cache import build_cache
from chatbackend.chat import ChatService
from chatbackend.context.budget import MessageCosts
from chatbackend.context.tokens import load_counter, tokenizer_name
from chatbackend.conversations.leases import LeaseKeeper
from chatbackend.conversations.repository import ConversationRepository
from chatbackend.conversations.routes import router as conversations_router
from chatbackend.dependencies import State
from chatbackend.gctune import tune_garbage_collector
from chatbackend.limits import BodySizeLimit
from chatbackend.providers import build_provider
from chatbackend.providers.fallback import CoolDown, ProviderHealth
from chatbackend.requestlog import RequestLog, TraceIdSource, configure_request_logger, note_error
from chatbackend.retrieval.lifespan import open_documents
from chatbackend.retrieval.upload import body_limit
from chatbackend.routes import routers
from chatbackend.routes.openapi import complete_document
from chatbackend.settings import Settings, load_settings
from chatbackend.store import open_configured_database
from chatbackend.streaming import error_response
from chatbackend.telemetry import start_telemetry
from chatbackend.tools import Tool, ToolRegistry, configured_runner
from chatbackend.tools.documents import RETRIEVAL_TOOLS
from chatbackend.webui import add_page, page_paths
from chatbackend.wirecheck import shown_key

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
    tools: Iterable[Tool] | None = None,
) -> FastAPI:
    """Build the app. ``transport`` and ``credential`` replace the upstream HTTP transport and
    the Azure credential, ``telemetry`` the exporters (tests); everything else comes from
    ``settings`` or the environment. Telemetry built here is shut down with the app.
    ``tools`` replaces the built-in tools the model may call (``CHAT_TOOLS`` selects among them)."""
    settings = settings or load_settings()
    logging.basicConfig(level=settings.log_level, format="%(levelname)s:     %(name)s %(message)s")
    configure_request_logger()
    owned_telemetry = None if telemetry is not None else start_telemetry(settings)
    telemetry = telemetry or owned_telemetry
    tool_runner = configured_runner(
        settings,
        ToolRegistry(tools) if tools is not None else None,
        tracer=telemetry.tool_tracer() if telemetry is not None else None,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[State]:
        store = LimitStore.from_settings(settings)
        health = ProviderHealth(store.storage, CoolDown.from_settings(settings))
        try:
            provider = await build_provider(
                settings, transport=transport, credential=credential, health=health
            )
        except BaseException:
            await store.aclose()
            raise
        try:
            database = await open_configured_database(settings, credential=credential)
        except BaseException:
            await provider.aclose()
            await store.aclose()
            raise
        access = build_access(settings, store, keys=api_keys(settings, database))
        leases = LeaseKeeper(
            ConversationRepository(database),
            lease=settings.conversation_lease_seconds,
            longest_turn=settings.chat_response_timeout + settings.conversation_lease_seconds,
        )
        documents = None
        service: ChatService | None = None
        try:
            logger.info(
                "serving provider=%s model=%s auth=%s telemetry=%s",
                provider.name,
                provider.model,
                provider.auth_mode,
                ",".join(sorted(settings.telemetry_exporters)) or "off",
            )
            documents = await open_documents(
                settings, database, transport=transport, credential=credential
            )
            costs = MessageCosts(await load_counter(provider), tokenizer=tokenizer_name(provider))
            tracer = telemetry.tracer(provider, settings) if telemetry is not None else None
            runner = tool_runner if documents is not None else tool_runner.without(RETRIEVAL_TOOLS)
            service = ChatService(provider, settings, tracer=tracer, tools=runner)
            tune_garbage_collector(settings.gc_threshold)
            yield {
                "settings": settings,
                "service": service,
                "database": database,
                "leases": leases,
                "message_costs": costs,
                "access": access,
                "documents": documents,
                "cache": build_cache(settings, provider, store.client),
                "batch_slots": CallerSlots(settings.batch_concurrency),
            }
        finally:
            if service is not None:
                # Streams the server cancelled at the end of its graceful window are writing
                # their last line: the clients they use are closed after that, not under them.
                await service.responses.wait_idle(_LAST_LINE_SECONDS)
            if documents is not None:
                await documents.aclose()
            await access.aclose()
            await leases.aclose()
            await database.aclose()
            await provider.aclose()
            if owned_telemetry is not None:
                owned_telemetry.shutdown()

    app = FastAPI(
        title="chatbackend",
        summary="A chat backend speaking the Microsoft AI Chat Protocol.",
        version="0.1.0",
        lifespan=lifespan,
        telemetry=FASTAPI_NATIVE_TELEMETRY,
        docs_url="/docs" if settings.docs_enabled else None,
        redoc_url="/redoc" if settings.docs_enabled else None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
    )
    for router in (*routers, conversations_router):
        app.include_router(router)
    add_page(app, conversations=True)
    _add_error_handlers(app)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.chat_max_body_bytes,
        path_limits={"/documents": body_limit(settings.documents_max_bytes)},
    )
    open_paths = _open_paths(settings)
    app.add_middleware(AccessControl, open_paths=open_paths)
    document_access(app, settings, open_paths)
    complete_document(app, tool_names=tool_runner.registry.names)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Content-Type", "Accept", "X-Request-ID", "Authorization", "api-key"],
            expose_headers=["X-Request-ID", "Retry-After", "X-Cache", *RATE_LIMIT_HEADERS],
        )
    app.add_middleware(
        RequestLog,
        trace_id=_trace_id_source(telemetry),
        on_end=telemetry.record_request if telemetry is not None else None,
    )
    if telemetry is not None:
        telemetry.instrument(app)
    return app


# How long the shutdown waits for cancelled streams to write their last line (well inside the
# 5 s between uvicorn's graceful deadline and gunicorn's SIGKILL, see ``serving``).
_LAST_LINE_SECONDS = 2.0


def _open_paths(settings: Settings) -> frozenset[str]:
    """Paths served without a key: health, the chat page, and the API docs when enabled."""
    docs = ("/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json")
    health = ("/health/live", "/health/ready")
    return frozenset((*health, *page_paths(), *(docs if settings.docs_enabled else ())))


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


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = exc.errors()
    if any(problem.get("type") == "json_invalid" for problem in problems):
        return error_response(errors.InvalidJson())
    # FastAPI hands a body it did not parse as JSON (no or another content type) to validation.
    if not _is_json(request.headers.get("content-type", "")) and any(
        tuple(problem.get("loc", ())) == ("body",) for problem in problems
    ):
        return error_response(errors.UnsupportedMediaType())
    return error_response(errors.InvalidRequest("; ".join(_describe(p) for p in problems[:3])))


def _is_json(content_type: str) -> bool:
    """``application/json`` or ``application/*+json``, with any parameters (what FastAPI parses)."""
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _describe(problem: dict[str, Any]) -> str:
    location: Sequence[str | int] = problem.get("loc", ())
    if location and location[0] == "body":
        location = location[1:]
    path = ""
    for part in location:
        if part == "[key]":  # pydantic's marker for "the key itself", after the key
            continue
        # Keys come from the client: only identifier-like ones are named (see ``shown_key``).
        name = shown_key(str(part))
        path += f"[{part}]" if isinstance(part, int) else f".{name}" if path else name
    message = str(problem.get("msg", "is invalid"))
    if problem.get("type") == "extra_forbidden":
        message = "is not a recognised field"
    return f"{path or 'body'}: {message}"


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    if exc.status_code == 400:
        # FastAPI's answer to a body that failed to parse other than as a JSON syntax error:
        # invalid UTF-8, nesting deeper than the parser's recursion limit, a huge integer.
        return error_response(errors.InvalidJson())
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else "The request failed."
    note_error(code)
    body = errors.error_body(code, message)
    headers = exc.headers
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": _allowed_methods(request)}
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


def _allowed_methods(request: Request) -> str:
    """Every method of every route on this path (Starlette's 405 names the first route's only)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.matches(request.scope)[0] is Match.PARTIAL:
            methods |= route.methods or set()
    return ", ".join(sorted(methods))


async def _client_gone(_: Request, __: Exception) -> Response:
    # Nobody is left to read it; 499 marks the access log line as a client disconnect.
    return Response(status_code=499)


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    logger.error("unhandled %s", type(exc).__name__, exc_info=exc)
    return error_response(errors.ChatError())
