"""``POST /batch`` under a real uvicorn server, in front of the real fake upstream.

An item's answer length is its own ``max_tokens`` (the fake upstream writes that many words), so
each result can be told apart and, with paced tokens, items finish in a known order.
"""

from __future__ import annotations

import gc
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
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

NDJSON = {"accept": "application/x-ndjson"}


def item(id: str, tokens: int, **overrides: Any) -> dict[str, Any]:
    return {
        "id": id,
        "messages": [{"role": "user", "content": f"Question {id}"}],
        "context": {"overrides": {"max_tokens": tokens, **overrides}},
    }


@contextmanager
def backend(upstream: FakeUpstream, **overrides: Any) -> Iterator[httpx2.Client]:
    settings = load_settings(
        chat_provider="compatible",
        chat_base_url=upstream.base_url,
        chat_model="fake-model",
        chat_retry_attempts=1,
        **overrides,
    )
    with serve(create_app(settings)) as url, httpx2.Client(base_url=url, timeout=30) as client:
        yield client


def words(result: dict[str, Any]) -> int:
    return len(result["message"]["content"].split())


def wait_for(condition: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_json_results_come_in_item_order(fake_upstream: FakeUpstream) -> None:
    fake_upstream.configure(itl=0.05)
    body = {"items": [item("slow", 6), item("fast", 1), item("middle", 3)]}
    with backend(fake_upstream) as client:
        response = client.post("/batch", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    results = response.json()["items"]
    assert [r["id"] for r in results] == ["slow", "fast", "middle"]
    assert [words(r) for r in results] == [6, 1, 3]
    assert results[0]["context"]["model"] == "fake-model"
    assert results[0]["context"]["usage"]["completion_tokens"] == 6
    assert set(results[0]) == {"id", "message", "context"}


def test_ndjson_lines_are_sent_as_items_finish(fake_upstream: FakeUpstream) -> None:
    fake_upstream.configure(itl=0.2)
    body = {"items": [item("slow", 8), item("fast", 1), item("middle", 4)]}
    with backend(fake_upstream) as client:
        with client.stream("POST", "/batch", json=body, headers=NDJSON) as response:
            assert response.headers["content-type"] == "application/x-ndjson"
            lines = response.iter_lines()
            first = json.loads(next(lines))
            # The first result is on the wire while the others are still being written.
            # (the fast one's stream may not be counted yet: the server counts after its write)
            completed_then = fake_upstream.snapshot()["completed"]
            rest = [json.loads(line) for line in lines if line]
    assert first["id"] == "fast" and words(first) == 1
    assert completed_then <= 1
    assert [r["id"] for r in rest] == ["middle", "slow"]
    assert [words(r) for r in rest] == [4, 8]


def test_a_failed_item_does_not_fail_the_batch(fake_upstream: FakeUpstream) -> None:
    # One item at a time, so the upstream's queued fault meets the second item.
    fake_upstream.queue(count=1)
    fake_upstream.queue(count=1, fault="server_error")
    body = {"items": [item("a", 2), item("b", 2), item("c", 2)]}
    with backend(fake_upstream, batch_concurrency=1) as client:
        response = client.post("/batch", json=body)
    assert response.status_code == 200
    a, b, c = response.json()["items"]
    assert words(a) == words(c) == 2
    assert b == {
        "id": "b",
        "error": {"code": "upstream_error", "message": "The model provider failed to answer."},
    }


def test_no_more_than_batch_concurrency_items_reach_the_upstream(
    fake_upstream: FakeUpstream,
) -> None:
    fake_upstream.configure(ttft=0.3)
    body = {"items": [item(str(i), 1) for i in range(9)]}
    with backend(fake_upstream, batch_concurrency=3) as client:
        started = time.monotonic()
        response = client.post("/batch", json=body)
        elapsed = time.monotonic() - started
    assert [words(r) for r in response.json()["items"]] == [1] * 9
    stats = fake_upstream.snapshot()
    assert 2 <= stats["max_in_flight"] <= 3  # (3 but on a machine too busy to start them at once)
    assert stats["completed"] == 9
    assert elapsed >= 0.9  # three rounds of three


def test_one_callers_simultaneous_batches_share_the_bound(fake_upstream: FakeUpstream) -> None:
    fake_upstream.configure(ttft=0.3)
    body = {"items": [item(str(i), 1) for i in range(6)]}
    statuses: list[int] = []
    with backend(fake_upstream, batch_concurrency=3) as client:

        def post() -> None:
            statuses.append(client.post("/batch", json=body).status_code)

        threads = [threading.Thread(target=post) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert statuses == [200, 200]
    stats = fake_upstream.snapshot()
    assert stats["completed"] == 12
    assert stats["max_in_flight"] <= 3


def test_a_client_that_goes_away_cancels_every_item(fake_upstream: FakeUpstream) -> None:
    fake_upstream.configure(itl=0.2, tokens=50)
    body = {"items": [item("done", 1), *(item(f"long{i}", 50) for i in range(4))]}

    def one_done_four_running() -> bool:
        stats = fake_upstream.snapshot()
        return stats["completed"] == 1 and stats["in_flight"] == 4

    with backend(fake_upstream) as client:
        with client.stream("POST", "/batch", json=body, headers=NDJSON) as response:
            # The line iterator is kept: a discarded one, once the garbage collector finalises
            # it, closes the connection (the client going away early, at a random moment).
            lines = response.iter_lines()
            assert json.loads(next(lines))["id"] == "done"
            gc.collect()  # so the test does not depend on when a collection happens
            assert wait_for(one_done_four_running), fake_upstream.snapshot()
        assert wait_for(lambda: fake_upstream.snapshot()["in_flight"] == 0)
        assert fake_upstream.snapshot()["abandoned"] == 4
        assert client.get("/health/live").status_code == 200


def test_a_client_that_goes_away_cancels_a_json_batch(fake_upstream: FakeUpstream) -> None:
    fake_upstream.configure(itl=0.2, tokens=50)
    body = {"items": [item(f"long{i}", 50) for i in range(4)]}
    with backend(fake_upstream) as client:
        # The JSON body comes when every item is done: the client gives up before that.
        with pytest.raises(httpx2.ReadTimeout):
            client.post("/batch", json=body, timeout=1.0)
        assert wait_for(lambda: fake_upstream.snapshot()["in_flight"] == 0)
        stats = fake_upstream.snapshot()
        assert (stats["abandoned"], stats["completed"]) == (4, 0)


def test_every_item_is_a_request_for_the_rate_limiter(fake_upstream: FakeUpstream) -> None:
    body = {"items": [item(str(i), 1) for i in range(5)]}
    with backend(fake_upstream, rate_limit_requests_per_minute=4) as client:
        response = client.post("/batch", json=body)
        refused = client.post("/batch", json=body)
    # The batch itself is one request; its first three items take the rest of the window.
    results = response.json()["items"]
    codes = sorted(r["error"]["code"] if "error" in r else "answered" for r in results)
    assert codes == ["answered"] * 3 + ["rate_limited"] * 2
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert fake_upstream.snapshot()["requests"] == 3


def test_every_items_tokens_are_counted(fake_upstream: FakeUpstream) -> None:
    body = {"items": [item(str(i), i + 1) for i in range(3)]}
    with backend(fake_upstream, rate_limit_tokens_per_minute=10_000) as client:
        results = client.post("/batch", json=body).json()["items"]
        after = client.post("/chat", json={"messages": [{"role": "user", "content": "Hi"}]})
    spent = sum(r["context"]["usage"]["total_tokens"] for r in results)
    assert spent > 0
    assert int(after.headers["ratelimit-remaining"]) == 10_000 - spent


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"items": []}, "items: List should have at least 1 item after validation, not 0"),
        (
            {"items": [item("a", 1), item("b", 1), item("a", 1)]},
            "items: the id of items[2] repeats the id of items[0]",
        ),
        (
            {"items": [item("a", 1), {"id": "b", "messages": [{"role": "x", "content": "y"}]}]},
            "items[1].messages[0].role: Input should be 'user', 'assistant' or 'system'",
        ),
        ({"items": [item("a", 1), item("b", 1, tools=["nope"])]}, "items[1].context.overrides"),
        ({"items": [item(str(i), 1) for i in range(101)]}, "items: List should have at most 100"),
    ],
)
def test_an_invalid_item_refuses_the_whole_batch(
    fake_upstream: FakeUpstream, body: dict[str, Any], message: str
) -> None:
    with backend(fake_upstream) as client:
        response = client.post("/batch", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"
    assert response.json()["error"]["message"].startswith(message)
    assert fake_upstream.snapshot()["requests"] == 0


def test_the_bound_is_per_api_key(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    database_url = sqlite_url(tmp_path)
    keys = [add_key(database_url, name).key for name in ("alice", "bob")]
    fake_upstream.configure(ttft=0.3)
    body = {"items": [item(str(i), 1) for i in range(6)]}
    statuses: list[int] = []
    with backend(
        fake_upstream, batch_concurrency=3, auth_mode="api-key", database_url=database_url
    ) as client:

        def post(key: str) -> None:
            headers = {"Authorization": f"Bearer {key}"}
            statuses.append(client.post("/batch", json=body, headers=headers).status_code)

        threads = [threading.Thread(target=post, args=(key,)) for key in keys]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        unauthorized = client.post("/batch", json=body)
    assert statuses == [200, 200]
    assert 3 < fake_upstream.snapshot()["max_in_flight"] <= 6  # three per key
    assert unauthorized.status_code == 401
