"""One ``execute_tool {name}`` span per tool run, child of the request's span; one ``chat`` span
per model call, each with its own usage."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from chatbackend.app import create_app
from chatbackend.settings import Settings
from chatbackend.telemetry import start_telemetry
from tests.conftest import openai_settings
from tests.tool_streams import tool_call_chunks
from tests.upstream import Upstream, chunks_reply, openai_stream

REQUEST: dict[str, Any] = {"messages": [{"role": "user", "content": "secret-prompt 17*3/4?"}]}
CALLS = (
    ("call_1", "calculate", '{"expression": "(17 * 3) / 4"}'),
    ("call_2", "calculate", '{"expression": "1 / 0"}'),
)


@dataclass
class Run:
    spans: list[ReadableSpan]


@contextmanager
def traced(settings: Settings) -> Iterator[Run]:
    upstream = Upstream([chunks_reply(tool_call_chunks(*CALLS)), chunks_reply(openai_stream("A"))])
    spans, metrics = InMemorySpanExporter(), InMemoryMetricReader()
    telemetry = start_telemetry(settings, span_exporter=spans, metric_reader=metrics)
    assert telemetry is not None
    app = create_app(settings, transport=upstream.transport, telemetry=telemetry)
    run = Run([])
    try:
        with TestClient(app) as client:
            assert client.post("/chat/stream", json=REQUEST).status_code == 200
        run.spans = list(spans.get_finished_spans())
        yield run
    finally:
        telemetry.shutdown()


def test_each_tool_run_is_a_span_under_the_request() -> None:
    with traced(openai_settings(telemetry_console=False, metrics_prometheus=True)) as run:
        server = next(s for s in run.spans if s.kind is SpanKind.SERVER)
        tools = [s for s in run.spans if s.name.startswith("execute_tool")]
        chats = [s for s in run.spans if s.name.startswith("chat ")]
    assert [s.name for s in tools] == ["execute_tool calculate"] * 2
    assert all(s.parent is not None and s.parent.span_id == server.context.span_id for s in tools)
    ok, failed = sorted(tools, key=lambda s: str((s.attributes or {})["gen_ai.tool.call.id"]))
    assert dict(ok.attributes or {}) == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "calculate",
        "gen_ai.tool.call.id": "call_1",
        "gen_ai.tool.type": "function",
    }
    assert ok.status.status_code is StatusCode.UNSET
    assert dict(failed.attributes or {})["error.type"] == "tool_error"
    assert failed.status.status_code is StatusCode.ERROR
    # two model calls, two chat spans, each with its own usage
    assert len(chats) == 2
    usage = sorted((dict(s.attributes or {})["gen_ai.usage.input_tokens"]) for s in chats)
    assert usage == [25, 40]
    assert "secret-prompt" not in repr([dict(s.attributes or {}) for s in run.spans])


def test_arguments_and_results_are_recorded_only_when_asked() -> None:
    settings = openai_settings(metrics_prometheus=True, telemetry_capture_content=True)
    with traced(settings) as run:
        tools = {
            dict(s.attributes or {})["gen_ai.tool.call.id"]: dict(s.attributes or {})
            for s in run.spans
            if s.name.startswith("execute_tool")
        }
    assert tools["call_1"]["gen_ai.tool.call.arguments"] == '{"expression": "(17 * 3) / 4"}'
    assert tools["call_1"]["gen_ai.tool.call.result"] == "12.75"
    assert tools["call_2"]["gen_ai.tool.call.arguments"] == '{"expression": "1 / 0"}'
    assert "gen_ai.tool.call.result" not in tools["call_2"]
