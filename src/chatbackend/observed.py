"""What one upstream call leaves behind: the request log fields always, a span when tracing is on.

The ``Answer`` starts an ``UpstreamCall`` per attempt and ends it once, with the answer's
``Outcome`` (or the error of the attempt); nothing wraps the stream: no telemetry cost per delta.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from typing import TYPE_CHECKING, Protocol

from chatbackend.providers.base import Finish, GenerationRequest, Provider
from chatbackend.requestlog import current_request

if TYPE_CHECKING:
    from chatbackend.chat import Outcome

CANCELLED = "cancelled"


class CallTrace(Protocol):
    """One upstream call as telemetry sees it; ``end`` is called exactly once, last."""

    def first_delta(self, seconds: float) -> None: ...

    def finished(self, finish: Finish, answer: str | None) -> None: ...

    def failed(self, error_type: str) -> None: ...

    def served_by(self, provider: str, model: str, server: tuple[str, int] | None) -> None: ...

    def end(self) -> None: ...


class CallTracer(Protocol):
    """Starts a ``CallTrace`` per upstream call; ``capture_content`` asks for the answer text."""

    capture_content: bool

    def start(self, request: GenerationRequest) -> CallTrace: ...


class UpstreamCall:
    """One attempt at the upstream, from the request to its end; ``close``/``end`` act once.

    While traced, it is the task's current call, so a fallback chain can tell its span which
    member served (``served_by``).
    """

    __slots__ = ("_capture", "_ended", "_record", "_started", "_trace")

    def __init__(
        self, provider: Provider, request: GenerationRequest, tracer: CallTracer | None
    ) -> None:
        record = self._record = current_request.get()
        if record is not None:
            record.provider = provider.name
            record.model = provider.model
            record.upstream_calls += 1
        self._trace = tracer.start(request) if tracer is not None else None
        self._capture = tracer is not None and tracer.capture_content
        if self._trace is not None:
            _current_call.set(self)
        self._started = time.perf_counter()
        self._ended = False

    def first_delta(self) -> None:
        now = time.perf_counter()
        record = self._record
        if record is not None:
            record.error = None  # an earlier attempt's failure was retried away
            record.first_token_at = now
        if self._trace is not None:
            self._trace.first_delta(now - self._started)

    def served(self, provider: Provider) -> None:
        if self._trace is not None and not self._ended:
            server = getattr(provider, "server", None)
            self._trace.served_by(provider.name, provider.model, server)

    def close(self, *, error: str | None = None) -> None:
        """End an attempt that never delivered a delta (``error=None``: it was cancelled)."""
        if self._ended:
            return
        self._ended = True
        if error is not None:
            if self._record is not None:
                self._record.error = error
            if self._trace is not None:
                self._trace.failed(error)
        if self._trace is not None:
            self._trace.end()

    def end(self, outcome: Outcome) -> None:
        """End the attempt that streamed, with how its answer ended."""
        if self._ended:
            return
        finish = outcome.finish
        if finish is not None:
            record = self._record
            if record is not None:
                record.model = finish.model
                if finish.usage is not None:
                    record.input_tokens = finish.usage.prompt_tokens
                    record.output_tokens = finish.usage.completion_tokens
            if self._trace is not None:
                self._trace.finished(finish, outcome.text if self._capture else None)
            self.close()
        elif outcome.error is not None:
            self.close(error=outcome.error.code)
        else:
            self.close()


_current_call: ContextVar[UpstreamCall | None] = ContextVar("upstream_call", default=None)


def served_by(provider: Provider) -> None:
    """The current upstream call was answered by ``provider`` (a fallback chain's member)."""
    call = _current_call.get()
    if call is not None:
        call.served(provider)
