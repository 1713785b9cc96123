"""HTTP-side plumbing for streams: disconnect detection and guaranteed closing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import anyio
from starlette.requests import ClientDisconnect
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from chatbackend.aio import aclose

T = TypeVar("T")


class ClosingStreamingResponse(StreamingResponse):
    """A ``StreamingResponse`` that stops at a client disconnect and always closes its iterator.

    Starlette skips its disconnect listener for ASGI 2.4 servers and never closes the body
    iterator; either gap would leave the upstream request running after the client has gone.
    ``on_close`` releases what the route opened before the body started (a generator that never
    started cannot clean up after itself).
    """

    def __init__(
        self,
        content: AsyncIterator[bytes],
        *,
        media_type: str,
        on_close: Callable[[], Awaitable[None]],
    ) -> None:
        super().__init__(content, media_type=media_type, headers={"Cache-Control": "no-store"})
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: ARG002
        try:
            async with anyio.create_task_group() as group:

                async def stream_then_stop() -> None:
                    with contextlib.suppress(OSError):  # how ASGI 2.4 servers report a gone client
                        await self.stream_response(send)
                    group.cancel_scope.cancel()

                group.start_soon(stream_then_stop)
                await self.listen_for_disconnect(receive)
                group.cancel_scope.cancel()
        finally:
            await aclose(self.body_iterator)  # type: ignore[arg-type]
            with anyio.CancelScope(shield=True):
                await self._on_close()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(receive: Receive, work: Awaitable[T]) -> T:
    """Await ``work``, cancelling it (and so its upstream request) if the client goes away first.

    Used before a response starts, once the request body has been read, so the only message
    ``receive`` can still deliver is the disconnect.
    """
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
        with anyio.CancelScope(shield=True):
            await asyncio.gather(task, watcher, return_exceptions=True)
    if task.cancelled():
        raise ClientDisconnect()
    return task.result()
