"""Azure OpenAI, OpenAI, GitHub Models and OpenAI-compatible servers, all through ``AsyncOpenAI``.

Azure is reached through its GA ``/openai/v1/`` endpoint, so one client class, one request shape and
one error mapping serve every upstream, and no ``api-version`` has to be chosen and kept current.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import anyio
import httpx2
import openai
import orjson

from chatbackend import errors
from chatbackend.protocol import Usage
from chatbackend.providers.base import AuthMode, Delta, Finish, GenerationRequest, TextDelta

ApiKey = str | Callable[[], Awaitable[str]]
# How long to wait for the end of the body after ``[DONE]``; the answer is already complete.
_DRAIN_SECONDS = 1.0
CloseHook = Callable[[], Awaitable[None]]


class OpenAIProvider:
    """A chat model behind an OpenAI-compatible HTTP API."""

    def __init__(
        self,
        *,
        name: str,
        model: str,
        auth_mode: AuthMode,
        client: openai.AsyncOpenAI,
        on_close: CloseHook | None = None,
        max_tokens_parameter: str = "max_completion_tokens",
    ) -> None:
        self.name = name
        self.model = model
        self.auth_mode = auth_mode
        self._client = client
        self._on_close = on_close
        self._max_tokens_parameter = max_tokens_parameter

    def is_ready(self) -> bool:
        return not self._client.is_closed()

    async def aclose(self) -> None:
        await self._client.close()
        if self._on_close is not None:
            await self._on_close()

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        """Stream the answer, one ``TextDelta`` per network read.

        The SDK makes the request (auth, Azure token refresh, status errors) through its public
        ``post`` for raw endpoints; the body is read here. The typed ``create`` would spend
        about 0.5 ms per request transforming parameters against its type hints, and a
        ``ChatCompletionChunk`` model per token costs about 15 times what parsing the line with
        orjson does. A read that carries several chunks becomes one delta (one line to the
        client) instead of one per token.
        """
        try:
            stream = await self._client.post(
                "/chat/completions",
                body=self._parameters(request),
                cast_to=object,
                stream=True,
                stream_cls=openai.AsyncStream[object],
            )
        except (openai.APIError, httpx2.HTTPError) as exc:
            raise to_chat_error(exc) from None
        # Only the HTTP response is kept: the SDK's stream object (and its unstarted parser)
        # would stay in memory for the whole answer.
        response = stream.response
        del stream
        try:
            async for delta in _deltas(response, self.model):
                yield delta
        finally:
            # Shielded: on a client disconnect we are being cancelled, and the upstream must
            # still see its connection close.
            with anyio.CancelScope(shield=True):
                await response.aclose()

    def _parameters(self, request: GenerationRequest) -> dict[str, Any]:
        options = request.options
        parameters: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        optional = {
            "temperature": options.temperature,
            "top_p": options.top_p,
            self._max_tokens_parameter: options.max_tokens,
            "seed": options.seed,
            "stop": options.stop or None,
        }
        parameters.update({k: v for k, v in optional.items() if v is not None})
        return parameters


async def _deltas(response: httpx2.Response, model: str) -> AsyncIterator[Delta]:
    """The deltas of an OpenAI chat completion stream: text per read, then one ``Finish``."""
    finish_reason: str | None = None
    usage: Usage | None = None
    reads = sse_data(response.aiter_bytes())
    try:
        async for payloads in reads:
            parts: list[str] = []
            for payload in payloads:
                if payload == b"[DONE]":
                    if parts:
                        yield TextDelta("".join(parts))
                    await _drain(reads)
                    if finish_reason is None:
                        raise errors.UpstreamIncomplete()
                    yield Finish(finish_reason=finish_reason, usage=usage, model=model)
                    return
                chunk = _json_object(payload)
                model = chunk.get("model") or model
                if raw_usage := chunk.get("usage"):
                    usage = _usage(raw_usage)
                for choice in chunk.get("choices") or ():
                    if choice.get("index", 0) != 0:
                        continue
                    if content := (choice.get("delta") or {}).get("content"):
                        parts.append(content)
                    finish_reason = choice.get("finish_reason") or finish_reason
            if parts:
                yield TextDelta("".join(parts))
    except httpx2.HTTPError as exc:
        raise _mid_stream_error(exc) from None
    if finish_reason is None:
        raise errors.UpstreamIncomplete()
    yield Finish(finish_reason=finish_reason, usage=usage, model=model)


async def sse_data(body: AsyncIterator[bytes]) -> AsyncIterator[list[bytes]]:
    """The ``data`` of the Server-Sent Events completed by each read of ``body``.

    Field names other than ``data`` (``event``, ``id``, ``retry``) and comments are ignored: an
    OpenAI chat stream carries everything, errors included, in ``data``.
    """
    pending = b""
    data: list[bytes] = []
    async for piece in body:
        lines = (pending + piece).split(b"\n") if pending else piece.split(b"\n")
        pending = lines.pop()
        events: list[bytes] = []
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                if data:
                    events.append(b"\n".join(data))
                    data = []
            elif line.startswith(b"data:"):
                value = line[5:]
                data.append(value[1:] if value.startswith(b" ") else value)
        if events:
            yield events


def _json_object(payload: bytes) -> dict[str, Any]:
    try:
        chunk = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise errors.UpstreamUnavailable() from None
    if not isinstance(chunk, dict):
        raise errors.UpstreamUnavailable()
    if error := chunk.get("error"):
        code = error.get("code") if isinstance(error, dict) else None
        raise errors.ContentFiltered() if code == "content_filter" else errors.UpstreamUnavailable()
    return chunk


async def _drain(reads: AsyncIterator[object]) -> None:
    """Read the rest of the body after ``[DONE]`` so the connection goes back to the pool."""
    with anyio.move_on_after(_DRAIN_SECONDS):
        async for _ in reads:
            pass


def _usage(raw: dict[str, Any]) -> Usage:
    return Usage(
        prompt_tokens=raw["prompt_tokens"],
        completion_tokens=raw["completion_tokens"],
        total_tokens=raw["total_tokens"],
    )


def to_chat_error(exc: openai.APIError | httpx2.HTTPError) -> errors.ChatError:
    """Translate an SDK or transport failure into our error, dropping the upstream's text."""
    if isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException):
        return errors.UpstreamTimeout()
    if isinstance(exc, openai.APIConnectionError | httpx2.TransportError):
        return errors.UpstreamUnreachable()
    if not isinstance(exc, openai.APIStatusError):
        return errors.UpstreamUnavailable()
    retry_after = retry_after_seconds(exc.response.headers)
    status = exc.status_code
    if status == 429:
        return errors.RateLimited(retry_after=retry_after)
    if status in (408, 409) or status >= 500:
        return errors.UpstreamUnavailable(retry_after=retry_after)
    if exc.code == "content_filter":
        return errors.ContentFiltered()
    by_status: dict[int, type[errors.ChatError]] = {
        401: errors.UpstreamAuthFailed,
        403: errors.UpstreamForbidden,
        404: errors.UpstreamModelNotFound,
    }
    return by_status.get(status, errors.UpstreamRejected)()


def _mid_stream_error(exc: openai.APIError | httpx2.HTTPError) -> errors.ChatError:
    """A connection lost mid-answer is an incomplete answer, not an unreachable upstream."""
    error = to_chat_error(exc)
    return errors.UpstreamIncomplete() if isinstance(error, errors.UpstreamUnreachable) else error


def retry_after_seconds(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """The wait the upstream asked for: ``retry-after-ms``, else ``retry-after``."""
    if (millis := headers.get("retry-after-ms")) is not None:
        try:
            return max(float(millis) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(when - (time.time() if now is None else now), 0.0)
