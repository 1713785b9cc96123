"""A fake OpenAI-compatible upstream at the HTTP transport: real SSE bytes through the real SDK.

``Upstream`` is a ``httpx2.MockTransport`` handler. Each call takes the next scripted reply, records
the request the SDK sent, and tracks whether the SDK closed the response stream (the proof that a
client disconnect or a timeout released the upstream connection).
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2

Chunk = dict[str, Any]
MODEL = "gpt-4.1-mini-2025-04-14"


def chunk(
    content: str | None = None,
    *,
    role: str | None = None,
    finish_reason: str | None = None,
    model: str = MODEL,
    extra_choice: dict[str, Any] | None = None,
) -> Chunk:
    """One ``chat.completion.chunk`` as OpenAI sends it."""
    delta: dict[str, Any] = {}
    if role is not None:
        delta["role"] = role
        delta["refusal"] = None
    if content is not None or role is not None:
        delta["content"] = content if content is not None else ""
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
    choice.update(extra_choice or {})
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 1764100000,
        "model": model,
        "service_tier": "default",
        "system_fingerprint": "fp_test",
        "choices": [choice],
        "usage": None,
    }


def usage_chunk(prompt: int, completion: int, *, model: str = MODEL) -> Chunk:
    """The final chunk ``stream_options.include_usage`` asks for: no choices, only usage."""
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 1764100000,
        "model": model,
        "system_fingerprint": "fp_test",
        "choices": [],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        },
    }


def openai_stream(*parts: str, finish_reason: str = "stop") -> list[Chunk]:
    return [
        chunk(role="assistant"),
        *(chunk(part) for part in parts),
        chunk(finish_reason=finish_reason),
        usage_chunk(25, len(parts)),
    ]


_SAFE = {"filtered": False, "severity": "safe"}
AZURE_FILTERS = {
    "hate": _SAFE,
    "self_harm": _SAFE,
    "sexual": _SAFE,
    "violence": _SAFE,
}
AZURE_MODEL = "gpt-4o-2024-11-20"


def azure_stream(*parts: str, finish_reason: str = "stop") -> list[Chunk]:
    """An Azure OpenAI stream: a ``prompt_filter_results`` chunk with no choices first, then
    chunks whose choices carry ``content_filter_results``."""
    prompt_filter: Chunk = {
        "choices": [],
        "created": 0,
        "id": "",
        "model": "",
        "object": "",
        "prompt_filter_results": [
            {
                "prompt_index": 0,
                "content_filter_results": {**AZURE_FILTERS, "jailbreak": {"filtered": False}},
            }
        ],
    }
    filtered = {"content_filter_results": AZURE_FILTERS}
    finish_filter = {"content_filter_results": {}}
    last_filter = (
        {
            "content_filter_results": {
                **AZURE_FILTERS,
                "violence": {"filtered": True, "severity": "high"},
            }
        }
        if finish_reason == "content_filter"
        else finish_filter
    )
    return [
        prompt_filter,
        chunk(role="assistant", model=AZURE_MODEL, extra_choice={"content_filter_results": {}}),
        *(chunk(part, model=AZURE_MODEL, extra_choice=filtered) for part in parts),
        chunk(finish_reason=finish_reason, model=AZURE_MODEL, extra_choice=last_filter),
        usage_chunk(31, len(parts), model=AZURE_MODEL),
    ]


def sse_bytes(chunks: Sequence[Chunk], *, done: bool = True) -> list[bytes]:
    """The byte frames of an OpenAI SSE stream."""
    frames = [f"data: {json.dumps(c)}\n\n".encode() for c in chunks]
    return frames + ([b"data: [DONE]\n\n"] if done else [])


class ScriptedStream(httpx2.AsyncByteStream):
    """A response body that yields frames, may stall or break, and records being closed."""

    def __init__(
        self,
        frames: Sequence[bytes],
        *,
        delay: float = 0.0,
        stall_after: int | None = None,
        break_after: int | None = None,
    ) -> None:
        self.frames = list(frames)
        self.delay = delay
        self.stall_after = stall_after
        self.break_after = break_after
        self.closed = threading.Event()
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for index, frame in enumerate(self.frames):
            if index == self.stall_after:
                await anyio.sleep_forever()
            if index == self.break_after:
                raise httpx2.RemoteProtocolError(
                    "peer closed connection without sending complete message body"
                )
            if self.delay:
                await anyio.sleep(self.delay)
            self.sent += 1
            yield frame

    async def aclose(self) -> None:
        self.closed.set()


Reply = Callable[[httpx2.Request], httpx2.Response]


def stream_reply(stream: ScriptedStream) -> Reply:
    def reply(_: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, stream=stream)

    return reply


def chunks_reply(chunks: Sequence[Chunk], **options: Any) -> Reply:
    return stream_reply(ScriptedStream(sse_bytes(chunks), **options))


def error_reply(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Reply:
    def reply(_: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, json=body, headers=headers)

    return reply


def connection_error_reply(request: httpx2.Request) -> httpx2.Response:
    raise httpx2.ConnectError("connection refused", request=request)


@dataclass
class Upstream:
    """The scripted upstream: ``replies`` are used in order, the last one repeats."""

    replies: list[Reply]
    requests: list[httpx2.Request] = field(default_factory=list)

    async def __call__(self, request: httpx2.Request) -> httpx2.Response:
        await request.aread()
        self.requests.append(request)
        index = min(len(self.requests), len(self.replies)) - 1
        return self.replies[index](request)

    @property
    def transport(self) -> httpx2.MockTransport:
        return httpx2.MockTransport(self)

    def last_json(self) -> dict[str, Any]:
        return json.loads(self.requests[-1].content)  # type: ignore[no-any-return]
