"""The server span: one per HTTP request, parent of the GenAI client span and the tool spans.

Ours rather than ``opentelemetry-instrumentation-fastapi``'s: that middleware runs its own code on
every ASGI message (status bookkeeping, a response propagator lookup, a header scan), which on a
stream is every chunk, and it cost about a quarter of the worker's CPU per chunk with every trace
exported. This one looks at the response start only and ends the span when the app returns,
after the last byte was sent. Attributes follow the stable HTTP server conventions.
"""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry import context, propagate
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import SpanKind, StatusCode, Tracer, set_span_in_context
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class _HeaderGetter(Getter[Scope]):
    """Reads ``traceparent``/``tracestate`` (any propagator's fields) from the ASGI headers."""

    def get(self, carrier: Scope, key: str) -> list[str] | None:
        name = key.lower().encode("latin-1")
        values = [v.decode("latin-1") for k, v in carrier["headers"] if k == name]
        return values or None

    def keys(self, carrier: Scope) -> list[str]:
        return [k.decode("latin-1") for k, _ in carrier["headers"]]


_GETTER = _HeaderGetter()


class ServerSpans:
    """Pure ASGI middleware: a ``SERVER`` span named ``{method} {route}`` around each request."""

    def __init__(self, app: ASGIApp, *, tracer: Tracer, excluded: Iterable[str]) -> None:
        self.app = app
        self.tracer = tracer
        self.excluded = frozenset(excluded)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.excluded:
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        parent = propagate.extract(scope, getter=_GETTER)
        span = self.tracer.start_span(
            method, context=parent, kind=SpanKind.SERVER, attributes=_request_attributes(scope)
        )
        token = context.attach(set_span_in_context(span, parent))
        status = 500
        error_type: str | None = None

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        except Exception as exc:
            span.record_exception(exc)
            error_type = type(exc).__qualname__
            raise
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None)
            if isinstance(path, str):
                span.update_name(f"{method} {path}")
                span.set_attribute("http.route", path)
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(StatusCode.ERROR)
                span.set_attribute("error.type", error_type or str(status))
            span.end()
            context.detach(token)


def _request_attributes(scope: Scope) -> dict[str, str | int]:
    attributes: dict[str, str | int] = {
        "http.request.method": scope["method"],
        "url.path": scope["path"],
        "url.scheme": scope.get("scheme", "http"),
        "network.protocol.version": scope.get("http_version", "1.1"),
    }
    server = scope.get("server")
    if server:
        attributes["server.address"] = server[0]
        if server[1] is not None:
            attributes["server.port"] = server[1]
    client = scope.get("client")
    if client:
        attributes["client.address"] = client[0]
    return attributes
