"""HTTP for answers: one loop from the upstream read to the ASGI ``send``, and ``/chat``'s JSON.

``AnswerStream`` is the response of ``/chat/stream``. It opens the answer itself, so a failure
before the first byte still gets its real status; it reads deltas straight from the ``Answer`` and
sends each as one NDJSON line or SSE frame. A client disconnect cancels the read at once (one
listener per request, parked on ``receive``); the answer is closed on every path.

SSE waits up to one keep-alive interval for the first delta before committing to ``200``; after
that a keep-alive comment goes out whenever the stream has been silent that long. Keep-alives are
sent from the answer's silence, checked by one timer per stream, not by a second task per stream.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, assert_never

from pydantic import JsonValue
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from chatbackend import errors
from chatbackend.chat import Answer, Outcome
from chatbackend.encoders import (
    Encoding,
    encoding_for,
    final_event,
    first_event,
    tool_call_event,
    tool_result_body,
    tool_result_event,
)
from chatbackend.protocol import AssistantMessage, ChatResponse, ResponseContext, Usage
from chatbackend.providers.base import Finish, TextDelta, ToolCall, ToolResult
from chatbackend.requestlog import note_error
from chatbackend.settings import Settings

logger = logging.getLogger(__name__)

EVENT_STREAM = "text/event-stream"


def error_response(exc: errors.ChatError) -> JSONResponse:
    """The protocol error for ``exc``, with ``Retry-After`` when a wait was asked for."""
    note_error(exc.code)
    headers = {}
    if exc.retry_after is not None and exc.status in (429, 503):
        headers["Retry-After"] = str(max(1, round(exc.retry_after + 0.499)))
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


class _DisconnectWatch:
    """Cancels the request's task when the client goes away; ``stop`` before cleaning up.

    Used once the request body has been read, so the only message ``receive`` can still
    deliver is ``http.disconnect``.
    """

    def __init__(self, receive: Receive) -> None:
        self.disconnected = False
        self._stopped = False
        self._task = asyncio.current_task()
        self._listener = asyncio.ensure_future(self._listen(receive))

    async def _listen(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        if not self._stopped:
            self.disconnected = True
            if self._task is not None:
                self._task.cancel()

    def consume(self) -> bool:
        """Whether a caught cancellation was this watch's; if so it is taken back."""
        if not self.disconnected or self._task is None:
            return False
        self._task.uncancel()
        return True

    async def stop(self) -> None:
        self._stopped = True
        self._listener.cancel()
        if self.disconnected and self._task is not None and self._task.cancelling():
            # The listener fired after the caught point: take its cancellation here.
            try:
                await asyncio.sleep(0)
            except asyncio.CancelledError:
                self._task.uncancel()


# Batches watch for the client the same way (``chatbackend.batch.response``).
DisconnectWatch = _DisconnectWatch


class AnswerStream(Response):
    """The streamed response of one ``Answer``: NDJSON lines or Server-Sent Events."""

    def __init__(
        self,
        answer: Answer,
        *,
        encoding: Encoding,
        session_state: JsonValue,
        keepalive: float,
    ) -> None:
        self.status_code = 200
        self.media_type = encoding.media_type
        self.background = None
        self.init_headers({"Cache-Control": "no-store"})
        self._answer = answer
        self._encoding = encoding
        self._session_state = session_state
        self._keepalive = keepalive
        self._send: Send | None = None
        self._started = False
        self._pending_send: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._last_sent = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._send = send
        answer = self._answer
        watch = _DisconnectWatch(receive)
        responses = answer.responses
        responses.enter()
        try:
            await self._serve(scope, receive, send, watch)
        except asyncio.CancelledError:
            if not watch.consume():
                raise
        except (OSError, ClientDisconnect):
            pass  # the client is gone: nobody is left to tell
        finally:
            try:
                await watch.stop()
                self._stop_timer()
                await self._settle_pending()
                await answer.aclose()
            finally:
                responses.leave()

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, watch: _DisconnectWatch
    ) -> None:
        answer = self._answer
        loop = asyncio.get_running_loop()
        if self._encoding.keepalive is not None:
            self._timer = loop.call_later(self._keepalive, self._keepalive_due)
        try:
            await answer.open()
        except errors.ChatError as exc:
            if not self._started:
                await self._settle_pending()
                await error_response(exc)(scope, receive, send)
                return
            await self._end_with_error(exc)
            return
        await self._settle_pending()
        if not self._started:
            await self._start()
        await self._pump(watch)

    async def _start(self) -> None:
        assert self._send is not None
        self._started = True
        await self._send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )

    async def _pump(self, watch: _DisconnectWatch) -> None:
        answer = self._answer
        encode = self._encoding.encode
        send = self._send
        assert send is not None
        loop = asyncio.get_running_loop()
        pending = encode(first_event(answer.context_first))
        try:
            async for delta in answer:
                match delta:
                    case TextDelta():
                        data = self._encoding.text(delta.content)
                    case ToolCall():
                        data = encode(tool_call_event(delta))
                    case ToolResult():
                        data = encode(tool_result_event(delta))
                    case Finish():
                        pending += encode(
                            final_event(delta, answer.context_final, self._session_state)
                        )
                        break
                    case _:
                        assert_never(delta)
                if pending:
                    data, pending = pending + data, b""
                if self._pending_send is not None:
                    await self._settle_pending()
                self._last_sent = loop.time()
                await send({"type": "http.response.body", "body": data, "more_body": True})
        except errors.ChatError as exc:
            await self._end_with_error(exc, pending)
            return
        except asyncio.CancelledError:
            if watch.disconnected:
                raise
            if self._pending_send is not None:
                self._pending_send.cancel()
                self._pending_send = None
            if not answer.timed_out():
                # Not the client and not our deadline: the server is ending its graceful
                # window. The client gets a last line saying so, then a clean end.
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()
                answer.fail(errors.ShuttingDown())
            await self._end_with_error(answer.error, pending)
            return
        except OSError:  # how ASGI 2.4 servers report a client gone while we send
            return
        except Exception:
            logger.exception("stream failed after the first byte")
            await self._end_with_error(errors.ChatError(), pending)
            return
        # Closed (hooks run: the answer is stored, usage counted) before the client sees its end.
        await answer.aclose()
        await send({"type": "http.response.body", "body": pending, "more_body": False})

    async def _end_with_error(self, exc: errors.ChatError, pending: bytes = b"") -> None:
        logger.warning("stream ended by %s after the first byte", exc.code)
        note_error(exc.code)
        self._answer.fail(exc)
        await self._answer.aclose()
        assert self._send is not None
        if not self._started:
            await self._start()
        body = pending + self._encoding.error(exc.body())
        await self._send({"type": "http.response.body", "body": body, "more_body": False})

    # Keep-alives (SSE only). The timer fires once per interval; it sends only when nothing
    # went out for a whole interval, from a short task of its own, which the stream awaits
    # before its next send so two sends never overlap.

    def _keepalive_due(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        silent_since = self._last_sent
        now = loop.time()
        if self._pending_send is None and now - silent_since >= self._keepalive * 0.999:
            self._pending_send = asyncio.ensure_future(self._send_keepalive())
            self._last_sent = now
            silent_since = now
        self._timer = loop.call_at(silent_since + self._keepalive, self._keepalive_due)

    async def _send_keepalive(self) -> None:
        assert self._send is not None and self._encoding.keepalive is not None
        if not self._started:
            await self._start()
        await self._send(
            {"type": "http.response.body", "body": self._encoding.keepalive, "more_body": True}
        )

    async def _settle_pending(self) -> None:
        task, self._pending_send = self._pending_send, None
        if task is None:
            return
        if task.done():
            if not task.cancelled() and task.exception() is not None:
                raise ClientDisconnect()
            return
        try:
            await asyncio.shield(task)
        except OSError:
            raise ClientDisconnect() from None

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def stream_answer(
    request: Request, answer: Answer, *, session_state: JsonValue, settings: Settings
) -> AnswerStream:
    """The streamed response: NDJSON, or SSE when the client accepts ``text/event-stream``."""
    return AnswerStream(
        answer,
        encoding=encoding_for(request.headers.get("accept", "")),
        session_state=session_state,
        keepalive=settings.sse_keepalive_seconds,
    )


async def complete_answer(
    request: Request, answer: Answer, *, session_state: JsonValue
) -> ChatResponse:
    """``POST /chat``: the whole answer; the answer is closed (slot and upstream released)
    before this returns, and a client disconnect cancels it at once."""
    watch = _DisconnectWatch(request.receive)
    try:
        await read_whole(answer)
    except asyncio.CancelledError:
        if not watch.consume():
            raise
        raise ClientDisconnect() from None
    finally:
        await watch.stop()
    return whole_response(answer, session_state=session_state)


async def read_whole(answer: Answer) -> None:
    """Open, read and close ``answer`` (its ``outcome`` is then set)."""
    async with answer:
        async for _ in answer:
            pass


def whole_response(answer: Answer, *, session_state: JsonValue) -> ChatResponse:
    """The response of an answer that was read whole; its error if it did not complete."""
    outcome = answer.outcome
    assert outcome is not None
    return chat_response(outcome, answer.context_final, session_state=session_state)


def chat_response(
    outcome: Outcome, context_final: dict[str, Any], *, session_state: JsonValue
) -> ChatResponse:
    """``/chat``'s body for an ``outcome``; ``context_final`` joins its ``context``."""
    finish = outcome.finish
    if finish is None:
        raise outcome.error or errors.UpstreamIncomplete()
    usage = finish.usage
    extra = dict(context_final)
    if outcome.tools:
        extra["tool_calls"] = [
            {"id": call.id, "name": call.name, "arguments": call.arguments}
            | tool_result_body(result)
            for call, result in outcome.tools
        ]
    context = ResponseContext(
        finish_reason=finish.finish_reason,
        usage=Usage(**usage.as_dict()) if usage is not None else None,
        model=finish.model,
        **extra,
    )
    return ChatResponse(
        message=AssistantMessage(content=outcome.text),
        context=context,
        sessionState=session_state,
    )
