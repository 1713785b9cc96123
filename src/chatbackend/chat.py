"""The chat service and the one object that owns an answer from opening to close.

An ``Answer`` is opened once (a stream slot, retries within the budget, the first-delta deadline),
read once, and closed exactly once on every path — completion, upstream error, client disconnect,
deadline, server shutdown — when its completion hooks run with the ``Outcome``. Everything that can
fail before the first delta fails in ``open``, so HTTP can still answer with a real status.

Per answer there is one timer, moved forward by the reads, for both the idle limit and the
whole-response deadline; nothing is created per delta.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Literal, assert_never

from chatbackend import errors
from chatbackend.aio import aclose
from chatbackend.observed import CallTracer, UpstreamCall
from chatbackend.protocol import ChatRequest, Overrides
from chatbackend.providers.base import (
    Delta,
    Finish,
    GenerationOptions,
    GenerationRequest,
    Message,
    Provider,
    TextDelta,
    ToolCall,
    ToolDefinition,
    ToolResult,
    Usage,
)
from chatbackend.requestlog import current_request
from chatbackend.settings import Settings
from chatbackend.tools import ToolRunner, configured_runner

logger = logging.getLogger(__name__)

# Seconds a refused client should wait: about one short answer's time.
_OVERLOADED_RETRY_AFTER = 1.0
_READINESS_CACHE_SECONDS = 5.0

Ending = Literal["complete", "error", "cancelled", "shutdown"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an answer ended; every ``on_finish`` hook receives it exactly once."""

    ending: Ending
    text: str
    finish: Finish | None
    error: errors.ChatError | None
    # Whether the first delta arrived: False when it failed or was cancelled while opening.
    streamed: bool
    # The tools the model called and what they returned, in order (empty without tools).
    tools: tuple[tuple[ToolCall, ToolResult], ...] = ()

    @property
    def usage(self) -> Usage | None:
        return self.finish.usage if self.finish is not None else None

    @property
    def finish_reason(self) -> str | None:
        return self.finish.finish_reason if self.finish is not None else None

    @property
    def model(self) -> str | None:
        return self.finish.model if self.finish is not None else None


Hook = Callable[[Outcome], Awaitable[None]]

_NEW, _OPENING, _STREAMING, _CLOSED = range(4)


class Answer:
    """One answer: ``async with service.answer(generation) as answer: async for delta in answer``.

    ``context_first`` and ``context_final`` are merged into the ``context`` of the first and the
    final protocol line (and of ``/chat``'s response) by the HTTP layer.
    """

    def __init__(self, service: ChatService, request: GenerationRequest) -> None:
        self.request = request
        self.context_first: dict[str, Any] = {}
        self.context_final: dict[str, Any] = {}
        self.outcome: Outcome | None = None
        self._service = service
        self._hooks: list[Hook] = []
        self._state = _NEW
        self._slot = False
        self._deltas: Any = None  # the provider's async iterator of the streaming attempt
        self._call: UpstreamCall | None = None
        self._first: Delta | None = None
        self._parts: list[str] = []
        self._finish: Finish | None = None
        self._error: errors.ChatError | None = None
        self._streamed = False
        # Function calling: this model call's tool calls, results waiting to be read, rounds.
        self.tool_exchanges: list[tuple[ToolCall, ToolResult]] = []
        self._round_calls: list[ToolCall] = []
        self._round_start = 0
        self._queued: deque[ToolResult] = deque()
        self._continue = False
        self._rounds = 0
        self._usage: Usage | None = None
        self._call_finish: Finish | None = None
        # The one timer: ``_due`` is when the current wait fails; a read moves it forward.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._idle = 0.0
        self._last_read = 0.0
        self._waiting = False
        self._expired = False

    def on_finish(self, hook: Hook) -> None:
        """Run ``hook(outcome)`` once when the answer ends, however it ends."""
        self._hooks.append(hook)

    @property
    def responses(self) -> InFlight:
        """The service's streamed responses in flight (the HTTP layer counts itself in)."""
        return self._service.responses

    @property
    def text(self) -> str:
        """The answer text read so far."""
        return "".join(self._parts)

    @property
    def parts(self) -> list[str]:
        """The text deltas read so far, as they came (the response cache replays them)."""
        return self._parts

    @property
    def error(self) -> errors.ChatError:
        """Why the answer was cut short (``internal_error`` if nothing recorded it)."""
        return self._error or errors.ChatError()

    def remaining(self) -> float:
        """Seconds left before the whole-response deadline."""
        assert self._loop is not None
        return self._deadline - self._loop.time()

    def timed_out(self) -> bool:
        """Whether a cancellation just caught was this answer's deadline (then it is consumed:
        the HTTP layer asks when the deadline struck outside a read, e.g. in a slow send)."""
        if self._take_expiry():
            self.fail(errors.UpstreamTimeout())
            return True
        return False

    def fail(self, error: errors.ChatError) -> None:
        """Record why the answer is being cut short (the HTTP layer's shutdown path)."""
        if self._error is None and self._finish is None:
            self._error = error

    async def __aenter__(self) -> Answer:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def reserve_slot(self) -> None:
        """Take the answer's stream slot now, before ``open``: ``Overloaded`` when none is free.

        For a caller that must refuse an overloaded answer before doing work it would have to
        undo (a conversation turn writes its user message before the answer opens). ``open``
        keeps the slot, and ``aclose`` frees it as always: once the slot is reserved the caller
        must open or close the answer on every path.
        """
        if self._state != _NEW:
            raise RuntimeError("a slot is reserved before the answer opens")
        if not self._slot:
            self._service.slots.acquire()
            self._slot = True

    async def open(self) -> None:
        """Take a stream slot (unless reserved) and wait for the first delta, retrying what may
        be retried."""
        if self._state != _NEW:
            raise RuntimeError("an answer is opened once")
        self._state = _OPENING
        service = self._service
        try:
            if not self._slot:
                service.slots.acquire()
                self._slot = True
            loop = self._loop = asyncio.get_running_loop()
            self._task = asyncio.current_task()
            settings = service.settings
            self._deadline = loop.time() + settings.chat_response_timeout
            self._idle = settings.chat_first_token_timeout
            await self._open_with_retries()
        except errors.ChatError as exc:
            self._error = exc
            await self.aclose()
            raise
        except BaseException:
            await self.aclose()
            raise
        self._state = _STREAMING
        self._streamed = True

    async def _open_with_retries(self) -> None:
        service = self._service
        waited = 0.0
        for attempt in range(1, service.settings.chat_retry_attempts + 1):
            try:
                await self._attempt()
                return
            except errors.ChatError as exc:
                delay = service.retry_delay(exc, attempt=attempt, waited=waited, answer=self)
            await asyncio.sleep(delay)
            waited += delay
        raise AssertionError("unreachable: the last attempt raises")  # pragma: no cover

    async def _attempt(self) -> None:
        service = self._service
        call = service.start_call(self.request)
        deltas = aiter(service.provider.stream(self.request))
        self._arm_first_delta()
        self._waiting = True
        try:
            first = await anext(deltas)
        except StopAsyncIteration:
            call.close(error=errors.UpstreamIncomplete.code)
            raise errors.UpstreamIncomplete() from None
        except asyncio.CancelledError:
            await aclose(deltas)
            if self._take_expiry():
                call.close(error=errors.UpstreamTimeout.code)
                raise errors.UpstreamTimeout() from None
            call.close()
            raise
        except errors.ChatError as exc:
            await aclose(deltas)
            call.close(error=exc.code)
            raise
        except Exception as exc:
            await aclose(deltas)
            call.close(error=type(exc).__qualname__)
            logger.exception("the provider failed while opening an answer")
            raise errors.ChatError() from None
        finally:
            self._waiting = False
        call.first_delta()
        self._last_read = self._loop.time() if self._loop is not None else 0.0
        self._deltas, self._call, self._first = deltas, call, first

    def __aiter__(self) -> Answer:
        return self

    async def __anext__(self) -> Delta:
        if self._queued:
            return self._queued.popleft()
        if self._continue:
            await self._next_call()
        first = self._first
        if first is not None:
            self._first = None
            return self._note(first)
        if self._state != _STREAMING or self._finish is not None:
            raise StopAsyncIteration
        self._waiting = True
        try:
            delta = await anext(self._deltas)
        except StopAsyncIteration:
            self._error = errors.UpstreamIncomplete()
            raise self._error from None
        except asyncio.CancelledError:
            if self._take_expiry():
                self._error = errors.UpstreamTimeout()
                raise self._error from None
            raise
        except errors.ChatError as exc:
            self._error = exc
            raise
        except Exception:
            logger.exception("the provider failed after the first delta")
            self._error = errors.ChatError()
            raise self._error from None
        finally:
            self._waiting = False
        self._last_read = self._loop.time()  # type: ignore[union-attr]
        if self._round_calls and type(delta) is Finish:
            return await self._tool_round(delta)
        return self._note(delta)

    def _note(self, delta: Delta) -> Delta:
        match delta:
            case TextDelta():
                self._parts.append(delta.content)
            case ToolCall():
                self._round_calls.append(delta)
            case ToolResult():
                pass
            case Finish():
                if self._rounds:
                    self._call_finish = delta
                    delta = replace(delta, usage=_sum(self._usage, delta.usage))
                self._finish = delta
            case _:
                assert_never(delta)
        return delta

    # Function calling: a call that asked for tools ends its round here; the tools run, their
    # results are read as deltas, then the next call carries them to the model.

    async def _tool_round(self, finish: Finish) -> Delta:
        calls, self._round_calls = self._round_calls, []
        request = self.request
        if request.tool_choice == "none" or not request.tools:
            # Asked for tools it was not offered (or after its last round): the answer ends.
            return self._note(finish)
        self._usage = _sum(self._usage, finish.usage)
        await self._end_call(finish)
        self._rounds += 1
        try:
            results = await self._service.tools.run_all(
                calls, names=[t.name for t in request.tools]
            )
        except asyncio.CancelledError:
            if self._take_expiry():
                self._error = errors.UpstreamTimeout()
                raise self._error from None
            raise
        self.tool_exchanges.extend(zip(calls, results, strict=True))
        text = "".join(self._parts[self._round_start :])
        last_round = self._rounds >= self._service.settings.chat_max_tool_rounds
        self.request = replace(
            request,
            messages=[
                *request.messages,
                Message(role="assistant", content=text, tool_calls=tuple(calls)),
                *(Message(role="tool", content=r.for_model, tool_call_id=r.id) for r in results),
            ],
            tool_choice="none" if last_round else "auto",
        )
        self._continue = True
        self._queued.extend(results[1:])
        return results[0]

    async def _end_call(self, finish: Finish) -> None:
        """End a model call that asked for tools: its upstream is closed before they run."""
        deltas, self._deltas = self._deltas, None
        if deltas is not None:
            await aclose(deltas)
        call, self._call = self._call, None
        if call is not None:
            text = "".join(self._parts[self._round_start :])
            call.end(Outcome("complete", text, finish, None, streamed=True))

    async def _next_call(self) -> None:
        self._continue = False
        self._round_start = len(self._parts)
        try:
            await self._open_with_retries()
        except errors.ChatError as exc:
            self._error = exc
            raise

    async def aclose(self) -> None:
        """Close the upstream, free the slot and run the hooks; only the first call acts."""
        if self._state == _CLOSED:
            return
        self._state = _CLOSED
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            if self._deltas is not None:
                await aclose(self._deltas)
                self._deltas = None
        finally:
            if self._slot:
                self._slot = False
                self._service.slots.release()
            self.outcome = outcome = self._outcome()
            if self._call is not None:
                self._end_last_call(self._call, outcome)
            await self._run_hooks(outcome)

    def _end_last_call(self, call: UpstreamCall, outcome: Outcome) -> None:
        if not self._rounds:
            call.end(outcome)
            return
        # After tool rounds the answer's usage is the sum; the last call's span gets its own.
        text = "".join(self._parts[self._round_start :])
        call.end(replace(outcome, text=text, finish=self._call_finish))
        record = current_request.get()
        if record is not None and outcome.usage is not None:
            record.input_tokens = outcome.usage.prompt_tokens
            record.output_tokens = outcome.usage.completion_tokens

    def _outcome(self) -> Outcome:
        error = self._error
        ending: Ending
        if self._finish is not None:
            ending, error = "complete", None
        elif isinstance(error, errors.ShuttingDown):
            ending = "shutdown"
        elif error is not None:
            ending = "error"
        else:
            ending = "cancelled"
        return Outcome(
            ending=ending,
            text="".join(self._parts),
            finish=self._finish,
            error=error,
            streamed=self._streamed,
            tools=tuple(self.tool_exchanges),
        )

    async def _run_hooks(self, outcome: Outcome) -> None:
        for hook in self._hooks:
            try:
                await asyncio.shield(hook(outcome))
            except asyncio.CancelledError:
                logger.warning("an answer's completion hook was cancelled")
            except Exception:
                logger.exception("an answer's completion hook failed")

    # The timer. It is armed once per attempt and fires at most once per idle period: a
    # read only stores the loop's time, and the timer, when it fires early, moves itself on.

    def _arm_first_delta(self) -> None:
        loop = self._loop
        assert loop is not None
        self._last_read = loop.time()
        self._expired = False
        self._schedule(min(self._last_read + self._idle, self._deadline))

    def _schedule(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        assert self._loop is not None
        self._timer = self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._state == _CLOSED:
            return
        assert self._loop is not None
        now = self._loop.time()
        due = min(self._last_read + self._idle, self._deadline)
        if now >= self._deadline or (now >= due and self._waiting):
            self._expired = True
            if self._task is not None:
                self._task.cancel()
            return
        # Early (a read came since), or not waiting on the upstream (the client is slow to
        # read: that is not upstream silence): check again later.
        self._schedule(due if due > now else now + self._idle)

    def _take_expiry(self) -> bool:
        """Whether the cancellation just caught was the timer's; if so it is consumed."""
        if not self._expired:
            return False
        self._expired = False
        if self._task is not None:
            self._task.uncancel()
        return True


def _sum(total: Usage | None, usage: Usage | None) -> Usage | None:
    if total is None:
        return usage
    return total if usage is None else total + usage


class StreamSlots:
    """A per-process limit on answers in flight that refuses instead of queueing.

    A queue in front of a saturated worker only turns overload into minutes of time to first
    token for everyone; a 503 with ``Retry-After`` lets the client or the load balancer go
    elsewhere at once.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0

    def acquire(self) -> None:
        if self.in_use >= self.limit:
            raise errors.Overloaded(retry_after=_OVERLOADED_RETRY_AFTER)
        self.in_use += 1

    def release(self) -> None:
        self.in_use -= 1


class InFlight:
    """Streamed responses still being written. At the end of the graceful window the server
    cancels them, and each still writes its ``shutting_down`` line and the body's end; the
    lifespan waits for that (``wait_idle``) before it closes the clients and the process exits."""

    def __init__(self) -> None:
        self._count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def __len__(self) -> int:
        return self._count

    def enter(self) -> None:
        self._count += 1
        self._idle.clear()

    def leave(self) -> None:
        self._count -= 1
        if self._count == 0:
            self._idle.set()

    async def wait_idle(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)


class ChatService:
    """Turns protocol requests into answers, with limits, deadlines and retries."""

    def __init__(
        self,
        provider: Provider,
        settings: Settings,
        *,
        tracer: CallTracer | None = None,
        tools: ToolRunner | None = None,
    ) -> None:
        self.provider = provider
        self.settings = settings
        self.tools = tools if tools is not None else configured_runner(settings)
        self.slots = StreamSlots(settings.chat_max_streams)
        self.responses = InFlight()
        self._tracer = tracer
        self._readiness: tuple[float, str | None] | None = None
        self._answer_hooks: list[Hook] = []

    def on_answer(self, hook: Hook) -> None:
        """Run ``hook`` when any answer of this service ends (usage accounting, say)."""
        self._answer_hooks.append(hook)

    async def readiness(self) -> str | None:
        """``None`` when the provider can serve, else why not; cached for a few seconds, so a
        probe every second costs one credential check per interval."""
        now = time.monotonic()
        cached = self._readiness
        if cached is not None and now - cached[0] < _READINESS_CACHE_SECONDS:
            return cached[1]
        problem = await self.provider.ready()
        self._readiness = (time.monotonic(), problem)
        return problem

    def prepare(self, request: ChatRequest) -> GenerationRequest:
        """Check the request against the configured limits and add the default system prompt."""
        settings = self.settings
        if len(request.messages) > settings.chat_max_messages:
            raise errors.InvalidRequest(
                f"messages: at most {settings.chat_max_messages} messages are allowed per request"
            )
        for index, message in enumerate(request.messages):
            if len(message.content) > settings.chat_max_message_chars:
                raise errors.InvalidRequest(
                    f"messages[{index}].content: longer than the limit of "
                    f"{settings.chat_max_message_chars} characters"
                )
        messages = [Message(role=m.role, content=m.content) for m in request.messages]
        if settings.chat_system_prompt and not any(m.role == "system" for m in messages):
            messages.insert(0, Message(role="system", content=settings.chat_system_prompt))
        overrides = request.context.overrides
        stop = [overrides.stop] if isinstance(overrides.stop, str) else overrides.stop or []
        options = GenerationOptions(
            temperature=overrides.temperature,
            top_p=overrides.top_p,
            max_tokens=overrides.max_tokens,
            seed=overrides.seed,
            stop=stop,
        )
        return GenerationRequest(messages=messages, options=options, tools=self._tools(overrides))

    def _tools(self, overrides: Overrides) -> tuple[ToolDefinition, ...]:
        """The tools offered for one request: ``CHAT_TOOLS``, narrowed by the overrides."""
        if not self.provider.supports_tools:
            if overrides.tools:
                raise errors.ToolsUnsupported()
            return ()
        if overrides.tool_choice == "none":
            return ()
        registry = self.tools.registry
        if overrides.tools is None:
            return registry.definitions
        if unknown := sorted(set(overrides.tools) - set(registry.names)):
            known = ", ".join(registry.names) or "none"
            raise errors.InvalidRequest(
                f"context.overrides.tools: unknown tool {', '.join(unknown)}; "
                f"the tools are: {known}"
            )
        return registry.select(overrides.tools).definitions

    def answer(self, request: GenerationRequest) -> Answer:
        """A new, unopened answer to ``request``."""
        answer = Answer(self, request)
        for hook in self._answer_hooks:
            answer.on_finish(hook)
        return answer

    def start_call(self, request: GenerationRequest) -> UpstreamCall:
        return UpstreamCall(self.provider, request, self._tracer)

    def retry_delay(
        self, exc: errors.ChatError, *, attempt: int, waited: float, answer: Answer
    ) -> float:
        """How long to wait before the next attempt, or raise ``exc`` when no retry is allowed.

        A rate limit whose wait does not fit in what is left of the budget is answered at once
        with the upstream's wait, so the client can back off instead of holding a connection.
        """
        settings = self.settings
        if not exc.retryable or attempt >= settings.chat_retry_attempts:
            raise exc
        backoff = settings.chat_retry_backoff_seconds * 2 ** (attempt - 1)
        delay = exc.retry_after if exc.retry_after is not None else backoff
        budget_left = settings.chat_retry_budget_seconds - waited
        if delay > budget_left or answer.remaining() <= delay:
            raise exc
        return delay
