"""A hostile or broken upstream: only our own errors and bounded, checked names come out.

Each case is real SSE bytes through the real SDK over the mock transport. Before the first delta
a shape error is ``502 upstream_error``; after it, one ``upstream_error`` line. Nothing the
upstream controls (its error text, a secret quoted in it, an odd ``model``) reaches the client
or the log.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import ClientFactory, openai_settings
from tests.upstream import MODEL, ScriptedStream, Upstream, chunk, stream_reply, usage_chunk

REQUEST: dict[str, Any] = {"messages": [{"role": "user", "content": "Hi"}]}
CANARY = "sk-live-CANARY-0123456789abcdef"


def frames(*payloads: Any) -> list[bytes]:
    out = []
    for payload in payloads:
        text = payload if isinstance(payload, str) else json.dumps(payload)
        out.append(f"data: {text}\n\n".encode())
    return [*out, b"data: [DONE]\n\n"]


def run(client_for: ClientFactory, body: list[bytes]) -> tuple[int, str]:
    upstream = Upstream([stream_reply(ScriptedStream(body))])
    with client_for(upstream, openai_settings(chat_retry_attempts=1)) as client:
        response = client.post("/chat/stream", json=REQUEST)
    return response.status_code, response.text


FIRST = chunk("Hello")
MALFORMED_FIRST: dict[str, Any] = {
    "choices is an object": {"model": MODEL, "choices": {"0": {"delta": {"content": "x"}}}},
    "delta is a string": {"model": MODEL, "choices": [{"index": 0, "delta": "x"}]},
    "content is a number": {"model": MODEL, "choices": [{"index": 0, "delta": {"content": 5}}]},
    "choice is a list": {"model": MODEL, "choices": [["x"]]},
    "not an object": [1, 2, 3],
    "not JSON": "{not json",
    "error with a secret": {"error": {"message": f"bad key {CANARY}", "code": "invalid_api_key"}},
}


@pytest.mark.parametrize("case", sorted(MALFORMED_FIRST))
def test_a_malformed_first_chunk_is_502_upstream_error(
    client_for: ClientFactory, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    status, text = run(client_for, frames(MALFORMED_FIRST[case]))
    assert status == 502
    assert json.loads(text)["error"]["code"] == "upstream_error"
    assert CANARY not in text and CANARY not in caplog.text


@pytest.mark.parametrize("case", sorted(MALFORMED_FIRST))
def test_a_malformed_chunk_after_the_first_is_an_error_line(
    client_for: ClientFactory, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    status, text = run(client_for, frames(FIRST, MALFORMED_FIRST[case]))
    assert status == 200
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[1] == {"delta": {"content": "Hello"}}
    assert lines[-1]["error"]["code"] == "upstream_error"
    assert CANARY not in text and CANARY not in caplog.text


def test_usage_without_total_is_computed(client_for: ClientFactory) -> None:
    usage = usage_chunk(7, 2)
    del usage["usage"]["total_tokens"]
    status, text = run(client_for, frames(FIRST, chunk(finish_reason="stop"), usage))
    assert status == 200
    final = json.loads(text.splitlines()[-1])
    assert final["context"]["usage"] == {
        "prompt_tokens": 7,
        "completion_tokens": 2,
        "total_tokens": 9,
    }


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": "7", "completion_tokens": 2},
        {"prompt_tokens": True, "completion_tokens": 2, "total_tokens": 3},
        {"prompt_tokens": -1, "completion_tokens": 2},
        "lots",
        [1, 2],
    ],
)
def test_malformed_usage_is_dropped_not_fatal(client_for: ClientFactory, usage: Any) -> None:
    final_usage = {**usage_chunk(1, 1), "usage": usage}
    status, text = run(client_for, frames(FIRST, chunk(finish_reason="stop"), final_usage))
    assert status == 200
    final = json.loads(text.splitlines()[-1])
    assert final["context"]["finish_reason"] == "stop"
    assert final["context"]["usage"] is None


@pytest.mark.parametrize(
    "model",
    [{"name": "gpt"}, 42, "x" * 5000, f"gpt-4o {CANARY}", "gpt\n4o", "<script>", ""],
)
def test_an_odd_model_is_replaced_by_the_configured_one(
    client_for: ClientFactory, model: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    body = frames(chunk("Hi", model=model), chunk(finish_reason="stop", model=model))
    status, text = run(client_for, body)
    assert status == 200
    final = json.loads(text.splitlines()[-1])
    assert final["context"]["model"] == "gpt-4.1-mini"
    assert CANARY not in text and CANARY not in caplog.text
    assert "x" * 200 not in caplog.text


@pytest.mark.parametrize("reason", ["x" * 5000, 7, {"a": 1}, "Stop Now", f"stop {CANARY}"])
def test_an_odd_finish_reason_is_replaced(client_for: ClientFactory, reason: Any) -> None:
    status, text = run(client_for, frames(FIRST, chunk(finish_reason=reason)))
    assert status == 200
    final = json.loads(text.splitlines()[-1])
    assert final["context"]["finish_reason"] == "unknown"


def test_a_model_object_in_chat_json_is_replaced(client_for: ClientFactory) -> None:
    upstream = Upstream(
        [
            stream_reply(
                ScriptedStream(frames(chunk("Hi", model={"o": 1}), chunk(finish_reason="stop")))
            )
        ]
    )
    with client_for(upstream, openai_settings()) as client:
        response = client.post("/chat", json=REQUEST)
    assert response.status_code == 200
    assert response.json()["context"]["model"] == MODEL
