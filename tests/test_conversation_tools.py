"""Tool calls in stored conversations, on SQLite and PostgreSQL, through real uvicorn servers:
the fake upstream runs whole tool rounds inside conversation turns, and the mock transport shows
the exact body the next turn sends upstream."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx2
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from chatbackend.app import create_app
from chatbackend.settings import DEFAULT_SYSTEM_PROMPT, load_settings
from chatbackend.store.models import MessageRow
from chatbackend.tools import Tool, tool
from chatbackend.tools.builtin import calculate
from loadtests.fake_upstream import FakeUpstream
from tests.conftest import openai_settings
from tests.servers import serve
from tests.tool_streams import tool_call_chunks
from tests.upstream import Upstream, chunks_reply, openai_stream

QUESTION = "What is 17 times 3 over 4, and the time in Paris?"
TURN: dict[str, Any] = {"messages": [{"role": "user", "content": QUESTION}]}


def _lines(response: httpx2.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.text.splitlines()]


def _contexts(lines: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return [line["context"][key] for line in lines if key in line.get("context", {})]


def _text(lines: list[dict[str, Any]]) -> str:
    return "".join(line.get("delta", {}).get("content", "") for line in lines)


def _new(url: str) -> str:
    return str(httpx2.post(f"{url}/conversations", json={}).json()["id"])


def _messages(url: str, conversation_id: str) -> list[dict[str, Any]]:
    response = httpx2.get(f"{url}/conversations/{conversation_id}")
    response.raise_for_status()
    return list(response.json()["messages"])


def _stored_rows(database_url: str, conversation_id: str) -> list[tuple[int, str]]:
    """``(seq, role)`` of the conversation's rows, read from the database itself."""

    async def read() -> list[tuple[int, str]]:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(
                    select(MessageRow.seq, MessageRow.role)
                    .where(MessageRow.conversation_id == uuid.UUID(conversation_id))
                    .order_by(MessageRow.seq)
                )
                return [(seq, role) for seq, role in rows]
        finally:
            await engine.dispose()

    return asyncio.run(read())


def _roles(messages: list[dict[str, Any]]) -> list[str]:
    return [m["role"] for m in messages]


@pytest.fixture
def backend(fake_upstream: FakeUpstream, database_url: str) -> Callable[..., Any]:
    def start(tools: list[Tool] | None = None, **overrides: Any) -> Any:
        settings = load_settings(
            chat_provider="compatible",
            chat_base_url=fake_upstream.base_url,
            chat_model="fake-model",
            chat_retry_backoff_seconds=0.01,
            database_url=database_url,
            **overrides,
        )
        return serve(create_app(settings, tools=tools))

    return start


# -- a tool round inside a turn, through the fake upstream ----------------------------------------
def test_a_tool_round_is_stored_in_order_and_shown_as_streamed(
    backend: Callable[..., Any], fake_upstream: FakeUpstream, database_url: str
) -> None:
    fake_upstream.configure(tool_calls="calculate,get_current_time", tokens=3)
    with backend() as url:
        conversation_id = _new(url)
        response = httpx2.post(
            f"{url}/conversations/{conversation_id}/chat/stream", json=TURN, timeout=30
        )
        lines = _lines(response)
        stored = _messages(url, conversation_id)
    assert _roles(stored) == ["user", "assistant", "tool", "tool", "assistant"]
    user, asked, first, second, final = stored
    assert user["content"] == QUESTION
    # The calls and results are the ones the stream showed, in the same order.
    calls = _contexts(lines, "tool_call")
    assert asked["tool_calls"] == calls
    assert [c["name"] for c in calls] == ["calculate", "get_current_time"]
    assert (asked["content"], asked["finish_reason"]) == ("", "tool_calls")
    results = _contexts(lines, "tool_result")
    for message, result in zip((first, second), results, strict=True):
        assert {k: message[k] for k in ("tool_call_id", "name", "content")} == {
            "tool_call_id": result["id"],
            "name": result["name"],
            "content": result["content"],
        }
        assert "error" not in message and "tool_calls" not in message
    assert first["content"] == "12.75"
    # The final message is the answer the client saw, with the turn's summed usage.
    context = lines[-1]["context"]
    assert final["id"] == context["message_id"]
    assert final["content"] == _text(lines) and final["content"].startswith("Results: 12.75 | ")
    assert (final["finish_reason"], final["usage"]) == ("stop", context["usage"])
    assert "tool_calls" not in final
    assert _stored_rows(database_url, conversation_id) == [
        (1, "user"),
        (2, "assistant"),
        (3, "tool"),
        (4, "tool"),
        (5, "assistant"),
    ]


def test_a_second_tool_turn_continues_the_sequence(
    backend: Callable[..., Any], fake_upstream: FakeUpstream, database_url: str
) -> None:
    fake_upstream.configure(tool_calls="calculate", tokens=2)
    with backend() as url:
        conversation_id = _new(url)
        for _ in range(2):
            path = f"{url}/conversations/{conversation_id}/chat"
            answer = httpx2.post(path, json=TURN, timeout=30).json()
            assert answer["context"]["finish_reason"] == "stop"
            assert [c["name"] for c in answer["context"]["tool_calls"]] == ["calculate"]
        stored = _messages(url, conversation_id)
    assert _roles(stored) == ["user", "assistant", "tool", "assistant"] * 2
    assert [seq for seq, _ in _stored_rows(database_url, conversation_id)] == list(range(1, 9))
    assert stored[-1]["id"] == answer["context"]["message_id"]


def test_a_failed_tool_is_stored_as_its_error(
    backend: Callable[..., Any], fake_upstream: FakeUpstream
) -> None:
    fake_upstream.configure(tool_calls="calculate", tool_arguments='{"expression": 7', tokens=2)
    with backend() as url:
        conversation_id = _new(url)
        lines = _lines(httpx2.post(f"{url}/conversations/{conversation_id}/chat/stream", json=TURN))
        stored = _messages(url, conversation_id)
    [result] = _contexts(lines, "tool_result")
    assert result["error"]["code"] == "invalid_arguments"
    tool_message = stored[2]
    assert tool_message["role"] == "tool"
    assert tool_message["content"] is None
    assert tool_message["error"] == result["error"]


def test_an_upstream_break_after_a_round_keeps_the_round_and_the_partial_answer(
    backend: Callable[..., Any], fake_upstream: FakeUpstream, database_url: str
) -> None:
    fake_upstream.configure(tool_calls="calculate", tokens=20)
    fake_upstream.queue(1)  # the round
    fake_upstream.queue(1, fault="drop", drop_after=2)  # the answer breaks mid-stream
    with backend() as url:
        conversation_id = _new(url)
        lines = _lines(httpx2.post(f"{url}/conversations/{conversation_id}/chat/stream", json=TURN))
        stored = _messages(url, conversation_id)
    assert lines[-1]["error"]["code"] == "upstream_incomplete"
    assert _roles(stored) == ["user", "assistant", "tool", "assistant"]
    final = stored[-1]
    assert final["finish_reason"] == "incomplete" and "usage" not in final
    assert final["content"] == _text(lines) != ""
    assert [seq for seq, _ in _stored_rows(database_url, conversation_id)] == [1, 2, 3, 4]


class Stall:
    """A tool that answers at once the first time and hangs on every later call."""

    def __init__(self) -> None:
        self.calls = 0
        self.cancelled = threading.Event()

    def tool(self) -> Tool:
        @tool(name="stall")
        async def stall(label: str = "") -> str:
            """Returns quickly once, then hangs."""
            self.calls += 1
            if self.calls == 1:
                return f"first {label}".strip()
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
            return "never"

        return stall


def test_a_disconnect_while_a_tool_runs_keeps_only_completed_rounds(
    backend: Callable[..., Any], fake_upstream: FakeUpstream, database_url: str
) -> None:
    fake_upstream.configure(tool_calls="stall", tool_rounds=2, tokens=3)
    stall = Stall()
    with backend(tools=[stall.tool(), calculate]) as url:
        conversation_id = _new(url)
        path = f"/conversations/{conversation_id}/chat/stream"
        calls = 0
        with httpx2.Client(base_url=url, timeout=30) as client:
            with client.stream("POST", path, json=TURN) as response:
                for raw in response.iter_lines():
                    calls += "tool_call" in json.loads(raw).get("context", {})
                    if calls == 2:  # the second round's tool is running: hang up
                        break
        deadline = time.monotonic() + 10
        while len(stored := _messages(url, conversation_id)) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _roles(stored) == ["user", "assistant", "tool", "assistant"]
        asked, result, final = stored[1:]
        assert [c["id"] for c in asked["tool_calls"]] == ["call_fake_0_0"]
        assert (result["tool_call_id"], result["content"]) == ("call_fake_0_0", "first")
        # The round whose tool never returned is not stored: no call without its result.
        assert (final["content"], final["finish_reason"]) == ("", "cancelled")
        assert "tool_calls" not in final
        assert stall.cancelled.is_set()
        time.sleep(0.3)
        assert len(_messages(url, conversation_id)) == 4
        # The lease was given back and the record is a valid history for the next turn.
        fake_upstream.configure(tokens=2)
        nxt = httpx2.post(f"{url}{path.removesuffix('/stream')}", json=TURN, timeout=30)
        assert nxt.json()["context"]["finish_reason"] == "stop"
    rows = _stored_rows(database_url, conversation_id)
    assert [seq for seq, _ in rows] == list(range(1, 7))


# -- the next turn's upstream body, over the mock transport ---------------------------------------
CALL_ARGUMENTS = '{"expression": "17 * 3 / 4"}'


@pytest.fixture
def mocked(database_url: str) -> Callable[..., Any]:
    def start(upstream: Upstream, tools: list[Tool], **overrides: Any) -> Any:
        settings = openai_settings(database_url=database_url, **overrides)
        return serve(create_app(settings, transport=upstream.transport, tools=tools))

    return start


def _sent(upstream: Upstream, index: int) -> dict[str, Any]:
    return json.loads(upstream.requests[index].content)  # type: ignore[no-any-return]


def test_the_next_turn_sends_the_stored_tool_round_upstream(mocked: Callable[..., Any]) -> None:
    upstream = Upstream(
        [
            chunks_reply(tool_call_chunks(("call_a", "calculate", CALL_ARGUMENTS))),
            chunks_reply(openai_stream("It is ", "12.75.")),
            chunks_reply(openai_stream("You asked about arithmetic.")),
        ]
    )
    with mocked(upstream, [calculate]) as url:
        conversation_id = _new(url)
        path = f"{url}/conversations/{conversation_id}/chat"
        first = httpx2.post(path, json=TURN, timeout=30).json()
        assert first["message"]["content"] == "It is 12.75."
        second = {"messages": [{"role": "user", "content": "What did I ask?"}]}
        httpx2.post(path, json=second, timeout=30).raise_for_status()
    assert len(upstream.requests) == 3
    body = _sent(upstream, 2)
    assert body["messages"] == [
        {"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
        {"role": "user", "content": QUESTION},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "calculate", "arguments": CALL_ARGUMENTS},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": "12.75"},
        {"role": "assistant", "content": "It is 12.75."},
        {"role": "user", "content": "What did I ask?"},
    ]
    # Turn 2 continues the very history turn 1's own second call was sent.
    assert _sent(upstream, 1)["messages"] == body["messages"][:4]
    assert [t["function"]["name"] for t in body["tools"]] == ["calculate"]


@tool
async def lookup(topic: str) -> str:
    """Look a topic up (a long result)."""
    return " ".join([topic] * 1000)


def test_truncation_drops_a_tool_turn_whole(mocked: Callable[..., Any]) -> None:
    upstream = Upstream(
        [
            chunks_reply(tool_call_chunks(("call_big", "lookup", '{"topic": "hello"}'))),
            chunks_reply(openai_stream("Found it.")),
            chunks_reply(openai_stream("Short answer.")),
        ]
    )
    # A budget of 800 - 200 (the answer's reserve) tokens: the 1000-token tool result no
    # longer fits on the next turn, so its whole turn goes, not only the tool message.
    with mocked(upstream, [lookup], chat_context_tokens=800) as url:
        conversation_id = _new(url)
        path = f"{url}/conversations/{conversation_id}/chat"
        httpx2.post(path, json=TURN, timeout=30).raise_for_status()
        for question in ("Second?", "Third?"):
            turn = {"messages": [{"role": "user", "content": question}]}
            httpx2.post(path, json=turn, timeout=30).raise_for_status()
        stored = _messages(url, conversation_id)
    assert _roles(stored) == ["user", "assistant", "tool", "assistant", *["user", "assistant"] * 2]
    second, third = _sent(upstream, 2)["messages"], _sent(upstream, 3)["messages"]
    assert [m["role"] for m in second] == ["system", "user"]
    assert second[1]["content"] == "Second?"
    assert [(m["role"], m["content"]) for m in third[1:]] == [
        ("user", "Second?"),
        ("assistant", "Short answer."),
        ("user", "Third?"),
    ]


@tool
async def nul_text(label: str = "") -> str:
    """Returns text with a NUL character, which PostgreSQL text columns refuse."""
    return f"a\x00b{label}"


def test_a_failed_write_stores_nothing_of_the_answer_and_frees_the_conversation(
    backend: Callable[..., Any], fake_upstream: FakeUpstream, database_url: str
) -> None:
    fake_upstream.configure(tool_calls="nul_text", tokens=2)
    with backend(tools=[nul_text]) as url:
        conversation_id = _new(url)
        path = f"{url}/conversations/{conversation_id}/chat"
        assert httpx2.post(path, json=TURN, timeout=30).json()["context"]["finish_reason"] == "stop"
        stored = _messages(url, conversation_id)
        if database_url.startswith("sqlite"):
            assert _roles(stored) == ["user", "assistant", "tool", "assistant"]
            assert stored[2]["content"] == "a\x00b"
        else:
            # The answer's rows are one transaction: the refused tool row takes the others with it.
            assert _roles(stored) == ["user"]
        fake_upstream.configure(tokens=2)
        again = httpx2.post(path, json=TURN, timeout=30)
        assert again.status_code == 200, again.text
        roles = _roles(_messages(url, conversation_id))
    assert roles[-2:] == ["user", "assistant"]
    rows = _stored_rows(database_url, conversation_id)
    assert [seq for seq, _ in rows] == list(range(1, len(roles) + 1))
