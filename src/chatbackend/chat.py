"""The chat service: a protocol request in, typed deltas out, under deadlines and a retry budget.

Everything that can fail before the first delta happens in ``open_stream``, so the routes can still
answer with a real HTTP status; once it returns, the client is about to receive bytes and the
service never retries again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import anyio

from chatbackend import errors
from chatbackend.aio import aclose
from chatbackend.protocol import ChatRequest
from chatbackend.providers.base import (
    Delta,
    Finish,
    GenerationOptions,
    GenerationRequest,
    Message,
    Provider,
    TextDelta,
)
from chatbackend.settings import Settings

# Seconds a refused client should wait: about one short answer's time.
_OVERLOADED_RETRY_AFTER = 1.0


@dataclass(frozen=True, slots=True)
class Answer:
    content: str
    finish: Finish


class ChatStream:
    """An answer whose first delta has arrived; iterate it once, then it is closed.

    The remaining deltas are read under the whole-response deadline and the idle limit, and the
    upstream is closed as soon as iteration stops for any reason.
    """

    def __init__(
        self,
        deltas: AsyncIterator[Delta],
        first: Delta,
        *,
        deadline: float,
        idle: float,
        release: Callable[[], None],
    ) -> None:
        self._deltas = deltas
        self._first = first
        self._deadline = deadline
        self._idle = idle
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[Delta]:
        try:
            yield self._first
            if isinstance(self._first, Finish):
                return
            loop = asyncio.get_running_loop()
            # On the loop's clock (uvloop's is not ``time.monotonic``'s).
            deadline = loop.time() + self._deadline - time.monotonic()
            while True:
                # asyncio's timeout costs about half of anyio's; this runs once per delta.
                try:
                    async with asyncio.timeout_at(min(deadline, loop.time() + self._idle)):
                        delta = await anext(self._deltas)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    raise errors.UpstreamTimeout() from None
                yield delta
                if isinstance(delta, Finish):
                    return
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Close the upstream and give back the stream's slot; safe to call more than once."""
        try:
            await aclose(self._deltas)
        finally:
            if self._release is not None:
                self._release()
                self._release = None


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


class ChatService:
    """Turns protocol requests into provider calls, with limits, deadlines and retries."""

    def __init__(self, provider: Provider, settings: Settings) -> None:
        self.provider = provider
        self.slots = StreamSlots(settings.chat_max_streams)
        self._settings = settings

    def prepare(self, request: ChatRequest) -> GenerationRequest:
        """Check the request against the configured limits and add the default system prompt."""
        settings = self._settings
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
        return GenerationRequest(messages=messages, options=options)

    async def open_stream(self, request: GenerationRequest) -> ChatStream:
        """Start an answer and wait for its first delta, retrying what may be retried.

        The answer holds one of the worker's stream slots from here until it is closed.
        """
        self.slots.acquire()
        try:
            return await self._open_stream(request)
        except BaseException:
            self.slots.release()
            raise

    async def _open_stream(self, request: GenerationRequest) -> ChatStream:
        settings = self._settings
        deadline = time.monotonic() + settings.chat_response_timeout
        waited = 0.0
        for attempt in range(1, settings.chat_retry_attempts + 1):
            try:
                return await self._first_delta(request, deadline)
            except errors.ChatError as exc:
                delay = self._retry_delay(exc, attempt=attempt, waited=waited, deadline=deadline)
            await anyio.sleep(delay)
            waited += delay
        raise AssertionError("unreachable: the last attempt raises")  # pragma: no cover

    async def complete(self, request: GenerationRequest) -> Answer:
        """The whole answer at once (for ``POST /chat``)."""
        parts: list[str] = []
        async for delta in await self.open_stream(request):
            if isinstance(delta, TextDelta):
                parts.append(delta.content)
            else:
                return Answer(content="".join(parts), finish=delta)
        raise errors.UpstreamIncomplete()

    async def _first_delta(self, request: GenerationRequest, deadline: float) -> ChatStream:
        deltas = aiter(self.provider.stream(request))
        timeout = min(self._settings.chat_first_token_timeout, deadline - time.monotonic())
        try:
            with anyio.fail_after(timeout):
                first = await anext(deltas)
        except TimeoutError:
            await aclose(deltas)
            raise errors.UpstreamTimeout() from None
        except StopAsyncIteration:
            raise errors.UpstreamIncomplete() from None
        except BaseException:
            await aclose(deltas)
            raise
        return ChatStream(
            deltas,
            first,
            deadline=deadline,
            idle=self._settings.chat_first_token_timeout,
            release=self.slots.release,
        )

    def _retry_delay(
        self, exc: errors.ChatError, *, attempt: int, waited: float, deadline: float
    ) -> float:
        """How long to wait before the next attempt, or raise ``exc`` when no retry is allowed.

        A rate limit whose wait does not fit in what is left of the budget is answered at once
        with the upstream's wait, so the client can back off instead of holding a connection.
        """
        settings = self._settings
        if not exc.retryable or attempt >= settings.chat_retry_attempts:
            raise exc
        backoff = settings.chat_retry_backoff_seconds * 2 ** (attempt - 1)
        delay = exc.retry_after if exc.retry_after is not None else backoff
        budget_left = settings.chat_retry_budget_seconds - waited
        if delay > budget_left or time.monotonic() + delay >= deadline:
            raise exc
        return delay
