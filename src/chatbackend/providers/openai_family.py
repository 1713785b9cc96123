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
from openai.types.chat import ChatCompletionChunk

from chatbackend import errors
from chatbackend.protocol import Usage
from chatbackend.providers.base import AuthMode, Delta, Finish, GenerationRequest, TextDelta

ApiKey = str | Callable[[], Awaitable[str]]
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
        try:
            upstream = await self._client.chat.completions.create(
                **self._parameters(request), stream=True, stream_options={"include_usage": True}
            )
        except (openai.APIError, httpx2.HTTPError) as exc:
            raise to_chat_error(exc) from None
        finish_reason: str | None = None
        usage: Usage | None = None
        model = self.model
        try:
            async for chunk in upstream:
                model = chunk.model or model
                usage = _usage(chunk) or usage
                for choice in chunk.choices:
                    if choice.index != 0:
                        continue
                    if choice.delta is not None and choice.delta.content:
                        yield TextDelta(choice.delta.content)
                    finish_reason = choice.finish_reason or finish_reason
        except (openai.APIError, httpx2.HTTPError) as exc:
            raise _mid_stream_error(exc) from None
        finally:
            # Shielded: on a client disconnect we are being cancelled, and the upstream must
            # still see its connection close.
            with anyio.CancelScope(shield=True):
                await upstream.close()
        if finish_reason is None:
            raise errors.UpstreamIncomplete()
        yield Finish(finish_reason=finish_reason, usage=usage, model=model)

    def _parameters(self, request: GenerationRequest) -> dict[str, Any]:
        options = request.options
        parameters: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
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


def _usage(chunk: ChatCompletionChunk) -> Usage | None:
    if chunk.usage is None:
        return None
    return Usage(
        prompt_tokens=chunk.usage.prompt_tokens,
        completion_tokens=chunk.usage.completion_tokens,
        total_tokens=chunk.usage.total_tokens,
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
