"""The wire encodings of a chat stream: NDJSON lines and Server-Sent Events.

Encoders see typed deltas and ``ChatError``s, never a provider. A failure after the first byte
becomes one final error object, so the stream still ends cleanly for the client.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable
from typing import Any, TypeVar

import anyio
import orjson
from pydantic import JsonValue

from chatbackend import errors
from chatbackend.aio import aclose
from chatbackend.protocol import error_body
from chatbackend.providers.base import Delta, Finish, TextDelta
from chatbackend.requestlog import note_error

logger = logging.getLogger(__name__)

Event = dict[str, Any]
T = TypeVar("T")

ROLE_EVENT: Event = {"delta": {"role": "assistant"}}
SSE_KEEPALIVE = b": keep-alive\n\n"


def finish_context(finish: Finish) -> dict[str, Any]:
    """The protocol ``context`` of a finished answer."""
    return {
        "finish_reason": finish.finish_reason,
        "usage": finish.usage.model_dump() if finish.usage else None,
        "model": finish.model,
    }


async def protocol_events(
    deltas: AsyncIterable[Delta], session_state: JsonValue
) -> AsyncIterator[Event]:
    """The protocol objects of one streamed answer, ending with either the context or an error."""
    yield ROLE_EVENT
    iterator = aiter(deltas)
    try:
        async for delta in iterator:
            if isinstance(delta, TextDelta):
                yield {"delta": {"content": delta.content}}
            else:
                yield {"delta": {}, "context": finish_context(delta), "sessionState": session_state}
    except errors.ChatError as exc:
        logger.warning("stream ended by %s after the first byte", exc.code)
        note_error(exc.code)
        yield error_body(exc.code, exc.message)
    except Exception:
        logger.exception("stream failed after the first byte")
        failure = errors.ChatError()
        note_error(failure.code)
        yield error_body(failure.code, failure.message)
    finally:
        await aclose(iterator)


def dumps(event: Event) -> bytes:
    """Compact UTF-8 JSON (orjson: a tenth of the json module's cost on these small objects)."""
    return orjson.dumps(event)


async def ndjson(events: AsyncIterable[Event]) -> AsyncIterator[bytes]:
    async for event in events:
        yield dumps(event) + b"\n"


async def sse(events: AsyncIterable[Event | None]) -> AsyncIterator[bytes]:
    """SSE frames; ``None`` stands for a keep-alive comment, errors are ``event: error``."""
    async for event in events:
        if event is None:
            yield SSE_KEEPALIVE
        elif "error" in event:
            yield b"event: error\ndata: " + dumps(event) + b"\n\n"
        else:
            yield b"data: " + dumps(event) + b"\n\n"


async def opened_events(
    opening: Awaitable[AsyncIterable[Delta]], session_state: JsonValue
) -> AsyncIterator[Event]:
    """``protocol_events`` of a stream still being opened; an opening failure is the error event."""
    try:
        deltas = await opening
    except errors.ChatError as exc:
        note_error(exc.code)
        yield error_body(exc.code, exc.message)
        return
    async for event in protocol_events(deltas, session_state):
        yield event


async def with_keepalive(items: AsyncIterable[T], interval: float) -> AsyncIterator[T | None]:
    """``items``, with a ``None`` whenever ``interval`` seconds pass without one."""
    iterator = aiter(items)
    pending: asyncio.Future[T] = asyncio.ensure_future(anext(iterator))
    try:
        while True:
            done, _ = await asyncio.wait({pending}, timeout=interval)
            if not done:
                yield None
                continue
            try:
                item = pending.result()
            except StopAsyncIteration:
                return
            yield item
            pending = asyncio.ensure_future(anext(iterator))
    finally:
        pending.cancel()
        with anyio.CancelScope(shield=True):
            await asyncio.gather(pending, return_exceptions=True)
        await aclose(iterator)
