"""Traces and metrics through in-memory exporters, the real SDK and the fake upstream."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    InMemoryMetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from chatbackend.app import create_app
from chatbackend.settings import Settings
from chatbackend.telemetry import start_telemetry
from chatbackend.telemetry.setup import metric_readers, span_processors, upstream_address
from tests.conftest import azure_settings, openai_settings
from tests.servers import serve
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
ANSWER = ("Marmots", " whistle", " loudly.")
REQUEST: dict[str, Any] = {"messages": [{"role": "user", "content": PROMPT}]}


@dataclass
class Traced:
    client: TestClient
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def llm_spans(self) -> list[ReadableSpan]:
        return [s for s in self.finished() if s.kind is SpanKind.CLIENT]

    def points(self, name: str) -> list[Any]:
        data = self.metrics.get_metrics_data()
        assert data is not None
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]


@contextmanager
def traced(upstream: Upstream, settings: Settings | None = None) -> Iterator[Traced]:
    settings = settings or openai_settings()
    spans, metrics = InMemorySpanExporter(), InMemoryMetricReader()
    telemetry = start_telemetry(settings, span_exporter=spans, metric_reader=metrics)
    assert telemetry is not None
    app = create_app(settings, transport=upstream.transport, telemetry=telemetry)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Traced(client, spans, metrics)
    finally:
        telemetry.shutdown()


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def test_a_streamed_request_is_one_server_span_with_one_llm_child() -> None:
    upstream = Upstream([chunks_reply(openai_stream(*ANSWER))])
    with traced(upstream) as run:
        response = run.client.post("/chat/stream", json=REQUEST)
        assert response.status_code == 200
        spans = run.finished()
    assert len(spans) == 2, [s.name for s in spans]
    server = next(s for s in spans if s.kind is SpanKind.SERVER)
    (llm,) = run.llm_spans()
    assert server.name == "POST /chat/stream"
    assert llm.parent is not None and llm.parent.span_id == server.context.span_id
    assert llm.context.trace_id == server.context.trace_id
    assert llm.name == "chat gpt-4.1-mini"
    found = attributes(llm)
    assert found.pop("gen_ai.response.time_to_first_chunk") > 0
    assert found == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4.1-mini",
        "gen_ai.request.stream": True,
        "server.address": "api.openai.com",
        "server.port": 443,
        "gen_ai.response.model": MODEL,
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 25,
        "gen_ai.usage.output_tokens": 3,
    }
    assert llm.status.status_code is StatusCode.UNSET
    assert llm.end_time is not None and server.end_time is not None
    assert llm.end_time <= server.end_time


def test_the_server_span_continues_the_callers_trace_and_names_the_route() -> None:
    upstream = Upstream([chunks_reply(openai_stream(*ANSWER))])
    trace_id, parent_id = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    traceparent = f"00-{trace_id}-{parent_id}-01"
    with traced(upstream) as run:
        response = run.client.post(
            "/chat/stream?api-key=secret", json=REQUEST, headers={"traceparent": traceparent}
        )
        assert response.status_code == 200
        spans = run.finished()
    server = next(s for s in spans if s.kind is SpanKind.SERVER)
    assert format(server.context.trace_id, "032x") == trace_id
    assert server.parent is not None and format(server.parent.span_id, "016x") == parent_id
    found = attributes(server)
    assert found["http.request.method"] == "POST"
    assert found["http.route"] == "/chat/stream"
    assert found["http.response.status_code"] == 200
    assert found["url.path"] == "/chat/stream"
    assert "secret" not in json.dumps(found), "the query string is never recorded"
    assert server.status.status_code is StatusCode.UNSET


def test_a_refused_request_has_a_server_span_with_its_status() -> None:
    with traced(Upstream([])) as run:
        refused = run.client.post(
            "/chat/stream", content=b"{", headers={"content-type": "application/json"}
        )
        assert refused.status_code == 400
        spans = run.finished()
    (server,) = spans
    assert server.kind is SpanKind.SERVER and server.name == "POST /chat/stream"
    assert attributes(server)["http.response.status_code"] == 400


def test_request_options_become_request_attributes() -> None:
    upstream = Upstream([chunks_reply(openai_stream("Yes."))])
    overrides = {"temperature": 0.2, "top_p": 0.9, "max_tokens": 50, "seed": 7, "stop": "END"}
    with traced(upstream) as run:
        run.client.post("/chat/stream", json={**REQUEST, "context": {"overrides": overrides}})
        (llm,) = run.llm_spans()
    found = attributes(llm)
    assert found["gen_ai.request.temperature"] == 0.2
    assert found["gen_ai.request.top_p"] == 0.9
    assert found["gen_ai.request.max_tokens"] == 50
    assert found["gen_ai.request.seed"] == 7
    assert found["gen_ai.request.stop_sequences"] == ("END",)


def test_genai_metrics_are_recorded() -> None:
    upstream = Upstream([chunks_reply(openai_stream(*ANSWER))])
    with traced(upstream) as run:
        run.client.post("/chat/stream", json=REQUEST)
        tokens = {
            p.attributes["gen_ai.token.type"]: p.sum
            for p in run.points("gen_ai.client.token.usage")
        }
        (duration,) = run.points("gen_ai.client.operation.duration")
        (first_chunk,) = run.points("gen_ai.client.operation.time_to_first_chunk")
        (active,) = run.points("chatbackend.upstream.active_streams")
        (server_duration,) = run.points("http.server.request.duration")
        assert not run.points("http.server.duration"), "the instrumentation records no metrics"
    assert tokens == {"input": 25, "output": 3}
    assert duration.count == 1 and duration.attributes["gen_ai.response.model"] == MODEL
    assert "error.type" not in duration.attributes
    assert first_chunk.count == 1 and first_chunk.sum <= duration.sum
    assert active.value == 0
    assert dict(server_duration.attributes) == {
        "http.request.method": "POST",
        "http.response.status_code": 200,
        "http.route": "/chat/stream",
    }
    assert server_duration.sum >= duration.sum  # to the end of the streamed body


def test_an_upstream_429_marks_the_llm_span_as_an_error() -> None:
    body = {"error": {"code": "429", "message": "Requests to the ChatCompletions_Create..."}}
    upstream = Upstream([error_reply(429, body, {"retry-after": "37"})])
    with traced(upstream, azure_settings(chat_retry_budget_seconds=10)) as run:
        response = run.client.post("/chat/stream", json=REQUEST)
        (errors_point,) = run.points("chatbackend.upstream.errors")
        (duration,) = run.points("gen_ai.client.operation.duration")
    assert response.status_code == 429
    (llm,) = run.llm_spans()
    assert llm.status.status_code is StatusCode.ERROR
    assert attributes(llm)["error.type"] == "rate_limited"
    assert attributes(llm)["gen_ai.provider.name"] == "azure.ai.openai"
    assert "gen_ai.usage.input_tokens" not in attributes(llm)
    assert errors_point.value == 1 and errors_point.attributes["error.type"] == "rate_limited"
    assert duration.attributes["error.type"] == "rate_limited"


def test_each_retried_attempt_is_its_own_llm_span() -> None:
    upstream = Upstream(
        [
            error_reply(500, {"error": {"message": "The server had an error"}}),
            chunks_reply(openai_stream("Paris.")),
        ]
    )
    with traced(upstream) as run:
        assert run.client.post("/chat/stream", json=REQUEST).status_code == 200
        first, second = sorted(run.llm_spans(), key=lambda s: s.start_time or 0)
    assert attributes(first)["error.type"] == "upstream_error"
    assert second.status.status_code is StatusCode.UNSET
    assert attributes(second)["gen_ai.usage.output_tokens"] == 1


def test_a_client_disconnect_still_ends_the_llm_span() -> None:
    stream = ScriptedStream(sse_bytes(openai_stream("Once", " upon")), stall_after=2)
    upstream = Upstream([stream_reply(stream)])
    spans, metrics = InMemorySpanExporter(), InMemoryMetricReader()
    settings = openai_settings(sse_keepalive_seconds=60)
    telemetry = start_telemetry(settings, span_exporter=spans, metric_reader=metrics)
    app = create_app(settings, transport=upstream.transport, telemetry=telemetry)
    with serve(app) as url, httpx2.Client(base_url=url, timeout=10) as client:
        with client.stream("POST", "/chat/stream", json=REQUEST) as response:
            lines = response.iter_lines()  # kept: closing it would close the response
            assert next(lines) == '{"delta":{"role":"assistant"}}'
            assert next(lines) == '{"delta":{"content":"Once"}}'
            assert not [s for s in spans.get_finished_spans() if s.kind is SpanKind.CLIENT]
        assert stream.closed.wait(3.0)
        llm = _wait_for_span(spans, SpanKind.CLIENT)
        server = _wait_for_span(spans, SpanKind.SERVER)
    assert attributes(llm)["error.type"] == "cancelled"
    assert attributes(llm)["gen_ai.response.time_to_first_chunk"] > 0
    assert llm.parent is not None and llm.parent.span_id == server.context.span_id


def _wait_for_span(spans: InMemorySpanExporter, kind: SpanKind) -> ReadableSpan:
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        for span in spans.get_finished_spans():
            if span.kind is kind:
                return span
        time.sleep(0.01)
    raise AssertionError(f"no {kind.name} span ended")


def test_probes_docs_and_metrics_are_not_traced() -> None:
    upstream = Upstream([chunks_reply(openai_stream("Yes."))])
    with traced(upstream, openai_settings(metrics_prometheus=True)) as run:
        for path in ("/health/live", "/health/ready", "/docs", "/openapi.json", "/metrics"):
            assert run.client.get(path).status_code == 200, path
        assert run.finished() == []


def test_prometheus_serves_the_same_metrics() -> None:
    upstream = Upstream([chunks_reply(openai_stream(*ANSWER))])
    with traced(upstream, openai_settings(metrics_prometheus=True)) as run:
        run.client.post("/chat/stream", json=REQUEST)
        page = run.client.get("/metrics").text
    sums = [line for line in page.splitlines() if line.startswith("gen_ai_client_token_usage_sum")]
    assert any('gen_ai_token_type="output"' in line and line.endswith(" 3.0") for line in sums)
    assert any('gen_ai_token_type="input"' in line and line.endswith(" 25.0") for line in sums)
    assert "gen_ai_client_operation_time_to_first_chunk_seconds_count" in page


def test_prompt_and_answer_are_not_recorded_by_default() -> None:
    upstream = Upstream([chunks_reply(openai_stream(*ANSWER))])
    with traced(upstream) as run:
        run.client.post("/chat/stream", json=REQUEST)
        recorded = _everything_recorded(run.finished())
    assert "marmot" not in recorded
    assert "whistle" not in recorded


def test_content_capture_records_prompt_and_answer_when_turned_on() -> None:
    upstream = Upstream([chunks_reply(openai_stream(*ANSWER))])
    with traced(upstream, openai_settings(telemetry_capture_content=True)) as run:
        run.client.post("/chat/stream", json=REQUEST)
        (llm,) = run.llm_spans()
    found = attributes(llm)
    messages = json.loads(found["gen_ai.input.messages"])
    assert messages[-1] == {"role": "user", "parts": [{"type": "text", "content": PROMPT}]}
    assert messages[0]["role"] == "system"
    assert json.loads(found["gen_ai.output.messages"]) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "".join(ANSWER)}],
            "finish_reason": "stop",
        }
    ]


def _everything_recorded(spans: list[ReadableSpan]) -> str:
    """Every name, attribute and event of ``spans`` as one string, to search for text."""
    parts: list[str] = []
    for span in spans:
        parts += [span.name, repr(dict(span.attributes or {})), repr(span.status.description)]
        parts += [f"{e.name} {dict(e.attributes or {})!r}" for e in span.events]
    return "\n".join(parts)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, set()),
        ({"otel_exporter_otlp_endpoint": "http://collector:4318"}, {"otlp"}),
        ({"applicationinsights_connection_string": "InstrumentationKey=0"}, {"azure_monitor"}),
        ({"telemetry_console": True}, {"console"}),
        ({"metrics_prometheus": True}, {"prometheus"}),
        ({"telemetry_console": True, "metrics_prometheus": True}, {"console", "prometheus"}),
    ],
)
def test_the_configured_exporters_turn_telemetry_on(
    overrides: dict[str, Any], expected: set[str]
) -> None:
    assert openai_settings(**overrides).telemetry_exporters == expected


def test_otlp_and_console_exporters_are_built_without_a_network() -> None:
    settings = openai_settings(
        otel_exporter_otlp_endpoint="http://collector:4318/", telemetry_console=True
    )
    processors = list(span_processors(settings))
    readers = list(metric_readers(settings))
    assert [type(p) for p in processors] == [SimpleSpanProcessor, BatchSpanProcessor]
    assert [type(r) for r in readers] == [PeriodicExportingMetricReader] * 2
    otlp = processors[1].span_exporter  # type: ignore[attr-defined]
    assert otlp._endpoint == "http://collector:4318/v1/traces"
    assert isinstance(readers[0]._exporter, ConsoleMetricExporter)  # type: ignore[attr-defined]
    for component in [*processors, *readers]:
        component.shutdown()


def test_upstream_address_comes_from_the_provider_settings() -> None:
    assert upstream_address(azure_settings()) == ("contoso.openai.azure.com", 443)
    compatible = openai_settings(
        chat_provider="compatible", chat_base_url="http://localhost:11434/v1", chat_model="m"
    )
    assert upstream_address(compatible) == ("localhost", 11434)
    assert upstream_address(openai_settings(chat_provider="local")) is None


def test_without_an_exporter_no_sdk_is_loaded_and_nothing_is_instrumented() -> None:
    """In a fresh interpreter: build the app, serve a request, check no SDK module was imported."""
    assert start_telemetry(openai_settings()) is None
    script = """
import sys
from fastapi.testclient import TestClient
from chatbackend.app import create_app
from chatbackend.settings import load_settings
app = create_app(load_settings(chat_provider="openai", openai_api_key="sk-test"))
with TestClient(app) as client:
    assert client.get("/health/live").status_code == 200
loaded = sorted(m for m in sys.modules if m.startswith(("opentelemetry.sdk", "opentelemetry.inst")))
print(loaded, getattr(app, "_is_instrumented_by_opentelemetry", False))
"""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("OTEL_", "APPLICATIONINSIGHTS_", "TELEMETRY_", "METRICS_"))
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == "[] False"


def test_the_embedded_model_gets_the_same_span() -> None:
    settings = openai_settings(chat_provider="local", local_model_path=None)
    request = {
        "messages": [{"role": "user", "content": "Say hi"}],
        "context": {"overrides": {"temperature": 0, "seed": 42, "max_tokens": 4}},
    }
    with traced(Upstream([]), settings) as run:
        assert run.client.post("/chat/stream", json=request).status_code == 200
        (llm,) = run.llm_spans()
        (tokens,) = [
            p
            for p in run.points("gen_ai.client.token.usage")
            if p.attributes["gen_ai.token.type"] == "output"
        ]
    found = attributes(llm)
    assert llm.name == "chat SmolLM2-135M-Instruct.Q4_1"
    assert found["gen_ai.provider.name"] == "llama.cpp"
    assert found["gen_ai.response.finish_reasons"] in (("stop",), ("length",))
    assert 0 < found["gen_ai.usage.output_tokens"] == tokens.sum <= 4
    assert found["gen_ai.usage.input_tokens"] > 0
    assert "server.address" not in found
