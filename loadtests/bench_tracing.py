"""What tracing costs on the streaming path: process CPU time per streamed token, off vs on.

Run with ``make bench-tracing``. Everything runs in one process and one thread: the app (through
its lifespan), a minimal ASGI driver, and the real openai SDK reading a fixed SSE body from a
``httpx2.MockTransport``. Without an HTTP server in the loop the app's own work is a larger share
of the total, so the ratio measured here is an upper bound of what a served deployment would see.

Modes, interleaved round by round so that drift in the machine affects all alike:

- ``bare``: no request log and no provider wrapper (the app before observability);
- ``off``: telemetry off, as deployed without an exporter (request log and wrapper only);
- ``on``: telemetry on, spans and metrics into in-memory exporters (synchronous span export).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.types import ASGIApp, Message

from chatbackend.app import create_app
from chatbackend.requestlog import LOGGER_NAME, RequestLog
from chatbackend.settings import Settings, load_settings
from chatbackend.telemetry import start_telemetry

MODES = ("bare", "off", "on")
BODY = json.dumps({"messages": [{"role": "user", "content": "Count to a hundred."}]}).encode()


def sse_body(tokens: int) -> bytes:
    """An OpenAI stream of ``tokens`` one-token deltas, then the finish and usage chunks."""

    def frame(delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> bytes:
        choices = [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}]
        chunk = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1764100000,
            "model": "gpt-4.1-mini-2025-04-14",
            "choices": choices,
            "usage": usage,
        }
        return f"data: {json.dumps(chunk)}\n\n".encode()

    frames = [frame({"role": "assistant", "content": ""})]
    frames += [frame({"content": f" {i}"}) for i in range(tokens)]
    frames.append(frame({}, finish="stop"))
    usage = {"prompt_tokens": 20, "completion_tokens": tokens, "total_tokens": 20 + tokens}
    frames.append(frame({}, usage=usage))
    return b"".join(frames) + b"data: [DONE]\n\n"


def upstream(body: bytes) -> httpx2.MockTransport:
    def reply(_: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    return httpx2.MockTransport(reply)


class Driver:
    """Runs the app's lifespan, then requests straight through ASGI, reading the whole body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.state: dict[str, Any] = {}
        self._shutdown: asyncio.Event = asyncio.Event()
        self._lifespan: asyncio.Task[None] | None = None

    async def start(self) -> None:
        started = asyncio.Event()
        messages = iter([{"type": "lifespan.startup"}])

        async def receive() -> Message:
            message = next(messages, None)
            if message is None:
                await self._shutdown.wait()
                return {"type": "lifespan.shutdown"}
            return message

        async def send(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                started.set()

        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": self.state}
        self._lifespan = asyncio.ensure_future(self.app(scope, receive, send))
        await started.wait()

    async def stop(self) -> None:
        self._shutdown.set()
        assert self._lifespan is not None
        await self._lifespan

    async def post(self, path: str, body: bytes) -> int:
        """POST ``body``; returns the number of body bytes received."""
        done = asyncio.Event()
        received = 0
        sent_body = False

        async def receive() -> Message:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal received
            if message["type"] == "http.response.body":
                received += len(message.get("body", b""))
                if not message.get("more_body", False):
                    done.set()

        await self.app(self._scope(path, len(body)), receive, send)
        return received

    def _scope(self, path: str, length: int) -> dict[str, Any]:
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"bench"),
                (b"content-type", b"application/json"),
                (b"content-length", str(length).encode()),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": dict(self.state),
        }


async def measure(driver: Driver, requests: int) -> float:
    """Process CPU seconds for ``requests`` streamed answers."""
    started = time.process_time()
    for _ in range(requests):
        await driver.post("/chat/stream", BODY)
    return time.process_time() - started


async def start(mode: str, settings: Settings, body: bytes) -> tuple[Driver, Callable[[], None]]:
    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    telemetry = (
        start_telemetry(settings, span_exporter=spans, metric_reader=reader)
        if mode == "on"
        else None
    )
    app = create_app(settings, transport=upstream(body), telemetry=telemetry)
    if mode == "bare":
        app.user_middleware = [m for m in app.user_middleware if m.cls is not RequestLog]
    driver = Driver(app)
    await driver.start()

    def reset() -> None:
        spans.clear()  # keep memory flat; the spans were exported, which is what costs
        if telemetry is not None:
            reader.get_metrics_data()

    return driver, reset


def quiet_logging() -> None:
    """Request lines are still formatted and written (they cost in production), to /dev/null."""
    logging.getLogger().setLevel(logging.WARNING)
    request_logger = logging.getLogger(LOGGER_NAME)
    request_logger.setLevel(logging.INFO)
    sink = open(os.devnull, "w")  # lives as long as the process
    for handler in request_logger.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sink)


async def bench(tokens: int, requests: int, rounds: int) -> dict[str, Any]:
    settings = load_settings(chat_provider="openai", openai_api_key="sk-bench", log_level="WARNING")
    body = sse_body(tokens)
    drivers: dict[str, tuple[Driver, Callable[[], None]]] = {}
    for mode in MODES:
        drivers[mode] = await start(mode, settings, body)
    quiet_logging()
    for driver, _ in drivers.values():
        await measure(driver, max(1, requests // 10))  # warm-up: imports, caches, first spans
    per_token: dict[str, list[float]] = {mode: [] for mode in MODES}
    for _ in range(rounds):
        for mode in MODES:
            driver, reset = drivers[mode]
            seconds = await measure(driver, requests)
            per_token[mode].append(seconds / (requests * tokens) * 1e6)
            reset()
    for driver, _ in drivers.values():
        await driver.stop()
    return summarise(per_token, tokens=tokens, requests=requests, rounds=rounds)


def summarise(
    per_token: dict[str, list[float]], *, tokens: int, requests: int, rounds: int
) -> dict[str, Any]:
    median = {mode: statistics.median(values) for mode, values in per_token.items()}
    return {
        "cpu_microseconds_per_token": {mode: round(value, 3) for mode, value in median.items()},
        "rounds_microseconds_per_token": {
            mode: [round(v, 3) for v in values] for mode, values in per_token.items()
        },
        "ratio_on_vs_off": round(median["on"] / median["off"], 4),
        "ratio_off_vs_bare": round(median["off"] / median["bare"], 4),
        "tokens_per_answer": tokens,
        "answers_per_round": requests,
        "rounds": rounds,
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": len(os.sched_getaffinity(0)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=100, help="deltas per streamed answer")
    parser.add_argument("--requests", type=int, default=200, help="answers per round and mode")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--output", type=Path, default=Path("bench-results/tracing.json"))
    args = parser.parse_args(argv)
    result = asyncio.run(bench(args.tokens, args.requests, args.rounds))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
