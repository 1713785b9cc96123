"""Two bare ASGI proxies: what streaming costs on this machine before chatbackend adds anything.

``bench_floor`` serves each with the production command (gunicorn, ``gunicorn.conf.py``, the
same uvicorn worker class, one worker) in place of ``chatbackend.asgi:app``:

- ``raw``: aiohttp straight to the upstream, the lines parsed with orjson and written as NDJSON.
  No framework, no SDK: the event loop, the HTTP server and the HTTP client alone.
- ``sdk``: the same through the openai SDK's ``post`` with its aiohttp client
  (``DefaultAioHttpClient``, the pool and timeouts chatbackend uses), the body read as
  ``OpenAIProvider.stream`` reads it. The SDK's per-request work is the part of chatbackend's
  cost that the "real SDK" rule makes fixed.

Both answer ``/health/ready`` and ``POST /chat/stream`` with ``{"delta":{"content":...}}``
lines, which is all the load client reads. The upstream comes from ``CHAT_BASE_URL``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx2
import openai
import orjson
from starlette.types import Receive, Scope, Send

BASE_URL = os.environ.get("CHAT_BASE_URL", "http://127.0.0.1:18900/v1")
MODEL = os.environ.get("CHAT_MODEL", "fake-model")
POOL = int(os.environ.get("CHAT_MAX_STREAMS", "512"))
NDJSON = [(b"content-type", b"application/x-ndjson")]


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _request_body(receive: Receive) -> dict[str, Any]:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    request: dict[str, Any] = orjson.loads(body)
    request.update(model=MODEL, stream=True, stream_options={"include_usage": True})
    return request


async def _health(scope: Scope, send: Send) -> bool:
    if scope["path"].startswith("/health"):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})
        return True
    return False


async def _relay(pieces: AsyncIterator[bytes], send: Send) -> None:
    """Each network read's SSE lines, their text as one NDJSON line (as chatbackend does)."""
    await send({"type": "http.response.start", "status": 200, "headers": NDJSON})
    pending = b""
    async for piece in pieces:
        lines = (pending + piece).split(b"\n")
        pending = lines.pop()
        parts: list[str] = []
        for line in lines:
            if line.startswith(b"data: {"):
                choices = orjson.loads(line[6:]).get("choices")
                if choices and (text := choices[0].get("delta", {}).get("content")):
                    parts.append(text)
        if parts:
            line = orjson.dumps({"delta": {"content": "".join(parts)}}) + b"\n"
            await send({"type": "http.response.body", "body": line, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


class _Proxy:
    """The ASGI plumbing both floors share; ``answer`` relays one request's upstream stream."""

    def __init__(self, base_url: str = BASE_URL) -> None:
        self.base_url = base_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if await _health(scope, send):
            return
        await self.answer(await _request_body(receive), send)

    async def answer(self, request: dict[str, Any], send: Send) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        """Close the HTTP client (the served apps keep theirs until the worker exits)."""


class RawProxy(_Proxy):
    """aiohttp to the upstream, no SDK and no framework."""

    session: aiohttp.ClientSession | None = None

    async def answer(self, request: dict[str, Any], send: Send) -> None:
        if self.session is None:
            self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=POOL))
        async with self.session.post(
            f"{self.base_url}/chat/completions",
            data=orjson.dumps(request),
            headers={"Content-Type": "application/json"},
        ) as response:
            await _relay(response.content.iter_any(), send)

    async def aclose(self) -> None:
        if self.session is not None:
            await self.session.close()


class SdkProxy(_Proxy):
    """The openai SDK's ``post`` (as ``OpenAIProvider`` calls it), no framework."""

    client: openai.AsyncOpenAI | None = None

    async def answer(self, request: dict[str, Any], send: Send) -> None:
        if self.client is None:
            timeout = httpx2.Timeout(connect=10.0, read=60.0, write=10.0, pool=10.0)
            limits = httpx2.Limits(max_connections=POOL, max_keepalive_connections=POOL)
            self.client = openai.AsyncOpenAI(
                api_key="unused",
                base_url=self.base_url,
                http_client=openai.DefaultAioHttpClient(timeout=timeout, limits=limits),
                timeout=timeout,
                max_retries=0,
            )
        stream = await self.client.post(
            "/chat/completions",
            content=orjson.dumps(request),
            cast_to=object,
            stream=True,
            stream_cls=openai.AsyncStream[object],
        )
        response = stream.response
        try:
            await _relay(aiter(response.stream), send)
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.close()


raw = RawProxy()
sdk = SdkProxy()
