"""The client span and metrics of one upstream LLM call, after the OpenTelemetry GenAI conventions.

Emitted by us rather than by ``opentelemetry-instrumentation-openai-v2``: that package (2.4b0)
imports ``httpx``, which the openai 3.x SDK no longer uses, and then fails against the current
``opentelemetry-util-genai``; it would also miss the embedded model and any stream read below the
SDK's chunk objects. One wrapper around the ``Provider`` interface covers every provider alike.

The span is never made current: the stream is resumed from different tasks (opening, then
streaming), and a context attached in one task cannot be detached in another.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from opentelemetry.metrics import CallbackOptions, Counter, Histogram, Meter, Observation
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.util.types import AttributeValue

from chatbackend.providers.base import Finish, GenerationRequest, Message

Attributes = dict[str, AttributeValue]

OPERATION: Final = "chat"
CANCELLED: Final = "cancelled"
# ``gen_ai.provider.name`` per provider: the well-known values where one exists.
PROVIDER_NAMES: Final = {
    "azure": "azure.ai.openai",
    "openai": "openai",
    "github": "github.models",
    "compatible": "openai.compatible",
    "local": "llama.cpp",
}
# Bucket boundaries the GenAI metric conventions recommend.
_SECONDS_BUCKETS: Final = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
_TOKEN_BUCKETS: Final = tuple(4**power for power in range(14))


class InFlight:
    """Upstream calls open now, per attribute set: read by the SDK when it collects.

    An observable instrument costs nothing per call; an up-down counter would cost two
    measurements (about 10 µs) per call.
    """

    def __init__(self) -> None:
        self.counts: dict[tuple[tuple[str, AttributeValue], ...], int] = {}

    def observe(self, _: CallbackOptions) -> Iterable[Observation]:
        return [Observation(count, dict(key)) for key, count in self.counts.items()]


@dataclass(frozen=True, slots=True)
class Instruments:
    """The metrics every call records, created once per meter."""

    duration: Histogram
    time_to_first_chunk: Histogram
    token_usage: Histogram
    upstream_errors: Counter
    in_flight: InFlight

    @classmethod
    def create(cls, meter: Meter) -> Instruments:
        seconds = list(_SECONDS_BUCKETS)
        in_flight = InFlight()
        meter.create_observable_up_down_counter(
            "chatbackend.upstream.active_streams",
            callbacks=[in_flight.observe],
            unit="{stream}",
            description="Upstream calls in flight: opened and not yet ended.",
        )
        return cls(
            duration=meter.create_histogram(
                "gen_ai.client.operation.duration",
                unit="s",
                description="Duration of an upstream LLM call, to the end of its stream.",
                explicit_bucket_boundaries_advisory=seconds,
            ),
            time_to_first_chunk=meter.create_histogram(
                "gen_ai.client.operation.time_to_first_chunk",
                unit="s",
                description="Time from sending an upstream request to its first streamed delta.",
                explicit_bucket_boundaries_advisory=seconds,
            ),
            token_usage=meter.create_histogram(
                "gen_ai.client.token.usage",
                unit="{token}",
                description="Input and output tokens per upstream call, as the upstream reported.",
                explicit_bucket_boundaries_advisory=list(_TOKEN_BUCKETS),
            ),
            upstream_errors=meter.create_counter(
                "chatbackend.upstream.errors",
                unit="{error}",
                description="Upstream calls that failed, by error.type (our protocol error code).",
            ),
            in_flight=in_flight,
        )


class GenAITracer:
    """Starts one ``GenAICall`` per upstream call of one provider."""

    def __init__(
        self,
        tracer: Tracer,
        instruments: Instruments,
        *,
        provider: str,
        model: str,
        server: tuple[str, int] | None,
        capture_content: bool,
    ) -> None:
        self.capture_content = capture_content
        self._tracer = tracer
        self._instruments = instruments
        self._span_name = f"{OPERATION} {model}"
        common: Attributes = {
            "gen_ai.operation.name": OPERATION,
            "gen_ai.provider.name": PROVIDER_NAMES.get(provider, provider),
            "gen_ai.request.model": model,
        }
        # Metrics leave out server.address/port (fixed per deployment): every attribute adds to
        # the cost of each measurement.
        self._metric_attributes = common
        self._in_flight_key = tuple(common.items())
        # ``gen_ai.system`` is the name before semantic conventions 1.37; some backends still
        # key their GenAI views on it.
        self._span_attributes: Attributes = {
            **common,
            "gen_ai.system": common["gen_ai.provider.name"],
            "gen_ai.request.stream": True,
        }
        if server is not None:
            self._span_attributes["server.address"], self._span_attributes["server.port"] = server

    def start(self, request: GenerationRequest) -> GenAICall:
        attributes = {**self._span_attributes, **_request_attributes(request)}
        if self.capture_content:
            attributes["gen_ai.input.messages"] = _input_messages(request.messages)
        span = self._tracer.start_span(self._span_name, kind=SpanKind.CLIENT, attributes=attributes)
        counts = self._instruments.in_flight.counts
        counts[self._in_flight_key] = counts.get(self._in_flight_key, 0) + 1
        return GenAICall(span, self._instruments, self._metric_attributes, self._in_flight_key)


class GenAICall:
    """One upstream call's span and measurements; ``end`` records and closes everything once."""

    def __init__(
        self,
        span: Span,
        instruments: Instruments,
        attributes: Attributes,
        in_flight_key: tuple[tuple[str, AttributeValue], ...],
    ) -> None:
        self._span = span
        self._instruments = instruments
        self._attributes = attributes
        self._in_flight_key = in_flight_key
        self._started = time.perf_counter()
        self._response_model: str | None = None
        self._error_type: str | None = None

    def first_delta(self, seconds: float) -> None:
        self._span.set_attribute("gen_ai.response.time_to_first_chunk", seconds)
        self._instruments.time_to_first_chunk.record(seconds, self._attributes)

    def finished(self, finish: Finish, answer: str | None) -> None:
        self._response_model = finish.model
        span_attributes: Attributes = {"gen_ai.response.model": finish.model}
        if finish.finish_reason is not None:
            span_attributes["gen_ai.response.finish_reasons"] = [finish.finish_reason]
        if finish.usage is not None:
            tokens = {"input": finish.usage.prompt_tokens, "output": finish.usage.completion_tokens}
            span_attributes["gen_ai.usage.input_tokens"] = tokens["input"]
            span_attributes["gen_ai.usage.output_tokens"] = tokens["output"]
            attributes = {**self._attributes, "gen_ai.response.model": finish.model}
            for kind, count in tokens.items():
                self._instruments.token_usage.record(
                    count, {**attributes, "gen_ai.token.type": kind}
                )
        if answer is not None:
            span_attributes["gen_ai.output.messages"] = _output_message(answer, finish)
        self._span.set_attributes(span_attributes)

    def served_by(self, provider: str, model: str, server: tuple[str, int] | None) -> None:
        """A fallback chain's member answered: the span and the metrics name it, not the primary."""
        name = PROVIDER_NAMES.get(provider, provider)
        served: Attributes = {"gen_ai.provider.name": name, "gen_ai.request.model": model}
        self._attributes = {**self._attributes, **served}
        self._span.update_name(f"{OPERATION} {model}")
        self._span.set_attributes({**served, "gen_ai.system": name})
        if server is not None:
            self._span.set_attributes({"server.address": server[0], "server.port": server[1]})

    def failed(self, error_type: str) -> None:
        self._error_type = error_type
        self._span.set_status(Status(StatusCode.ERROR, error_type))
        self._instruments.upstream_errors.add(1, {**self._attributes, "error.type": error_type})

    def end(self) -> None:
        """Called from the wrapper's ``finally``: after a ``Finish``, a failure, or neither — the
        caller stopped reading (client disconnect or our deadline), recorded as ``cancelled``."""
        attributes = dict(self._attributes)
        if self._response_model is not None:
            attributes["gen_ai.response.model"] = self._response_model
        elif self._error_type is None:
            self._error_type = CANCELLED
        if self._error_type is not None:
            attributes["error.type"] = self._error_type
            self._span.set_attribute("error.type", self._error_type)
        self._instruments.duration.record(time.perf_counter() - self._started, attributes)
        self._instruments.in_flight.counts[self._in_flight_key] -= 1
        self._span.end()


def _request_attributes(request: GenerationRequest) -> Attributes:
    options = request.options
    optional: dict[str, AttributeValue | None] = {
        "gen_ai.request.temperature": options.temperature,
        "gen_ai.request.top_p": options.top_p,
        "gen_ai.request.max_tokens": options.max_tokens,
        "gen_ai.request.seed": options.seed,
        "gen_ai.request.stop_sequences": list(options.stop) or None,
    }
    return {key: value for key, value in optional.items() if value is not None}


def _input_messages(messages: Sequence[Message]) -> str:
    """``gen_ai.input.messages`` as JSON: only ever built when content capture is on."""
    return json.dumps(
        [{"role": m.role, "parts": [{"type": "text", "content": m.content}]} for m in messages],
        ensure_ascii=False,
    )


def _output_message(answer: str, finish: Finish) -> str:
    message = {
        "role": "assistant",
        "parts": [{"type": "text", "content": answer}],
        "finish_reason": finish.finish_reason,
    }
    return json.dumps([message], ensure_ascii=False)
