"""One JSON log line per request, with a request id, written when the response has really ended.

A pure ASGI middleware, not ``BaseHTTPMiddleware``: that one buffers streamed bodies and returns
before a stream ends. The line is written after the app has sent its last byte (or the client has
gone), so a streamed answer is logged with its tokens and its real duration. What the request cost
(provider, model, tokens, time to first token, error code) is filled in by ``ObservedProvider`` and
the error handlers through a ``RequestRecord`` held in a context variable; the record is created
here, so every task that serves the request mutates the same object.

No prompt, answer, key, token or query string ever goes into the line.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = b"x-request-id"
LOGGER_NAME = "chatbackend.requests"
# Accepted as given when it looks like an id; anything else is replaced, so a client cannot write
# arbitrary text (or a huge value) into our logs and response headers.
_VALID_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")
_QUIET_PATHS = frozenset({"/health/live", "/health/ready", "/metrics"})
CLIENT_GONE_STATUS = 499
# Set in the scope's extensions by the HTTP protocol when it answered 408 while the app waited
# for the rest of the body (chatbackend.httpprotocol).
READ_TIMEOUT_EXTENSION = "chatbackend.read_timeout"
READ_TIMEOUT_STATUS = 408

TraceIdSource = Callable[[], str | None]
# Called once per request when its response has ended: (scope, status, seconds).
RequestEndHook = Callable[[Scope, int, float], None]

logger = logging.getLogger(LOGGER_NAME)


@dataclass(slots=True)
class RequestRecord:
    """What one request cost; ``started`` and ``first_token_at`` are ``time.perf_counter()``."""

    request_id: str
    started: float
    provider: str | None = None
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    first_token_at: float | None = None
    upstream_calls: int = 0
    error: str | None = None


current_request: ContextVar[RequestRecord | None] = ContextVar("current_request", default=None)


def note_error(code: str) -> None:
    """Record the protocol error code the client receives, if a request is being served."""
    record = current_request.get()
    if record is not None and record.error is None:
        record.error = code


class RequestLog:
    """Adds ``X-Request-ID`` to every response and logs one JSON line when the response ends.

    ``trace_id`` returns the current trace id when telemetry is on (it is called once per request,
    inside the server span); without it the line carries ``"trace_id": null``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        trace_id: TraceIdSource | None = None,
        on_end: RequestEndHook | None = None,
    ) -> None:
        self.app = app
        self.trace_id = trace_id
        self.on_end = on_end

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        record = RequestRecord(request_id=request_id, started=time.perf_counter())
        trace_id = self.trace_id() if self.trace_id is not None else None
        token = current_request.set(record)
        header = (REQUEST_ID_HEADER, request_id.encode())
        status = 500
        completed = False

        async def logged_send(message: Message) -> None:
            nonlocal status, completed
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            elif not message.get("more_body", False) and message["type"] == "http.response.body":
                completed = True
            await send(message)

        try:
            await self.app(scope, receive, logged_send)
        except Exception:
            # Answered by Starlette's outermost error middleware, outside this one.
            record.error = record.error or "internal_error"
            raise
        finally:
            current_request.reset(token)
            if READ_TIMEOUT_EXTENSION in scope.get("extensions", {}):
                status, record.error = READ_TIMEOUT_STATUS, "request_timeout"
            if record.error is None and (not completed or status == CLIENT_GONE_STATUS):
                record.error = "client_disconnected"
            _log(scope, record, status=status, trace_id=trace_id)
            if self.on_end is not None:
                self.on_end(scope, status, time.perf_counter() - record.started)


def _request_id(scope: Scope) -> str:
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            if _VALID_REQUEST_ID.fullmatch(value):
                return value.decode()
            break
    return uuid.uuid4().hex


def _log(scope: Scope, record: RequestRecord, *, status: int, trace_id: str | None) -> None:
    level = logging.DEBUG if scope["path"] in _QUIET_PATHS else logging.INFO
    if status >= 500:
        level = logging.WARNING
    if not logger.isEnabledFor(level):
        return
    now = time.perf_counter()
    first = record.first_token_at
    line = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "level": logging.getLevelName(level).lower(),
        "message": "request",
        "request_id": record.request_id,
        "trace_id": trace_id,
        "method": scope["method"],
        "path": scope["path"],
        "status": status,
        "duration_ms": round((now - record.started) * 1000, 1),
        "provider": record.provider,
        "model": record.model,
        "input_tokens": record.input_tokens,
        "output_tokens": record.output_tokens,
        "ttft_ms": None if first is None else round((first - record.started) * 1000, 1),
        "upstream_calls": record.upstream_calls,
        "error": record.error,
    }
    logger.log(level, json.dumps(line, separators=(",", ":")))


def log_refused(status: int, code: str) -> None:
    """The line for a request the HTTP protocol refused before the app saw it (no method, path)."""
    if logger.isEnabledFor(logging.INFO):
        line = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "level": "info",
            "message": "request refused",
            "status": status,
            "error": code,
        }
        logger.info(json.dumps(line, separators=(",", ":")))


def configure_request_logger() -> None:
    """Write request lines to stderr as bare JSON, not under the service's text log format.

    Idempotent: tests and workers may build several apps in one process.
    """
    if any(getattr(h, "_chatbackend_json", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler._chatbackend_json = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.propagate = False
