"""The OpenTelemetry SDK objects: providers, exporters chosen by settings, FastAPI instrumentation.

Imported only when telemetry is on. The providers are this app's own, never the process-wide
globals: an app built in a test, a benchmark or a second worker app cannot disturb another, and
``FastAPIInstrumentor`` and the GenAI tracer receive them explicitly.

Azure Monitor uses the exporters of ``azure-monitor-opentelemetry-exporter`` on these providers
instead of the ``azure-monitor-opentelemetry`` distro's ``configure_azure_monitor``, which sets the
global providers and pins every contrib instrumentation (Django, Flask, psycopg2, ...) to one
release line that conflicts with the FastAPI instrumentation used here.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import FastAPI
from opentelemetry.metrics import Histogram
from opentelemetry.sdk.metrics import (
    AlwaysOffExemplarFilter,
    AlwaysOnExemplarFilter,
    ExemplarFilter,
    MeterProvider,
    TraceBasedExemplarFilter,
)
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import INVALID_SPAN, get_current_span
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from chatbackend.providers import OPENAI_BASE_URL
from chatbackend.providers.base import Provider
from chatbackend.settings import Settings, SettingsError
from chatbackend.telemetry.genai import GenAITracer, Instruments
from chatbackend.telemetry.server import ServerSpans
from chatbackend.telemetry.tools import ToolSpans

# Regexes matched against the URL: probes, docs and the scrape endpoint are not traced.
EXCLUDED_PATHS = (
    "/health/live",
    "/health/ready",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
    "/openapi.json",
    "/metrics",
)
_UNMEASURED_PATHS = frozenset({"/health/live", "/health/ready", "/metrics"})
# The stable HTTP conventions' advisory boundaries, extended for minutes-long streamed answers.
_HTTP_SECONDS_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30, 60, 120, 300,
)  # fmt: skip
INSTRUMENTATION_SCOPE = "chatbackend"
SERVICE_VERSION = importlib.metadata.version("chatbackend")
_DEFAULT_PORTS = {"http": 80, "https": 443}

MetricsEndpoint = Callable[[Request], Awaitable[Response]]
_EXEMPLAR_FILTERS: dict[str, type[ExemplarFilter]] = {
    "always_off": AlwaysOffExemplarFilter,
    "always_on": AlwaysOnExemplarFilter,
    "trace_based": TraceBasedExemplarFilter,
}


@dataclass(frozen=True, slots=True)
class Telemetry:
    """This app's tracer and meter providers, the GenAI tracer and the Prometheus endpoint."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    instruments: Instruments
    request_duration: Histogram
    capture_content: bool
    metrics_endpoint: MetricsEndpoint | None

    def instrument(self, app: FastAPI) -> None:
        """One server span per request (``chatbackend.telemetry.server``), and ``/metrics``.

        Added last, so it is the outermost middleware: the request log inside it sees the
        span's trace id. ``record_request`` records ``http.server.request.duration``.
        """
        tracer = self.tracer_provider.get_tracer(INSTRUMENTATION_SCOPE, SERVICE_VERSION)
        app.add_middleware(ServerSpans, tracer=tracer, excluded=EXCLUDED_PATHS)
        if self.metrics_endpoint is not None:
            app.add_route("/metrics", self.metrics_endpoint, include_in_schema=False)

    def record_request(self, scope: Scope, status: int, seconds: float) -> None:
        """``http.server.request.duration`` (stable HTTP conventions), once the response ended."""
        if scope["path"] in _UNMEASURED_PATHS:
            return
        route = scope.get("route")
        attributes: dict[str, str | int] = {
            "http.request.method": scope["method"],
            "http.response.status_code": status,
        }
        if route is not None:
            attributes["http.route"] = route.path
        self.request_duration.record(seconds, attributes)

    def tracer(self, provider: Provider, settings: Settings) -> GenAITracer:
        """The GenAI client span and metrics of every upstream call to ``provider``."""
        return GenAITracer(
            self.tracer_provider.get_tracer(INSTRUMENTATION_SCOPE, SERVICE_VERSION),
            self.instruments,
            provider=provider.name,
            model=provider.model,
            server=upstream_address(settings),
            capture_content=self.capture_content,
        )

    def tool_tracer(self) -> ToolSpans:
        """An ``execute_tool`` span per tool run."""
        tracer = self.tracer_provider.get_tracer(INSTRUMENTATION_SCOPE, SERVICE_VERSION)
        return ToolSpans(tracer, capture_content=self.capture_content)

    def shutdown(self) -> None:
        """Flush what is buffered and stop the exporters' threads."""
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def current_trace_id() -> str | None:
    """The current trace id as 32 hex digits, or ``None`` outside a (sampled or not) span."""
    context = get_current_span().get_span_context()
    if context is INVALID_SPAN.get_span_context() or not context.is_valid:
        return None
    return format(context.trace_id, "032x")


def build_telemetry(
    settings: Settings,
    *,
    span_exporter: SpanExporter | None = None,
    metric_reader: MetricReader | None = None,
) -> Telemetry:
    """The SDK objects for ``settings``; extra exporter and reader are added (tests, bench)."""
    resource = Resource.create(
        {"service.name": settings.otel_service_name, "service.version": SERVICE_VERSION}
    )
    tracer_provider = TracerProvider(resource=resource)
    for processor in span_processors(settings):
        tracer_provider.add_span_processor(processor)
    if span_exporter is not None:
        tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    readers = list(metric_readers(settings))
    if metric_reader is not None:
        readers.append(metric_reader)
    metrics_endpoint = None
    if settings.metrics_prometheus:
        prometheus_reader, metrics_endpoint = _prometheus()
        readers.append(prometheus_reader)
    meter_provider = MeterProvider(
        resource=resource,
        metric_readers=readers,
        exemplar_filter=_EXEMPLAR_FILTERS[settings.otel_metrics_exemplar_filter](),
    )
    meter = meter_provider.get_meter(INSTRUMENTATION_SCOPE, SERVICE_VERSION)
    return Telemetry(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        instruments=Instruments.create(meter),
        request_duration=meter.create_histogram(
            "http.server.request.duration",
            unit="s",
            description="Duration of HTTP server requests, to the end of a streamed body.",
            explicit_bucket_boundaries_advisory=list(_HTTP_SECONDS_BUCKETS),
        ),
        capture_content=settings.telemetry_capture_content,
        metrics_endpoint=metrics_endpoint,
    )


def span_processors(settings: Settings) -> Iterator[SpanProcessor]:
    """One processor per configured trace exporter; batching everywhere but on the console."""
    exporters = settings.telemetry_exporters
    if "console" in exporters:
        yield SimpleSpanProcessor(ConsoleSpanExporter())
    if "otlp" in exporters:
        yield BatchSpanProcessor(_otlp_span_exporter(settings))
    if "azure_monitor" in exporters:
        from azure.monitor.opentelemetry.exporter import AzureMonitorTraceExporter

        yield BatchSpanProcessor(
            AzureMonitorTraceExporter(connection_string=_connection_string(settings))
        )


def metric_readers(settings: Settings) -> Iterator[MetricReader]:
    """One periodic reader per configured push exporter (``OTEL_METRIC_EXPORT_INTERVAL``)."""
    exporters = settings.telemetry_exporters
    pushed: list[MetricExporter] = []
    if "console" in exporters:
        pushed.append(ConsoleMetricExporter())
    if "otlp" in exporters:
        pushed.append(_otlp_metric_exporter(settings))
    if "azure_monitor" in exporters:
        from azure.monitor.opentelemetry.exporter import AzureMonitorMetricExporter

        pushed.append(AzureMonitorMetricExporter(connection_string=_connection_string(settings)))
    for exporter in pushed:
        yield PeriodicExportingMetricReader(exporter)


def _otlp_span_exporter(settings: Settings) -> SpanExporter:
    endpoint = _otlp_endpoint(settings)
    if settings.otel_exporter_otlp_protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                OTLPSpanExporter as GrpcSpanExporter,
            )
        except ImportError:
            raise _grpc_missing() from None
        grpc_exporter: SpanExporter = GrpcSpanExporter(endpoint=endpoint)
        return grpc_exporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")


def _otlp_metric_exporter(settings: Settings) -> MetricExporter:
    endpoint = _otlp_endpoint(settings)
    if settings.otel_exporter_otlp_protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
                OTLPMetricExporter as GrpcMetricExporter,
            )
        except ImportError:
            raise _grpc_missing() from None
        grpc_metrics: MetricExporter = GrpcMetricExporter(endpoint=endpoint)
        return grpc_metrics
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    return OTLPMetricExporter(endpoint=f"{endpoint}/v1/metrics")


def _otlp_endpoint(settings: Settings) -> str:
    assert settings.otel_exporter_otlp_endpoint is not None  # "otlp" is only selected when set
    return settings.otel_exporter_otlp_endpoint.rstrip("/")


def _grpc_missing() -> SettingsError:
    return SettingsError(
        "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs the opentelemetry-exporter-otlp-proto-grpc "
        "package; install it or use http/protobuf"
    )


def _connection_string(settings: Settings) -> str:
    secret = settings.applicationinsights_connection_string
    assert secret is not None  # "azure_monitor" is only selected when set
    return secret.get_secret_value()


def _prometheus() -> tuple[MetricReader, MetricsEndpoint]:
    """A reader on a registry of its own (not the process-wide one) and the page serving it."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    registry = CollectorRegistry()

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return PrometheusMetricReader(registry=registry), metrics


def upstream_address(settings: Settings) -> tuple[str, int] | None:
    """``server.address`` and ``server.port`` of the upstream; ``None`` for the embedded model."""
    urls = {
        "azure": settings.azure_openai_endpoint,
        "openai": settings.openai_base_url or OPENAI_BASE_URL,
        "github": settings.github_models_base_url,
        "compatible": settings.chat_base_url,
    }
    url = urls.get(settings.provider)
    if not url:
        return None
    parts = urlsplit(url)
    if parts.hostname is None:
        return None
    return parts.hostname, parts.port or _DEFAULT_PORTS.get(parts.scheme, 443)
