"""The response cache under a real uvicorn server, in front of the real fake upstream.

A hit is the miss's bytes again (NDJSON, SSE and JSON), the upstream is not called for it, and
only complete answers to deterministic requests (temperature 0 or a seed) are ever stored.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest

from chatbackend.app import create_app
from chatbackend.settings import load_settings
from loadtests.fake_upstream import FakeUpstream
from tests.databases import sqlite_url
from tests.servers import serve
from tests.test_api_keys import add_key

MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]
DETERMINISTIC = {"messages": MESSAGES, "context": {"overrides": {"temperature": 0}}}
SEEDED = {"messages": MESSAGES, "context": {"overrides": {"seed": 7, "temperature": 0.7}}}


@contextmanager
def backends(
    upstream: FakeUpstream, count: int = 1, **overrides: Any
) -> Iterator[list[httpx2.Client]]:
    values: dict[str, Any] = {
        "chat_provider": "compatible",
        "chat_base_url": upstream.base_url,
        "chat_model": "fake-model",
        "chat_retry_attempts": 1,
        "chat_cache_ttl_seconds": 60,
        **overrides,
    }
    with ExitStack() as stack:
        clients = []
        for _ in range(count):
            url = stack.enter_context(serve(create_app(load_settings(**values))))
            clients.append(stack.enter_context(httpx2.Client(base_url=url, timeout=30)))
        yield clients


@contextmanager
def backend(upstream: FakeUpstream, **overrides: Any) -> Iterator[httpx2.Client]:
    with backends(upstream, **overrides) as (client,):
        yield client


@pytest.mark.parametrize("accept", ["application/x-ndjson", "text/event-stream"])
def test_a_hit_replays_the_streams_bytes(fake_upstream: FakeUpstream, accept: str) -> None:
    fake_upstream.configure(tokens=5, itl=0.01)
    body = {**DETERMINISTIC, "sessionState": {"conversation": "42"}}
    with backend(fake_upstream) as client:
        miss = client.post("/chat/stream", json=body, headers={"accept": accept})
        hit = client.post("/chat/stream", json=body, headers={"accept": accept})
    assert (miss.status_code, hit.status_code) == (200, 200)
    assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("miss", "hit")
    assert hit.headers["content-type"] == miss.headers["content-type"]
    assert hit.content == miss.content
    assert miss.content.count(b'"content":') == 5  # five text lines, replayed as five lines
    assert b'"sessionState":{"conversation":"42"}' in hit.content
    assert fake_upstream.snapshot()["requests"] == 1


def test_a_hit_replays_the_json_answer(fake_upstream: FakeUpstream) -> None:
    with backend(fake_upstream) as client:
        miss = client.post("/chat", json=SEEDED)
        hit = client.post("/chat", json=SEEDED)
        stream_hit = client.post("/chat/stream", json=SEEDED)
    assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("miss", "hit")
    assert hit.content == miss.content
    assert miss.json()["message"]["content"]
    # /chat and /chat/stream share entries: the answer is the same, only the wire differs.
    assert stream_hit.headers["x-cache"] == "hit"
    assert fake_upstream.snapshot()["requests"] == 1


def test_a_request_that_is_not_deterministic_is_never_cached(fake_upstream: FakeUpstream) -> None:
    body = {"messages": MESSAGES, "context": {"overrides": {"temperature": 0.7}}}
    with backend(fake_upstream) as client:
        first = client.post("/chat/stream", json=body)
        second = client.post("/chat/stream", json=body)
        plain = [client.post("/chat", json={"messages": MESSAGES}) for _ in range(2)]
    assert [r.headers["x-cache"] for r in (first, second, *plain)] == ["miss"] * 4
    assert fake_upstream.snapshot()["requests"] == 4


def test_everything_that_changes_the_answer_is_in_the_key(fake_upstream: FakeUpstream) -> None:
    variants = [
        DETERMINISTIC,
        {**DETERMINISTIC, "messages": [{"role": "user", "content": "And of Italy?"}]},
        {"messages": MESSAGES, "context": {"overrides": {"temperature": 0, "max_tokens": 3}}},
        {"messages": MESSAGES, "context": {"overrides": {"temperature": 0, "tools": []}}},
        {"messages": MESSAGES, "context": {"overrides": {"temperature": 0, "stop": "END"}}},
        SEEDED,
    ]
    with backend(fake_upstream) as client:
        first = [client.post("/chat", json=v).headers["x-cache"] for v in variants]
        again = [client.post("/chat", json=v).headers["x-cache"] for v in variants]
    assert first == ["miss"] * len(variants)
    assert again == ["hit"] * len(variants)


def test_entries_expire_after_the_ttl(fake_upstream: FakeUpstream) -> None:
    with backend(fake_upstream, chat_cache_ttl_seconds=0.5) as client:
        first = client.post("/chat", json=DETERMINISTIC)
        hit = client.post("/chat", json=DETERMINISTIC)
        time.sleep(0.7)
        expired = client.post("/chat", json=DETERMINISTIC)
    assert [r.headers["x-cache"] for r in (first, hit, expired)] == ["miss", "hit", "miss"]
    assert fake_upstream.snapshot()["requests"] == 2


def test_the_memory_cache_keeps_at_most_its_entries(fake_upstream: FakeUpstream) -> None:
    bodies = [{**DETERMINISTIC, "messages": [{"role": "user", "content": f"Q{i}"}]} for i in "abc"]
    with backend(fake_upstream, chat_cache_max_entries=2) as client:
        for body in bodies:
            client.post("/chat", json=body)
        # "a" was the least recently used of three: it is gone; "c" is still there.
        assert client.post("/chat", json=bodies[2]).headers["x-cache"] == "hit"
        assert client.post("/chat", json=bodies[0]).headers["x-cache"] == "miss"


def test_failed_and_cut_short_answers_are_not_cached(fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(count=1, fault="server_error")
    fake_upstream.queue(count=1, fault="drop", drop_after=1)
    with backend(fake_upstream) as client:
        failed = client.post("/chat", json=DETERMINISTIC)
        cut = client.post("/chat/stream", json=DETERMINISTIC)
        answered = client.post("/chat/stream", json=DETERMINISTIC)
        hit = client.post("/chat/stream", json=DETERMINISTIC)
    assert failed.status_code == 502
    assert b"upstream_incomplete" in cut.content
    assert (cut.headers["x-cache"], answered.headers["x-cache"]) == ("miss", "miss")
    assert hit.headers["x-cache"] == "hit"
    assert hit.content == answered.content


def test_two_servers_share_the_redis_cache(fake_upstream: FakeUpstream, redis_url: str) -> None:
    with backends(fake_upstream, 2, redis_url=redis_url) as (first, second):
        miss = first.post("/chat/stream", json=DETERMINISTIC)
        hit = second.post("/chat/stream", json=DETERMINISTIC)
        json_hit = second.post("/chat", json=DETERMINISTIC)
    assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("miss", "hit")
    assert hit.content == miss.content
    assert json_hit.headers["x-cache"] == "hit"
    assert fake_upstream.snapshot()["requests"] == 1


def test_redis_entries_expire_after_the_ttl(fake_upstream: FakeUpstream, redis_url: str) -> None:
    with backend(fake_upstream, redis_url=redis_url, chat_cache_ttl_seconds=0.5) as client:
        first = client.post("/chat", json=DETERMINISTIC)
        hit = client.post("/chat", json=DETERMINISTIC)
        time.sleep(0.7)
        expired = client.post("/chat", json=DETERMINISTIC)
    assert [r.headers["x-cache"] for r in (first, hit, expired)] == ["miss", "hit", "miss"]


def test_with_the_cache_off_there_is_no_header(fake_upstream: FakeUpstream) -> None:
    with backend(fake_upstream, chat_cache_ttl_seconds=None) as client:
        responses = [client.post("/chat/stream", json=DETERMINISTIC) for _ in range(2)]
    assert all("x-cache" not in r.headers for r in responses)
    assert fake_upstream.snapshot()["requests"] == 2


def test_batch_items_use_the_cache(fake_upstream: FakeUpstream) -> None:
    item = {"id": "a", **DETERMINISTIC}
    with backend(fake_upstream) as client:
        client.post("/chat", json=DETERMINISTIC)
        results = client.post("/batch", json={"items": [item]}).json()["items"]
    assert results[0]["message"]["content"]
    assert fake_upstream.snapshot()["requests"] == 1


def test_entries_do_not_cross_api_keys(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    database_url = sqlite_url(tmp_path)
    alice, bob = add_key(database_url, "alice").key, add_key(database_url, "bob").key
    with backend(fake_upstream, auth_mode="api-key", database_url=database_url) as client:

        def ask(key: str) -> str:
            headers = {"Authorization": f"Bearer {key}"}
            return client.post("/chat", json=DETERMINISTIC, headers=headers).headers["x-cache"]

        assert [ask(alice), ask(alice), ask(bob), ask(bob)] == ["miss", "hit", "miss", "hit"]
    assert fake_upstream.snapshot()["requests"] == 2
