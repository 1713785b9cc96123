"""A provider wrapper that observes each upstream call: the request log always, spans optionally.

It sits between the service and the real provider, so the providers, the service and the encoders
stay free of telemetry. Per delta it does one type check (to see the ``Finish``); the first delta
and the end of the stream are where the work happens. The observation ends in ``finally``: when the
stream ends, fails, or is closed early because the client went away, not when the handler returns.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Protocol

from chatbackend import errors
from chatbackend.aio import aclose
from chatbackend.providers.base import AuthMode, Delta, Finish, GenerationRequest, Provider
from chatbackend.requestlog import RequestRecord, current_request


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


class ObservedProvider:
    """``inner`` behind the same ``Provider`` interface, with every call observed."""

    def __init__(self, inner: Provider, tracer: CallTracer | None = None) -> None:
        self.inner = inner
        self.name: str = inner.name
        self.model: str = inner.model
        self.auth_mode: AuthMode = inner.auth_mode
        self._tracer = tracer

    def is_ready(self) -> bool:
        return self.inner.is_ready()

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        record = current_request.get()
        if record is not None:
            record.provider = self.name
            record.model = self.model
            record.upstream_calls += 1
        trace = self._tracer.start(request) if self._tracer is not None else None
        capture = trace is not None and self._tracer is not None and self._tracer.capture_content
        answer: list[str] | None = [] if capture else None
        started = time.perf_counter()
        deltas = aiter(self.inner.stream(request))
        try:
            first = await anext(deltas)
            _first_delta(record, trace, started)
            _observe(first, record, trace, answer)
            yield first
            async for delta in deltas:
                if answer is not None or isinstance(delta, Finish):
                    _observe(delta, record, trace, answer)
                yield delta
        except errors.ChatError as exc:
            _failed(record, trace, exc.code)
            raise
        except StopAsyncIteration:  # no delta at all: the service answers upstream_incomplete
            _failed(record, trace, errors.UpstreamIncomplete.code)
            return
        except Exception as exc:
            _failed(record, trace, type(exc).__qualname__)
            raise
        finally:
            await aclose(deltas)
            if trace is not None:
                trace.end()


def _first_delta(record: RequestRecord | None, trace: CallTrace | None, started: float) -> None:
    now = time.perf_counter()
    if record is not None:
        record.error = None  # an earlier attempt's failure was retried away
        record.first_token_at = now
    if trace is not None:
        trace.first_delta(now - started)


def _observe(
    delta: Delta, record: RequestRecord | None, trace: CallTrace | None, answer: list[str] | None
) -> None:
    if not isinstance(delta, Finish):
        if answer is not None:
            answer.append(delta.content)
        return
    finish = delta
    if record is not None:
        record.model = finish.model
        if finish.usage is not None:
            record.input_tokens = finish.usage.prompt_tokens
            record.output_tokens = finish.usage.completion_tokens
    if trace is not None:
        trace.finished(finish, None if answer is None else "".join(answer))


def _failed(record: RequestRecord | None, trace: CallTrace | None, error_type: str) -> None:
    if record is not None:
        record.error = error_type
    if trace is not None:
        trace.failed(error_type)
