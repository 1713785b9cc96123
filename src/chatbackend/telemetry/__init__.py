"""OpenTelemetry traces and metrics, configured once from settings and absent when off.

Nothing here imports the OpenTelemetry SDK at module level: ``start_telemetry`` loads it only when
an exporter is configured (or a test supplies one), so a service without telemetry never creates
an SDK object and serves requests without any tracing middleware.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatbackend.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import MetricReader
    from opentelemetry.sdk.trace.export import SpanExporter

    from chatbackend.telemetry.setup import Telemetry

__all__ = ["start_telemetry"]


def start_telemetry(
    settings: Settings,
    *,
    span_exporter: SpanExporter | None = None,
    metric_reader: MetricReader | None = None,
) -> Telemetry | None:
    """The telemetry ``settings`` ask for, or ``None`` when no exporter is configured.

    ``span_exporter`` and ``metric_reader`` are added to the configured ones (tests and the
    benchmark pass in-memory ones); passing either turns telemetry on.
    """
    if not settings.telemetry_exporters and span_exporter is None and metric_reader is None:
        return None
    from chatbackend.telemetry.setup import build_telemetry

    return build_telemetry(settings, span_exporter=span_exporter, metric_reader=metric_reader)
