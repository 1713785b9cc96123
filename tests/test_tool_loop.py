"""The tool loop end to end: real OpenAI/Azure tool-call bytes in, exact NDJSON, SSE and JSON out.

The upstream is the real SDK over a mock transport; the tools are real tools run by the server.
``get_current_time`` is replaced by one with a fixed clock so the snapshots are stable.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient
from pytest_snapshot.plugin import Snapshot

from chatbackend.app import create_app
from chatbackend.settings import Settings, SettingsError
from chatbackend.tools import BUILTIN_TOOLS, Tool, ToolError, tool
from chatbackend.tools.builtin import calculate
from tests.conftest import azure_settings, openai_settings
from tests.servers import serve
from tests.tool_streams import frames, tool_call_chunks
from tests.upstream import (
    ScriptedStream,
    Upstream,
    azure_stream,
    chunks_reply,
    error_reply,
    openai_stream,
    stream_reply,
)

REQUEST: dict[str, Any] = {
    "messages": [{"role": "user", "content": "What time is it in Paris, and what is 17*3/4?"}],
    "sessionState": {"conversation": "42"},
}
SSE = {"accept": "text/event-stream"}


@tool(name="get_current_time")
async def fixed_clock(timezone: str = "UTC") -> dict[str, str]:
    """Get the current date and time in a time zone."""
    offsets = {"Europe/Paris": "+01:00", "Asia/Tokyo": "+09:00"}
    return {"timezone": timezone, "datetime": f"2026-12-01T21:00:00{offsets.get(timezone, '')}"}


@tool
async def broken(reason: str) -> str:
    """Always fails."""
    if reason == "tool":
        raise ToolError("the inventory service is down")
    raise RuntimeError(f"connection string Password={reason}")


@tool
async def slow(seconds: float) -> str:
    """Sleeps."""
    await asyncio.sleep(seconds)
    return "done"


TOOLS: list[Tool] = [fixed_clock, calculate, broken, slow]


@contextmanager
def client(upstream: Upstream, settings: Settings | None = None) -> Iterator[TestClient]:
    app = create_app(settings or openai_settings(), transport=upstream.transport, tools=TOOLS)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def replies(*streams: list[bytes]) -> Upstream:
    return Upstream([stream_reply(ScriptedStream(f)) for f in streams])


def body(upstream: Upstream, index: int) -> dict[str, Any]:
    return json.loads(upstream.requests[index].content)  # type: ignore[no-any-return]


def lines(response: httpx2.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.text.splitlines()]


def conversation(upstream: Upstream, index: int) -> str:
    """The messages (without the system prompt) and tool settings of one upstream request."""
    sent = body(upstream, index)
    shown = {k: sent[k] for k in ("tool_choice",) if k in sent}
    shown["tools"] = [t["function"]["name"] for t in sent.get("tools", [])]
    shown["messages"] = sent["messages"][1:]
    return json.dumps(shown, indent=2) + "\n"


def text_frames(*parts: str) -> list[bytes]:
    from tests.upstream import sse_bytes

    return sse_bytes(openai_stream(*parts))


# -- exact bytes ----------------------------------------------------------------------------------
@pytest.mark.parametrize("accept", ["ndjson", "sse"])
def test_openai_parallel_calls_then_the_answer(accept: str, snapshot: Snapshot) -> None:
    upstream = replies(frames("openai_two_calls"), text_frames("At 21:00 in Paris; ", "12.75."))
    with client(upstream) as test_client:
        headers = SSE if accept == "sse" else {}
        response = test_client.post("/chat/stream", json=REQUEST, headers=headers)
    assert response.status_code == 200
    snapshot.assert_match(response.text, f"response.{accept}")
    snapshot.assert_match(conversation(upstream, 1), "second_request.json")
    assert len(upstream.requests) == 2


def test_azure_parallel_calls_then_the_answer(snapshot: Snapshot) -> None:
    answer = [b"data: " + json.dumps(c).encode() + b"\n\n" for c in azure_stream("Done.")]
    upstream = replies(frames("azure_two_calls"), [*answer, b"data: [DONE]\n\n"])
    with client(upstream, azure_settings()) as test_client:
        response = test_client.post("/chat/stream", json=REQUEST)
    snapshot.assert_match(response.text, "response.ndjson")
    snapshot.assert_match(conversation(upstream, 1), "second_request.json")


@pytest.mark.parametrize("size", [1, 13])
def test_fragments_cut_anywhere_assemble_the_same(size: int) -> None:
    upstream = replies(frames("openai_two_calls", size=size), text_frames("ok"))
    with client(upstream) as test_client:
        response = test_client.post("/chat/stream", json=REQUEST)
    calls = [
        line["context"]["tool_call"]
        for line in lines(response)
        if "tool_call" in line.get("context", {})
    ]
    assert [(c["name"], json.loads(c["arguments"])) for c in calls] == [
        ("get_current_time", {"timezone": "Europe/Paris"}),
        ("calculate", {"expression": "(17 * 3) / 4"}),
    ]


def test_chat_json_lists_the_tool_calls(snapshot: Snapshot) -> None:
    upstream = replies(frames("openai_two_calls"), text_frames("At 21:00 in Paris; ", "12.75."))
    with client(upstream) as test_client:
        response = test_client.post("/chat", json=REQUEST)
    assert response.status_code == 200
    snapshot.assert_match(json.dumps(response.json(), indent=2) + "\n", "response.json")


def test_the_builtin_tools_are_offered_upstream(snapshot: Snapshot) -> None:
    upstream = replies(text_frames("Hello."))
    app = create_app(openai_settings(), transport=upstream.transport)
    with TestClient(app) as test_client:
        test_client.post("/chat/stream", json=REQUEST)
    sent = body(upstream, 0)
    assert [t["function"]["name"] for t in sent["tools"]] == [t.name for t in BUILTIN_TOOLS]
    snapshot.assert_match(json.dumps(sent["tools"], indent=2) + "\n", "tools.json")
    assert "tool_choice" not in sent


# -- rounds, usage, limits ------------------------------------------------------------------------
def test_a_second_round_and_usage_summed_over_every_call() -> None:
    first = tool_call_chunks(("call_1", "calculate", '{"expression": "2 ** 10"}'), prompt=40)
    second = tool_call_chunks(("call_2", "calculate", '{"expression": "1024 / 4"}'), prompt=60)
    upstream = Upstream(
        [chunks_reply(first), chunks_reply(second), chunks_reply(openai_stream("It is 256."))]
    )
    with client(upstream) as test_client:
        response = test_client.post("/chat/stream", json=REQUEST)
    events = lines(response)
    results = [e["context"]["tool_result"] for e in events if "tool_result" in e.get("context", {})]
    assert results == [
        {"id": "call_1", "name": "calculate", "content": "1024"},
        {"id": "call_2", "name": "calculate", "content": "256"},
    ]
    assert events[-1]["context"]["finish_reason"] == "stop"
    # 40 + 60 + 25 prompt tokens, 10 + 10 + 1 completion tokens
    assert events[-1]["context"]["usage"] == {
        "prompt_tokens": 125,
        "completion_tokens": 21,
        "total_tokens": 146,
    }
    third = body(upstream, 2)["messages"]
    assert [m["role"] for m in third[1:]] == ["user", "assistant", "tool", "assistant", "tool"]
    assert third[-1] == {"role": "tool", "tool_call_id": "call_2", "content": "256"}


def test_after_the_last_round_the_model_must_answer() -> None:
    ask = tool_call_chunks(("call_1", "calculate", '{"expression": "1 + 1"}'))
    upstream = Upstream([chunks_reply(ask), chunks_reply(openai_stream("Two."))])
    with client(upstream, openai_settings(chat_max_tool_rounds=1)) as test_client:
        response = test_client.post("/chat/stream", json=REQUEST)
    assert body(upstream, 0).get("tool_choice") is None
    assert body(upstream, 1)["tool_choice"] == "none"
    assert lines(response)[-1]["context"]["finish_reason"] == "stop"


def test_a_model_that_asks_again_after_the_limit_ends_the_answer() -> None:
    ask = tool_call_chunks(("call_1", "calculate", '{"expression": "1 + 1"}'))
    again = tool_call_chunks(("call_2", "calculate", '{"expression": "2 + 2"}'))
    upstream = Upstream([chunks_reply(ask), chunks_reply(again), chunks_reply(openai_stream("x"))])
    with client(upstream, openai_settings(chat_max_tool_rounds=1)) as test_client:
        response = test_client.post("/chat/stream", json=REQUEST)
    events = lines(response)
    assert len(upstream.requests) == 2  # the second call's tool calls were not run
    assert [
        e["context"]["tool_result"]["id"] for e in events if "tool_result" in e.get("context", {})
    ] == ["call_1"]
    assert events[-1]["context"]["finish_reason"] == "tool_calls"


# -- failures become tool errors fed back to the model --------------------------------------------
@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (("c1", "broken", '{"reason": "hunter2"}'), "tool_failed", "the tool failed"),
        (("c1", "broken", '{"reason": "tool"}'), "tool_error", "the inventory service is down"),
        (("c1", "slow", '{"seconds": 30}'), "tool_timeout", "the tool did not finish in 0.2 s"),
        (
            ("c1", "calculate", '{"expression": 42}'),
            "invalid_arguments",
            "invalid arguments: expression: Input should be a valid string",
        ),
        (
            ("c1", "calculate", '{"expression": "1 +'),
            "invalid_arguments",
            "invalid arguments: Invalid JSON: EOF while parsing a string at line 1 column 19",
        ),
        (
            ("c1", "search_web", '{"q": "x"}'),
            "unknown_tool",
            "there is no tool named 'search_web'; the tools are: get_current_time, calculate, "
            "broken, slow",
        ),
    ],
)
def test_tool_failures_are_fed_back_to_the_model(
    call: tuple[str, str, str], error: str, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    upstream = Upstream(
        [chunks_reply(tool_call_chunks(call)), chunks_reply(openai_stream("Sorry."))]
    )
    with client(upstream, openai_settings(chat_tool_timeout=0.2)) as test_client:
        response = test_client.post("/chat/stream", json=REQUEST)
    assert response.status_code == 200
    events = lines(response)
    result = next(
        e["context"]["tool_result"] for e in events if "tool_result" in e.get("context", {})
    )
    assert result == {"id": "c1", "name": call[1], "error": {"code": error, "message": message}}
    assert body(upstream, 1)["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "c1",
        "content": json.dumps({"error": message}, separators=(",", ":")),
    }
    assert events[-1]["context"]["finish_reason"] == "stop"
    assert "hunter2" not in caplog.text


# -- what a request may choose --------------------------------------------------------------------
def test_overrides_narrow_the_tools_or_turn_them_off() -> None:
    upstream = replies(text_frames("a"), text_frames("b"))
    with client(upstream) as test_client:
        narrowed = {**REQUEST, "context": {"overrides": {"tools": ["calculate"]}}}
        assert test_client.post("/chat", json=narrowed).status_code == 200
        off = {**REQUEST, "context": {"overrides": {"tool_choice": "none"}}}
        assert test_client.post("/chat", json=off).status_code == 200
        unknown = {**REQUEST, "context": {"overrides": {"tools": ["calculate", "rm_rf"]}}}
        response = test_client.post("/chat", json=unknown)
    assert [t["function"]["name"] for t in body(upstream, 0)["tools"]] == ["calculate"]
    assert "tools" not in body(upstream, 1) and "tool_choice" not in body(upstream, 1)
    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "code": "invalid_request",
            "message": "context.overrides.tools: unknown tool rm_rf; the tools are: "
            "get_current_time, calculate, broken, slow",
        }
    }


def test_a_narrowed_request_cannot_run_the_other_tools() -> None:
    ask = tool_call_chunks(("c1", "slow", '{"seconds": 0}'))
    upstream = Upstream([chunks_reply(ask), chunks_reply(openai_stream("ok"))])
    with client(upstream) as test_client:
        request = {**REQUEST, "context": {"overrides": {"tools": ["calculate"]}}}
        events = lines(test_client.post("/chat/stream", json=request))
    result = next(
        e["context"]["tool_result"] for e in events if "tool_result" in e.get("context", {})
    )
    assert result["error"]["code"] == "unknown_tool"


def test_chat_tools_selects_and_refuses_unknown_names() -> None:
    upstream = replies(text_frames("a"))
    with client(upstream, openai_settings(chat_tools=["slow"])) as test_client:
        test_client.post("/chat", json=REQUEST)
    assert [t["function"]["name"] for t in body(upstream, 0)["tools"]] == ["slow"]
    with pytest.raises(SettingsError, match="CHAT_TOOLS: unknown tool nope"):
        create_app(openai_settings(chat_tools=["nope"]), transport=upstream.transport)
    upstream = replies(text_frames("a"))
    with client(upstream, openai_settings(chat_tools=[])) as test_client:
        test_client.post("/chat", json=REQUEST)
    assert "tools" not in body(upstream, 0)


# -- a client that leaves while a tool runs -------------------------------------------------------
def test_a_disconnect_while_a_tool_runs_cancels_it_and_closes_the_upstream() -> None:
    started, cancelled = threading.Event(), threading.Event()

    @tool
    async def wait_long() -> str:
        """Waits a long time."""
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "late"

    first = ScriptedStream(frames_of(tool_call_chunks(("c1", "wait_long", "{}"))))
    upstream = Upstream([stream_reply(first), chunks_reply(openai_stream("never"))])
    app = create_app(
        openai_settings(chat_tool_timeout=60), transport=upstream.transport, tools=[wait_long]
    )
    with serve(app) as url, httpx2.Client(base_url=url, timeout=10) as http:
        with http.stream("POST", "/chat/stream", json=REQUEST) as response:
            received = response.iter_lines()
            assert json.loads(next(received)) == {"delta": {"role": "assistant"}}
            assert "tool_call" in json.loads(next(received))["context"]
            assert started.wait(5)
        assert cancelled.wait(5), "the tool was not cancelled"
        assert first.closed.is_set(), "the upstream stream was not closed"
        assert len(upstream.requests) == 1


def frames_of(chunks: list[dict[str, Any]]) -> list[bytes]:
    from tests.upstream import sse_bytes

    return sse_bytes(chunks)


def test_each_model_call_is_retried_by_the_same_rules() -> None:
    ask = tool_call_chunks(("c1", "calculate", '{"expression": "6 * 7"}'))
    busy = error_reply(429, {"error": {"code": "rate_limit_exceeded"}}, {"retry-after-ms": "10"})
    upstream = Upstream([chunks_reply(ask), busy, chunks_reply(openai_stream("42."))])
    with client(upstream) as test_client:
        response = test_client.post("/chat/stream", json=REQUEST)
    events = lines(response)
    assert len(upstream.requests) == 3
    assert body(upstream, 2)["messages"][-1]["content"] == "42"
    assert events[-1]["context"]["finish_reason"] == "stop"


def test_a_later_call_that_fails_ends_the_stream_with_an_error_line() -> None:
    ask = tool_call_chunks(("c1", "calculate", '{"expression": "6 * 7"}'))
    broken_upstream = error_reply(500, {"error": {"code": "server_error"}})
    upstream = Upstream([chunks_reply(ask), broken_upstream])
    with client(upstream, openai_settings(chat_retry_attempts=2)) as test_client:
        response = test_client.post("/chat/stream", json=REQUEST)
    assert response.status_code == 200
    events = lines(response)
    assert "tool_result" in events[-2]["context"]
    assert events[-1] == {
        "error": {"code": "upstream_error", "message": "The model provider failed to answer."}
    }
    assert len(upstream.requests) == 3


def test_tools_run_inside_the_response_deadline() -> None:
    ask = tool_call_chunks(("c1", "slow", '{"seconds": 30}'))
    upstream = Upstream([chunks_reply(ask), chunks_reply(openai_stream("late"))])
    settings = openai_settings(
        chat_tool_timeout=20, chat_response_timeout=0.5, chat_first_token_timeout=0.5
    )
    with client(upstream, settings) as test_client:
        response = test_client.post("/chat/stream", json=REQUEST)
    events = lines(response)
    assert "tool_call" in events[1]["context"]
    assert events[-1]["error"]["code"] == "upstream_timeout"
    assert len(upstream.requests) == 1
