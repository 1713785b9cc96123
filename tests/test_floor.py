"""The floor apps of ``make bench-floor`` really proxy: each relays the fake upstream's answer.

``loadtests.bench_floor`` compares chatbackend with these two bare proxies; a floor that did
less work than streaming (say, answered without reading the upstream) would flatter nothing and
mislead everyone, so each is driven here against the real fake upstream over TCP.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx2
import orjson
import pytest

from loadtests import floor
from loadtests.fake_upstream import FakeUpstream


@pytest.mark.anyio
@pytest.mark.parametrize("kind", [floor.RawProxy, floor.SdkProxy])
async def test_a_floor_app_relays_every_token_of_the_upstream(
    fake_upstream: FakeUpstream, kind: type[floor.RawProxy | floor.SdkProxy]
) -> None:
    fake_upstream.configure(tokens=7, ttft=0, itl=0)
    app = kind(fake_upstream.base_url)
    try:
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://floor") as client:
            body = {"messages": [{"role": "user", "content": "Tell me a story."}]}
            response = await client.post("/chat/stream", json=body)
    finally:
        await app.aclose()
    assert response.status_code == 200
    # The upstream counts a stream once its last write returns, a moment after the client has it.
    await _eventually(lambda: fake_upstream.snapshot()["completed"] == 1)
    assert fake_upstream.snapshot()["abandoned"] == 0
    assert response.headers["content-type"] == "application/x-ndjson"
    lines = [orjson.loads(line) for line in response.text.splitlines()]
    text = "".join(line["delta"]["content"] for line in lines)
    # The fake upstream's tokens, in order: what the direct stream would have shown.
    async with httpx2.AsyncClient() as direct:
        raw = await direct.post(
            f"{fake_upstream.base_url}/chat/completions",
            json={"model": "m", "stream": True, **body},
        )
    expected = "".join(
        choice["delta"].get("content") or ""
        for event in raw.text.split("\n\n")
        if event.startswith("data: {")
        for choice in orjson.loads(event[6:])["choices"]
    )
    assert text == expected
    assert len(text) > 0


async def _eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not within the time"
        await asyncio.sleep(0.01)
