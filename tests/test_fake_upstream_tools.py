"""The fake upstream scripts tool-call streams that the real SDK assembles like OpenAI's own."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import openai
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState

from loadtests.fake_upstream import FakeUpstream

USER = {"role": "user", "content": "What is 17 times 3 divided by 4, and the time in Paris?"}


def sdk(upstream: FakeUpstream) -> openai.OpenAI:
    return openai.OpenAI(base_url=upstream.base_url, api_key="unused", max_retries=0)


def assembled(
    upstream: FakeUpstream, messages: list[dict[str, Any]], knobs: str
) -> openai.types.chat.ChatCompletion:
    """The stream, put together by the SDK's own accumulator (what its ``stream()`` helper uses)."""
    state = ChatCompletionStreamState()
    stream = sdk(upstream).chat.completions.create(
        model="m",
        messages=messages,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"X-Fake-Upstream": knobs},
    )
    for chunk in stream:
        state.handle_chunk(chunk)
    return state.get_final_completion()  # type: ignore[return-value]


def raw_events(upstream: FakeUpstream, path: str, knobs: str) -> list[dict[str, Any]]:
    body = {
        "model": "m",
        "messages": [USER],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    response = httpx2.post(
        f"{upstream.origin}{path}", json=body, headers={"X-Fake-Upstream": knobs}
    )
    frames = [f.removeprefix("data: ") for f in response.text.split("\n\n") if f]
    assert frames[-1] == "[DONE]"
    return [json.loads(frame) for frame in frames[:-1]]


def tool_fragments(events: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return [
        e["choices"][0]["delta"]["tool_calls"]
        for e in events
        if e["choices"] and "tool_calls" in e["choices"][0]["delta"]
    ]


def test_one_call_assembles_with_the_sdk(fake_upstream: FakeUpstream) -> None:
    completion = assembled(fake_upstream, [USER], "tool_calls=calculate")
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = [(c.id, c.function.name, c.function.arguments) for c in choice.message.tool_calls or []]  # type: ignore[union-attr]
    assert calls == [("call_fake_0_0", "calculate", '{"expression": "(17 * 3) / 4"}')]
    assert completion.usage is not None and completion.usage.completion_tokens > 0


def test_fragments_split_at_awkward_points(fake_upstream: FakeUpstream) -> None:
    events = raw_events(fake_upstream, "/v1/chat/completions", "tool_calls=calculate,calculate")
    fragments = tool_fragments(events)
    # the id (no name) first, then all the names in one chunk (no id), then the arguments
    assert fragments[0] == [
        {"index": 0, "id": "call_fake_0_0", "type": "function", "function": {"arguments": ""}}
    ]
    assert fragments[2] == [
        {"index": 0, "function": {"name": "calculate"}},
        {"index": 1, "function": {"name": "calculate"}},
    ]
    pieces = [f[0]["function"]["arguments"] for f in fragments[3:]]
    assert pieces[:4] == ['{"exp', '{"exp', "ressi", "ressi"]  # interleaved by index
    assert [f[0]["index"] for f in fragments[3:7]] == [0, 1, 0, 1]
    assert any(piece.count('"') % 2 for piece in pieces)  # pieces end inside JSON strings
    assert events[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert events[-1]["choices"] == [] and events[-1]["usage"]["prompt_tokens"] > 0


def test_parallel_calls_assemble_by_index(fake_upstream: FakeUpstream) -> None:
    completion = assembled(fake_upstream, [USER], "tool_calls=calculate,get_current_time")
    calls = completion.choices[0].message.tool_calls or []
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in calls] == [  # type: ignore[union-attr]
        ("call_fake_0_0", "calculate", {"expression": "(17 * 3) / 4"}),
        ("call_fake_0_1", "get_current_time", {"timezone": "Europe/Paris"}),
    ]


def answered_round(round_: int, *results: str) -> list[dict[str, Any]]:
    calls = [
        {
            "id": f"call_fake_{round_}_{i}",
            "type": "function",
            "function": {"name": "calculate", "arguments": "{}"},
        }
        for i in range(len(results))
    ]
    tool_messages = [
        {"role": "tool", "tool_call_id": f"call_fake_{round_}_{i}", "content": result}
        for i, result in enumerate(results)
    ]
    return [{"role": "assistant", "content": None, "tool_calls": calls}, *tool_messages]


def test_the_answer_comes_once_the_results_are_sent(fake_upstream: FakeUpstream) -> None:
    messages = [USER, *answered_round(0, "12.75", '{"datetime": "2026-12-01T21:00:00+01:00"}')]
    completion = assembled(
        fake_upstream, messages, "tool_calls=calculate,get_current_time;tokens=3"
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.tool_calls in (None, [])
    assert choice.message.content == (
        'Results: 12.75 | {"datetime": "2026-12-01T21:00:00+01:00"}. quick brown'
    )


def test_more_rounds_are_scripted(fake_upstream: FakeUpstream) -> None:
    knobs = "tool_calls=calculate;tool_rounds=2"
    second = assembled(fake_upstream, [USER, *answered_round(0, "1")], knobs)
    assert [c.id for c in second.choices[0].message.tool_calls or []] == ["call_fake_1_0"]
    final = assembled(
        fake_upstream, [USER, *answered_round(0, "1"), *answered_round(1, "2")], knobs
    )
    assert final.choices[0].finish_reason == "stop"
    # a new user message starts a new turn: tool calls again
    again = [USER, *answered_round(0, "1"), {"role": "assistant", "content": "ok"}, USER]
    assert assembled(fake_upstream, again, knobs).choices[0].finish_reason == "tool_calls"


def test_tool_arguments_replace_the_examples(fake_upstream: FakeUpstream) -> None:
    completion = assembled(fake_upstream, [USER], 'tool_calls=nope;tool_arguments={"x": 1')
    calls = completion.choices[0].message.tool_calls or []
    assert [(c.function.name, c.function.arguments) for c in calls] == [("nope", '{"x": 1')]  # type: ignore[union-attr]


def test_queued_knobs_script_the_next_request(fake_upstream: FakeUpstream) -> None:
    response = httpx2.post(
        f"{fake_upstream.origin}/_fake/next", json={"count": 1, "tool_calls": "get_current_time"}
    )
    assert response.status_code == 200
    first = sdk(fake_upstream).chat.completions.create(model="m", messages=[USER])  # type: ignore[list-item]
    assert first.choices[0].finish_reason == "tool_calls"
    tool_calls = first.choices[0].message.tool_calls or []
    assert [c.function.name for c in tool_calls] == ["get_current_time"]  # type: ignore[union-attr]
    second = sdk(fake_upstream).chat.completions.create(model="m", messages=[USER])  # type: ignore[list-item]
    assert second.choices[0].finish_reason == "stop"


def test_azure_tool_call_chunks_carry_content_filter_fields(fake_upstream: FakeUpstream) -> None:
    path = "/openai/deployments/chat/chat/completions"
    events = raw_events(fake_upstream, path, "tool_calls=calculate")
    assert events[0]["choices"] == [] and "prompt_filter_results" in events[0]
    assert all(e["choices"][0]["content_filter_results"] == {} for e in events[1:-1])
    fragments = tool_fragments(events)
    assert "".join(f[0]["function"].get("arguments", "") for f in fragments) == (
        '{"expression": "(17 * 3) / 4"}'
    )


@pytest.mark.parametrize("bad", ["tool_rounds=x", "tool_rounds=1.5"])
def test_bad_knobs_are_refused(fake_upstream: FakeUpstream, bad: str) -> None:
    response = httpx2.post(
        f"{fake_upstream.base_url}/chat/completions",
        json={"model": "m", "messages": [USER], "stream": True},
        headers={"X-Fake-Upstream": bad},
    )
    assert response.status_code == 400


def test_tool_choice_none_gets_the_text_answer(fake_upstream: FakeUpstream) -> None:
    completion = sdk(fake_upstream).chat.completions.create(
        model="m",
        messages=[USER],  # type: ignore[list-item]
        tool_choice="none",
        extra_headers={"X-Fake-Upstream": "tool_calls=calculate;tokens=2"},
    )
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content == "The quick"
