"""The whole tool loop on real servers: the backend under uvicorn in front of the fake upstream,
which scripts the model's tool calls; and the embedded model, which offers no tools."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import httpx2
import pytest

from chatbackend.app import create_app
from chatbackend.settings import load_settings
from loadtests.fake_upstream import FakeUpstream
from tests.servers import serve

REQUEST: dict[str, Any] = {
    "messages": [{"role": "user", "content": "What is 17 times 3 over 4, and the time in Paris?"}]
}


def backend(upstream: FakeUpstream, **overrides: Any) -> Any:
    settings = load_settings(
        chat_provider="compatible",
        chat_base_url=upstream.base_url,
        chat_model="fake-model",
        **overrides,
    )
    return serve(create_app(settings))


def events(response: httpx2.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.text.splitlines()]


def contexts(lines: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return [line["context"][key] for line in lines if key in line.get("context", {})]


def test_the_whole_loop_through_the_fake_upstream(fake_upstream: FakeUpstream) -> None:
    fake_upstream.configure(tool_calls="calculate,get_current_time", tokens=3)
    with backend(fake_upstream) as url, httpx2.Client(base_url=url, timeout=30) as client:
        response = client.post("/chat/stream", json=REQUEST)
    assert response.status_code == 200
    lines = events(response)
    calls = contexts(lines, "tool_call")
    assert [(c["id"], c["name"]) for c in calls] == [
        ("call_fake_0_0", "calculate"),
        ("call_fake_0_1", "get_current_time"),
    ]
    results = contexts(lines, "tool_result")
    assert results[0] == {"id": "call_fake_0_0", "name": "calculate", "content": "12.75"}
    paris = json.loads(results[1]["content"])
    assert paris["timezone"] == "Europe/Paris"
    now = dt.datetime.fromisoformat(paris["datetime"])
    assert abs((now - dt.datetime.now(dt.UTC)).total_seconds()) < 30
    # the fake's answer quotes what it was sent: the results reached the model
    text = "".join(line["delta"].get("content", "") for line in lines)
    assert text.startswith(f"Results: 12.75 | {results[1]['content']}.")
    final = lines[-1]["context"]
    assert final["finish_reason"] == "stop"
    stats = fake_upstream.snapshot()
    assert (stats["requests"], stats["completed"], stats["abandoned"]) == (2, 2, 0)
    assert final["usage"]["completion_tokens"] > 3  # both calls' tokens


def test_rounds_and_the_limit_through_the_fake_upstream(fake_upstream: FakeUpstream) -> None:
    fake_upstream.configure(tool_calls="calculate", tool_rounds=5, tokens=2)
    with backend(fake_upstream, chat_max_tool_rounds=2) as url:
        with httpx2.Client(base_url=url, timeout=30) as client:
            response = client.post("/chat", json=REQUEST)
    assert response.status_code == 200
    answer = response.json()
    assert [c["id"] for c in answer["context"]["tool_calls"]] == ["call_fake_0_0", "call_fake_1_0"]
    assert answer["message"]["content"].startswith("Results: 12.75 | 12.75.")
    assert answer["context"]["finish_reason"] == "stop"
    assert fake_upstream.snapshot()["requests"] == 3  # two rounds, then tool_choice "none"


@pytest.fixture(scope="module")
def local_url() -> Any:
    with serve(create_app(load_settings(chat_provider="local", local_model_path=None))) as url:
        yield url


def test_the_embedded_model_refuses_named_tools(local_url: str) -> None:
    named = {**REQUEST, "context": {"overrides": {"tools": ["calculate"]}}}
    with httpx2.Client(base_url=local_url, timeout=60) as client:
        refused = client.post("/chat/stream", json=named)
        plain = client.post(
            "/chat",
            json={**REQUEST, "context": {"overrides": {"max_tokens": 3, "tool_choice": "none"}}},
        )
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "tools_unsupported"
    assert plain.status_code == 200
    assert "tool_calls" not in plain.json()["context"]
