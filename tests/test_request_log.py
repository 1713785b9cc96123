"""The per-request JSON log line and ``X-Request-ID``, with telemetry off and on."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from chatbackend.app import create_app
from chatbackend.requestlog import LOGGER_NAME
from chatbackend.telemetry import start_telemetry
from tests.conftest import OPENAI_KEY, ClientFactory, openai_settings
from tests.upstream import (
    MODEL,
    ScriptedStream,
    Upstream,
    chunks_reply,
    error_reply,
    openai_stream,
    sse_bytes,
    stream_reply,
)

PROMPT = "Tell me about the secret marmot 7c1e"
REQUEST: dict[str, Any] = {"messages": [{"role": "user", "content": PROMPT}]}


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(record.getMessage()) for record in self.records]


@pytest.fixture
def request_lines() -> Iterator[_Lines]:
    logger = logging.getLogger(LOGGER_NAME)
    handler, level = _Lines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_a_streamed_request_is_logged_when_its_stream_ends(
    client_for: ClientFactory, request_lines: _Lines
) -> None:
    stream = ScriptedStream(sse_bytes(openai_stream("Marmots", " whistle.")), delay=0.05)
    with client_for(Upstream([stream_reply(stream)])) as client:
        response = client.post("/chat/stream", json=REQUEST)
    (line,) = request_lines.lines()
    assert line.pop("time").endswith("+00:00")
    assert line.pop("request_id") == response.headers["x-request-id"]
    duration, ttft = line.pop("duration_ms"), line.pop("ttft_ms")
    assert 0 < ttft < duration
    assert duration >= 5 * 50, "logged after the last chunk, not when the handler returned"
    assert line == {
        "level": "info",
        "message": "request",
        "trace_id": None,
        "method": "POST",
        "path": "/chat/stream",
        "status": 200,
        "provider": "openai",
        "model": MODEL,
        "input_tokens": 25,
        "output_tokens": 2,
        "upstream_calls": 1,
        "error": None,
    }


def test_the_request_id_is_echoed_or_generated(client_for: ClientFactory) -> None:
    with client_for(Upstream([chunks_reply(openai_stream("Yes."))])) as client:
        given = client.get("/health/live", headers={"x-request-id": "req-42.a:b_c"})
        generated = client.get("/health/live")
        replaced = client.get("/health/live", headers={"x-request-id": 'two words"}'})
        too_long = client.get("/health/live", headers={"x-request-id": "a" * 129})
    assert given.headers["x-request-id"] == "req-42.a:b_c"
    for response in (generated, replaced, too_long):
        identifier = response.headers["x-request-id"]
        assert len(identifier) == 32 and int(identifier, 16) >= 0


def test_the_log_line_carries_the_trace_id(request_lines: _Lines) -> None:
    spans = InMemorySpanExporter()
    settings = openai_settings()
    telemetry = start_telemetry(settings, span_exporter=spans)
    upstream = Upstream([chunks_reply(openai_stream("Yes."))])
    app = create_app(settings, transport=upstream.transport, telemetry=telemetry)
    with TestClient(app) as client:
        client.post("/chat/stream", json=REQUEST, headers={"x-request-id": "abc"})
    server = next(s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER)
    (line,) = request_lines.lines()
    assert line["trace_id"] == format(server.context.trace_id, "032x")
    assert line["request_id"] == "abc"


def test_failures_are_logged_with_their_error_code(
    client_for: ClientFactory, request_lines: _Lines
) -> None:
    body = {"error": {"code": "429", "message": "Requests to the ChatCompletions_Create..."}}
    upstream = Upstream([error_reply(429, body, {"retry-after": "37"})])
    with client_for(upstream, openai_settings(chat_max_body_bytes=1024)) as client:
        client.post("/chat/stream", json=REQUEST)
        client.post("/chat/stream", json={"messages": []})
        client.post("/chat", content=b"x" * 2000, headers={"content-type": "application/json"})
    limited, invalid, too_large = request_lines.lines()
    assert (limited["status"], limited["error"], limited["ttft_ms"]) == (429, "rate_limited", None)
    assert (invalid["status"], invalid["error"]) == (422, "invalid_request")
    assert (too_large["status"], too_large["error"]) == (413, "body_too_large")


def test_a_retried_failure_is_not_the_logged_error(
    client_for: ClientFactory, request_lines: _Lines
) -> None:
    upstream = Upstream(
        [
            error_reply(500, {"error": {"message": "The server had an error"}}),
            chunks_reply(openai_stream("Paris.")),
        ]
    )
    with client_for(upstream) as client:
        client.post("/chat", json=REQUEST)
    (line,) = request_lines.lines()
    assert (line["status"], line["error"], line["upstream_calls"]) == (200, None, 2)


def test_probes_are_logged_at_debug_level(client_for: ClientFactory, request_lines: _Lines) -> None:
    with client_for(Upstream([chunks_reply(openai_stream("Yes."))])) as client:
        client.get("/health/live")
    (record,) = request_lines.records
    assert record.levelno == logging.DEBUG


def test_no_log_line_holds_the_prompt_the_answer_or_the_key(
    client_for: ClientFactory, request_lines: _Lines, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    upstream = Upstream([chunks_reply(openai_stream("Marmots", " whistle."))])
    with client_for(upstream) as client:
        client.post("/chat/stream", json=REQUEST)
        client.post("/chat", json=REQUEST)
    everything = "\n".join(r.getMessage() for r in [*caplog.records, *request_lines.records])
    assert len(request_lines.records) == 2
    for secret in ("marmot", "whistle", OPENAI_KEY):
        assert secret not in everything


def test_a_failure_after_the_first_byte_is_logged_with_its_code(
    client_for: ClientFactory, request_lines: _Lines
) -> None:
    stalled = ScriptedStream(sse_bytes(openai_stream("Once", " upon")), stall_after=2)
    settings = openai_settings(chat_first_token_timeout=0.2)
    with client_for(Upstream([stream_reply(stalled)]), settings) as client:
        response = client.post("/chat/stream", json=REQUEST)
    assert response.status_code == 200
    assert response.text.splitlines()[-1].startswith('{"error":{"code":"upstream_timeout"')
    (line,) = request_lines.lines()
    assert (line["status"], line["error"]) == (200, "upstream_timeout")
