"""What one tool round adds to an answer: the production worker on the fake upstream, 50 streams.

The same paced answer (TTFT 200 ms, 20 ms between tokens, 50 tokens) is measured through the
backend twice: plain, and with the fake upstream asking for one ``calculate`` call first, so each
answer is two model calls with the tool run between them. The round's cost is the difference in
time to the first content token; the upstream's own share of it (the tool-call answer, measured
directly against the fake upstream at the same concurrency) is subtracted to leave the backend's.

``python -m loadtests.bench_tools --output bench-results/tools.json`` (``make bench-tools``)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from loadtests.bench import (
    BACKEND_CPU,
    CLIENT_CPU,
    RAMP_SECONDS,
    WARMUP_SECONDS,
    backend_command,
    backend_environment,
    machine,
    process,
)

PACING = {"ttft": 0.2, "itl": 0.02, "tokens": 50}
TOOL_ROUND = {**PACING, "tool_calls": "calculate"}
BODY = {"messages": [{"role": "user", "content": "What is 17 times 3 divided by 4?"}]}
CONTENT = b'{"delta":{"content"'


@dataclass
class Timings:
    first_content: list[float] = field(default_factory=list)
    whole: list[float] = field(default_factory=list)
    rounds: int = 0
    errors: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "answers": len(self.whole),
            "errors": self.errors,
            "tool_results": self.rounds,
            "first_content_p50_ms": _ms(_percentile(self.first_content, 50)),
            "first_content_p99_ms": _ms(_percentile(self.first_content, 99)),
            "whole_p50_ms": _ms(_percentile(self.whole, 50)),
        }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _percentile(values: list[float], percent: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(percent / 100 * (len(ordered) - 1)))]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


async def closed_loop(call: Any, *, concurrency: int, duration: float, timings: Timings) -> None:
    """``concurrency`` users, each starting its next request when the last ended."""
    started = time.monotonic()
    measured_from, deadline = started + WARMUP_SECONDS, started + WARMUP_SECONDS + duration

    async def user() -> None:
        await asyncio.sleep(random.random() * RAMP_SECONDS)
        while (now := time.monotonic()) < deadline:
            await call(timings if now >= measured_from else Timings())

    await asyncio.gather(*(user() for _ in range(concurrency)))


async def through(session: aiohttp.ClientSession, url: str, timings: Timings) -> None:
    sent = time.monotonic()
    first: float | None = None
    async with session.post(url, json=BODY) as response:
        if response.status != 200:
            timings.errors += 1
            return
        async for line in response.content:
            if first is None and line.startswith(CONTENT):
                first = time.monotonic() - sent
            elif b'"tool_result"' in line:
                timings.rounds += 1
            elif line.startswith(b'{"error"'):
                timings.errors += 1
                return
    if first is None:
        timings.errors += 1
        return
    timings.first_content.append(first)
    timings.whole.append(time.monotonic() - sent)


async def direct(session: aiohttp.ClientSession, url: str, timings: Timings) -> None:
    """The tool-call answer alone, straight from the fake upstream: the upstream's share."""
    body = {"model": "fake-model", "stream": True, **BODY}
    sent = time.monotonic()
    async with session.post(url, json=body) as response:
        if response.status != 200:
            timings.errors += 1
            return
        async for _ in response.content:
            pass
    timings.whole.append(time.monotonic() - sent)


async def run(upstream: str, backend: str, *, concurrency: int, duration: float) -> dict[str, Any]:
    results: dict[str, Any] = {}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        for name, knobs in (("plain", PACING), ("one_tool_round", TOOL_ROUND)):
            await session.put(f"{upstream}/_fake/defaults", json=knobs)
            timings = Timings()
            url = f"{backend}/chat/stream"
            await closed_loop(
                lambda t, u=url: through(session, u, t),
                concurrency=concurrency,
                duration=duration,
                timings=timings,
            )
            results[name] = timings.summary()
            print(name, results[name], flush=True)
        await session.put(f"{upstream}/_fake/defaults", json=TOOL_ROUND)
        timings = Timings()
        url = f"{upstream}/v1/chat/completions"
        await closed_loop(
            lambda t, u=url: direct(session, u, t),
            concurrency=concurrency,
            duration=duration,
            timings=timings,
        )
        results["upstream_tool_call_answer"] = timings.summary()
        print("upstream tool-call answer", results["upstream_tool_call_answer"], flush=True)
    plain, tools = results["plain"], results["one_tool_round"]
    upstream_share = results["upstream_tool_call_answer"]["whole_p50_ms"]
    added = tools["first_content_p50_ms"] - plain["first_content_p50_ms"]
    results["added_per_round_p50_ms"] = round(added, 1)
    results["backend_share_per_round_p50_ms"] = round(added - upstream_share, 1)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--output", type=Path, default=Path("bench-results/tools.json"))
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--duration", type=float, default=6.0)
    args = parser.parse_args()
    upstream_port, backend_port = free_port(), free_port()
    upstream = f"http://127.0.0.1:{upstream_port}"
    backend = f"http://127.0.0.1:{backend_port}"
    fake = [sys.executable, "-m", "loadtests.fake_upstream", "--port", str(upstream_port)]
    with (
        process(fake, env={}, cpu=CLIENT_CPU, ready=f"{upstream}/_fake/stats"),
        process(
            backend_command(),
            env=backend_environment(upstream, backend_port),
            cpu=BACKEND_CPU,
            ready=f"{backend}/health/ready",
        ),
    ):
        results = asyncio.run(
            run(upstream, backend, concurrency=args.concurrency, duration=args.duration)
        )
    results["setup"] = {
        "concurrency": args.concurrency,
        "measured_seconds": args.duration,
        "pacing": PACING,
        "tool": "calculate, one call per answer",
        "machine": machine(),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
