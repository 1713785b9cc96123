"""Azure OpenAI, OpenAI, GitHub Models and OpenAI-compatible servers, through the openai SDK.

Azure is reached through its GA ``/openai/v1/`` endpoint with ``AsyncOpenAI`` by default, or with
``AsyncAzureOpenAI`` (deployment path and ``api-version``) when ``AZURE_OPENAI_API_VERSION`` is set.
The SDK sends the request (auth, token refresh, status errors); the streamed body is parsed here.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import anyio
import httpx2
import openai
import orjson

from chatbackend import errors
from chatbackend.providers.base import (
    AuthMode,
    Delta,
    Finish,
    GenerationRequest,
    Message,
    TextDelta,
    ToolCall,
    ToolDefinition,
    Usage,
)

ApiKey = str | Callable[[], Awaitable[str]]
# How long to wait for the end of the body after ``[DONE]``; the answer is already complete.
_DRAIN_SECONDS = 1.0
CloseHook = Callable[[], Awaitable[None]]
TokenCheck = Callable[[], Awaitable[str]]
_TOKEN_CHECK_SECONDS = 10.0


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
        token: TokenCheck | None = None,
        max_tokens_parameter: str = "max_completion_tokens",
    ) -> None:
        self.name = name
        self.model = model
        self.auth_mode = auth_mode
        self.supports_tools = True
        self._client = client
        self._on_close = on_close
        self._token = token
        self._max_tokens_parameter = max_tokens_parameter

    @property
    def server(self) -> tuple[str, int]:
        """``server.address`` and ``server.port`` of the upstream, for its span."""
        url = self._client.base_url
        return url.host, url.port or (443 if url.scheme == "https" else 80)

    async def ready(self) -> str | None:
        """Configured and, with keyless auth, the credential can produce a token (the credential
        caches it, so this is no more than a cache read most of the time)."""
        if self._client.is_closed():
            return "the client is closed"
        if self._token is None:
            return None
        try:
            with anyio.fail_after(_TOKEN_CHECK_SECONDS):
                await self._token()
        except Exception:  # what each credential raises varies; none of its text is passed on
            return "the credential could not produce a token"
        return None

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
        # One loop from the network read to the delta: the SSE lines of each read are split
        # here, and all the text they carry becomes one delta.
        parser = _ChunkParser(self.model)
        body = _body(response)
        pending = b""
        data: list[bytes] = []
        try:
            async for piece in body:
                lines = (pending + piece).split(b"\n") if pending else piece.split(b"\n")
                pending = lines.pop()
                parts: list[str] = []
                for line in lines:
                    if line.endswith(b"\r"):
                        line = line[:-1]
                    if line.startswith(b"data:"):
                        value = line[5:]
                        data.append(value[1:] if value.startswith(b" ") else value)
                        continue
                    if line or not data:
                        continue  # other fields (event, id, retry) and comments carry nothing
                    payload = data[0] if len(data) == 1 else b"\n".join(data)
                    data = []
                    if payload == b"[DONE]":
                        if parts:
                            yield TextDelta("".join(parts))
                        await _drain(body)
                        if parser.calls is not None:
                            for call in parser.calls.complete():
                                yield call
                        yield parser.finish()
                        return
                    parser.feed(payload, parts)
                if parts:
                    yield TextDelta("".join(parts))
        except httpx2.HTTPError as exc:
            raise _mid_stream_error(exc) from None
        finally:
            # Shielded: on a client disconnect we are being cancelled, and the upstream must
            # still see its connection close.
            with anyio.CancelScope(shield=True):
                await response.aclose()
        if parser.calls is not None:
            for call in parser.calls.complete():
                yield call
        yield parser.finish()

    def _parameters(self, request: GenerationRequest) -> dict[str, Any]:
        options = request.options
        parameters: dict[str, Any] = {
            "model": self.model,
            "messages": [_message(m) for m in request.messages],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.tools:
            parameters["tools"] = [_tool(t) for t in request.tools]
            if request.tool_choice != "auto":
                parameters["tool_choice"] = request.tool_choice
        optional = {
            "temperature": options.temperature,
            "top_p": options.top_p,
            self._max_tokens_parameter: options.max_tokens,
            "seed": options.seed,
            "stop": options.stop or None,
        }
        parameters.update({k: v for k, v in optional.items() if v is not None})
        return parameters


def _body(response: httpx2.Response) -> AsyncIterator[bytes]:
    """The body as it arrives. Without a ``Content-Encoding`` (what every OpenAI-style server
    sends for a stream) the response's own byte stream is read directly: ``aiter_bytes`` adds
    two generator layers, a decoder and two chunkers per network read, and does nothing here."""
    if "content-encoding" in response.headers or not isinstance(
        response.stream, httpx2.AsyncByteStream
    ):
        return response.aiter_bytes()
    return aiter(response.stream)


def _message(message: Message) -> dict[str, Any]:
    if message.tool_calls:
        calls = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
        return {"role": "assistant", "content": message.content or None, "tool_calls": calls}
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    return {"role": message.role, "content": message.content}


def _tool(tool: ToolDefinition) -> dict[str, Any]:
    function = {"name": tool.name, "description": tool.description, "parameters": tool.parameters}
    return {"type": "function", "function": function}


# The most tool calls, and argument characters, one answer may carry.
_MAX_TOOL_CALLS = 64
_MAX_ARGUMENT_CHARS = 1_000_000


class _ToolCalls:
    """The ``tool_calls`` fragments of one stream, assembled by their ``index``.

    A call's ``id`` and ``name`` may come in different chunks, and its arguments in any number
    of pieces, interleaved with other calls' pieces.
    """

    __slots__ = ("_calls", "_chars")

    def __init__(self) -> None:
        self._calls: dict[int, tuple[list[str], list[str]]] = {}
        self._chars = 0

    def feed(self, fragments: object) -> None:
        if type(fragments) is not list:
            raise errors.UpstreamUnavailable()
        for fragment in fragments:
            if type(fragment) is not dict:
                raise errors.UpstreamUnavailable()
            index = fragment.get("index", 0)
            if type(index) is not int:
                raise errors.UpstreamUnavailable()
            call = self._calls.get(index)
            if call is None:
                if len(self._calls) >= _MAX_TOOL_CALLS:
                    raise errors.UpstreamUnavailable()
                call = self._calls[index] = (["", ""], [])
            names, arguments = call
            if call_id := fragment.get("id"):
                names[0] = names[0] or _text(call_id)
            function = fragment.get("function")
            if function:
                if type(function) is not dict:
                    raise errors.UpstreamUnavailable()
                if name := function.get("name"):
                    names[1] = names[1] or _text(name)
                if piece := function.get("arguments"):
                    self._chars += len(piece)
                    if self._chars > _MAX_ARGUMENT_CHARS:
                        raise errors.UpstreamUnavailable()
                    arguments.append(_text(piece))

    def complete(self) -> list[ToolCall]:
        """The calls in ``index`` order; a call the upstream sent no id for gets one."""
        return [
            ToolCall(id=names[0] or f"call_{index}", name=names[1], arguments="".join(arguments))
            for index, (names, arguments) in sorted(self._calls.items())
        ]


def _text(value: object) -> str:
    if type(value) is not str:
        raise errors.UpstreamUnavailable()
    return value


# Names copied from the upstream into responses and logs: short, from a safe set, else replaced.
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+\-]{0,99}")
_SAFE_REASON = re.compile(r"[a-z][a-z0-9_]{0,31}")
UNKNOWN_FINISH_REASON = "unknown"
_MAX_TOKENS = 10**9


class _ChunkParser:
    """The state of one OpenAI chat completion stream, fed one ``data`` payload at a time.

    Anything the upstream sends that is not the documented shape is ``upstream_error``: only a
    ``ChatError`` ever leaves it.
    """

    __slots__ = ("_raw_model", "calls", "configured_model", "finish_reason", "model", "usage")

    def __init__(self, model: str) -> None:
        self.configured_model = model
        self.model = model
        self._raw_model: object = None
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.calls: _ToolCalls | None = None

    def feed(self, payload: bytes, parts: list[str]) -> None:
        try:
            chunk = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise errors.UpstreamUnavailable() from None
        if type(chunk) is not dict:
            raise errors.UpstreamUnavailable()
        if error := chunk.get("error"):
            code = error.get("code") if isinstance(error, dict) else None
            raise (
                errors.ContentFiltered()
                if code == "content_filter"
                else errors.UpstreamUnavailable()
            )
        model = chunk.get("model")
        if model is not None and model != self._raw_model:
            self._raw_model = model
            self.model = safe_name(model) or self.configured_model
        if raw_usage := chunk.get("usage"):
            self.usage = parse_usage(raw_usage) or self.usage
        choices = chunk.get("choices")
        if not choices:
            return
        if type(choices) is not list:
            raise errors.UpstreamUnavailable()
        for choice in choices:
            if type(choice) is not dict:
                raise errors.UpstreamUnavailable()
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            if delta:
                if type(delta) is not dict:
                    raise errors.UpstreamUnavailable()
                content = delta.get("content")
                if content:
                    if type(content) is not str:
                        raise errors.UpstreamUnavailable()
                    parts.append(content)
                if tool_calls := delta.get("tool_calls"):
                    if self.calls is None:
                        self.calls = _ToolCalls()
                    self.calls.feed(tool_calls)
            if reason := choice.get("finish_reason"):
                self.finish_reason = safe_reason(reason)

    def finish(self) -> Finish:
        if self.finish_reason is None:
            raise errors.UpstreamIncomplete()
        return Finish(finish_reason=self.finish_reason, usage=self.usage, model=self.model)


def safe_name(value: object) -> str | None:
    """``value`` if it is a short model-like name, else ``None``."""
    if type(value) is str and _SAFE_NAME.fullmatch(value):
        return value
    return None


def safe_reason(value: object) -> str:
    if type(value) is str and _SAFE_REASON.fullmatch(value):
        return value
    return UNKNOWN_FINISH_REASON


def _count(value: object) -> int | None:
    return value if type(value) is int and 0 <= value < _MAX_TOKENS else None


def parse_usage(raw: object) -> Usage | None:
    """The usage object, with ``total_tokens`` computed when it is missing; ``None`` if unusable."""
    if type(raw) is not dict:
        return None
    prompt, completion = _count(raw.get("prompt_tokens")), _count(raw.get("completion_tokens"))
    if prompt is None or completion is None:
        return None
    total = _count(raw.get("total_tokens"))
    return Usage(prompt, completion, total if total is not None else prompt + completion)


async def _drain(body: AsyncIterator[bytes]) -> None:
    """Read the rest of the body after ``[DONE]`` so the connection goes back to the pool."""
    with anyio.move_on_after(_DRAIN_SECONDS):
        async for _ in body:
            pass


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
