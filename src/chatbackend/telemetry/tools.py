"""One ``execute_tool {name}`` span per tool run, after the OpenTelemetry GenAI conventions.

The span is a child of the request's span (the tool runs in the request's context). Arguments
and results are recorded only with ``TELEMETRY_CAPTURE_CONTENT=true``: they can hold anything the
user typed.
"""

from __future__ import annotations

from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from chatbackend.providers.base import ToolResult
from chatbackend.tools.runner import Call

CANCELLED = "cancelled"


class ToolSpans:
    """The ``ToolTracer`` of ``chatbackend.tools`` with OpenTelemetry spans."""

    def __init__(self, tracer: Tracer, *, capture_content: bool) -> None:
        self._tracer = tracer
        self._capture = capture_content

    def start(self, call: Call) -> ToolSpan:
        span = self._tracer.start_span(
            f"execute_tool {call.name}",
            kind=SpanKind.INTERNAL,
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": call.name,
                "gen_ai.tool.call.id": call.id,
                "gen_ai.tool.type": "function",
            },
        )
        if self._capture:
            span.set_attribute("gen_ai.tool.call.arguments", call.arguments)
        return ToolSpan(span, self._capture)


class ToolSpan:
    __slots__ = ("_capture", "_span")

    def __init__(self, span: Span, capture: bool) -> None:
        self._span = span
        self._capture = capture

    def end(self, result: ToolResult | None) -> None:
        span = self._span
        if result is None:
            span.set_attribute("error.type", CANCELLED)
        elif result.error is not None:
            span.set_attribute("error.type", result.error.code)
            span.set_status(Status(StatusCode.ERROR, result.error.code))
        elif self._capture and result.content is not None:
            span.set_attribute("gen_ai.tool.call.result", result.content)
        span.end()
