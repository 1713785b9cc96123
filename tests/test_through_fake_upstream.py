"""The backend on a real uvicorn server in front of the real fake upstream: no mock anywhere.

This is the production path (the SDK's aiohttp transport over TCP), so these tests prove what
the mocked-transport tests cannot: disconnects reach the upstream's socket, connections are
reused, and saturation is a fast 503 rather than a queue.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx2
import pytest

from chatbackend.app import create_app
from chatbackend.settings import load_settings
from loadtests.fake_upstream import FakeUpstream
from tests.servers import serve

REQUEST: dict[str, Any] = {"messages": [{"role": "user", "content": "Tell me a story"}]}


@pytest.fixture
def upstream(fake_upstream: FakeUpstream) -> FakeUpstream:
    fake_upstream.configure(tokens=5)
    return fake_upstream


def backend(upstream: FakeUpstream, **overrides: Any) -> Any:
    settings = load_settings(
        chat_provider="compatible",
        chat_base_url=upstream.base_url,
        chat_model="fake-model",
        chat_retry_backoff_seconds=0.01,
        **overrides,
    )
    return serve(create_app(settings))


def lines_of(response: httpx2.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.text.splitlines()]


def wait_for(condition: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_stream_carries_every_token_and_the_usage(upstream: FakeUpstream) -> None:
    with backend(upstream) as url:
        response = httpx2.post(f"{url}/chat/stream", json=REQUEST)
    lines = lines_of(response)
    text = "".join(line["delta"].get("content", "") for line in lines)
    assert text == "The quick brown fox jumps"
    context = lines[-1]["context"]
    assert (context["finish_reason"], context["model"]) == ("stop", "fake-model")
    usage = context["usage"]
    assert usage["completion_tokens"] == 5
    assert usage["total_tokens"] == usage["prompt_tokens"] + 5 > 5  # the system prompt counts


def test_chat_json_and_sse_through_the_real_upstream(upstream: FakeUpstream) -> None:
    with backend(upstream) as url:
        answer = httpx2.post(f"{url}/chat", json=REQUEST).json()
        sse = httpx2.post(
            f"{url}/chat/stream", json=REQUEST, headers={"accept": "text/event-stream"}
        ).text
    assert answer["message"]["content"] == "The quick brown fox jumps"
    assert sse.startswith('data: {"delta":{"role":"assistant"}}\n\n')
    assert '"finish_reason":"stop"' in sse


def test_client_disconnect_reaches_the_upstream(upstream: FakeUpstream) -> None:
    upstream.configure(itl=0.05, tokens=400)
    with backend(upstream) as url, httpx2.Client(base_url=url, timeout=10) as client:
        with client.stream("POST", "/chat/stream", json=REQUEST) as response:
            lines = response.iter_lines()
            next(lines), next(lines), next(lines)
        assert wait_for(lambda: upstream.snapshot()["abandoned"] == 1)
    stats = upstream.snapshot()
    assert stats["completed"] == 0
    assert stats["abandoned_after"][0] < 100


def test_connections_are_reused_across_streams(upstream: FakeUpstream) -> None:
    concurrency = 20
    with backend(upstream) as url:
        for _ in range(3):
            threads = [
                threading.Thread(
                    target=httpx2.post, args=(f"{url}/chat/stream",), kwargs={"json": REQUEST}
                )
                for _ in range(concurrency)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    stats = upstream.snapshot()
    assert stats["completed"] == 3 * concurrency
    assert stats["connections"] <= concurrency


def test_rate_limit_beyond_the_budget_is_a_429_with_retry_after(upstream: FakeUpstream) -> None:
    upstream.queue(fault="rate_limit", retry_after=30)
    with backend(upstream) as url:
        response = httpx2.post(f"{url}/chat/stream", json=REQUEST)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "30"
    assert response.json()["error"]["code"] == "rate_limited"


def test_a_server_error_is_retried(upstream: FakeUpstream) -> None:
    upstream.queue(fault="server_error")
    with backend(upstream) as url:
        response = httpx2.post(f"{url}/chat/stream", json=REQUEST)
    assert response.status_code == 200
    assert upstream.snapshot()["requests"] == 2


def test_content_filter_refusal_is_a_400(upstream: FakeUpstream) -> None:
    upstream.queue(fault="content_filter")
    with backend(upstream) as url:
        response = httpx2.post(f"{url}/chat/stream", json=REQUEST)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "content_filter"


def test_hang_is_a_504_and_the_upstream_request_is_abandoned(upstream: FakeUpstream) -> None:
    upstream.configure(fault="hang")
    with backend(upstream, chat_first_token_timeout=0.3, chat_retry_attempts=1) as url:
        response = httpx2.post(f"{url}/chat/stream", json=REQUEST)
        assert response.status_code == 504
        assert wait_for(lambda: upstream.snapshot()["abandoned"] == 1)


def test_drop_mid_stream_ends_with_an_error_line(upstream: FakeUpstream) -> None:
    upstream.queue(fault="drop", drop_after=2)
    with backend(upstream) as url:
        response = httpx2.post(f"{url}/chat/stream", json=REQUEST)
    lines = lines_of(response)
    assert "".join(line.get("delta", {}).get("content", "") for line in lines) == "The quick"
    assert lines[-1] == {
        "error": {
            "code": "upstream_incomplete",
            "message": "The model provider ended the answer before it was complete.",
        }
    }


def test_trickled_stream_is_reassembled(upstream: FakeUpstream) -> None:
    upstream.queue(fault="trickle", trickle_bytes=5)
    with backend(upstream) as url:
        response = httpx2.post(f"{url}/chat/stream", json=REQUEST)
    text = "".join(line["delta"].get("content", "") for line in lines_of(response))
    assert text == "The quick brown fox jumps"


def test_past_the_stream_limit_the_answer_is_an_immediate_503(upstream: FakeUpstream) -> None:
    upstream.configure(itl=0.05, tokens=40)
    with backend(upstream, chat_max_streams=2) as url, httpx2.Client(base_url=url) as client:
        with (
            client.stream("POST", "/chat/stream", json=REQUEST) as first,
            client.stream("POST", "/chat/stream", json=REQUEST) as second,
        ):
            assert first.status_code == second.status_code == 200
            started = time.monotonic()
            refused = client.post("/chat/stream", json=REQUEST)
            refused_after = time.monotonic() - started
            first.read(), second.read()
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["error"]["code"] == "overloaded"
        assert refused_after < 1.0  # not queued behind the two 2-second answers
        assert client.post("/chat/stream", json=REQUEST).status_code == 200  # slots came back
