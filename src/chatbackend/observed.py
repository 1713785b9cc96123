"""What one upstream call leaves behind: the request log fields always, a span when tracing is on.

The ``Answer`` starts an ``UpstreamCall`` per attempt and ends it once, with the answer's
``Outcome`` (or the error of the attempt); nothing wraps the stream: no telemetry cost per delta.
"""

from __future__ import annotations

import time
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

    def end(self) -> None: ...


class CallTracer(Protocol):
    """Starts a ``CallTrace`` per upstream call; ``capture_content`` asks for the answer text."""

    capture_content: bool

    def start(self, request: GenerationRequest) -> CallTrace: ...


class UpstreamCall:
    """One attempt at the upstream, from the request to its end; ``close``/``end`` act once."""

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
