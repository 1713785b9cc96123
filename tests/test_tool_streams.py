"""The recorded-format tool-call streams are what the real SDK accepts as OpenAI streams."""

from __future__ import annotations

import json

import httpx2
import openai
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState

from tests.tool_streams import frames, stream_bytes
from tests.upstream import ScriptedStream, Upstream, stream_reply

EXPECTED = {
    "openai_two_calls": [
        ("call_Qm3kX8vTn2LcPz7RbW1yHs5D", "get_current_time", {"timezone": "Europe/Paris"}),
        ("call_V9aJr4eNc6UoYt0GfK2mLx8B", "calculate", {"expression": "(17 * 3) / 4"}),
    ],
    "openai_one_call": [
        ("call_Hn5bT2wQz8XkLp3MvR7cYd1F", "calculate", {"expression": "2 ** 10"}),
    ],
    "azure_two_calls": [
        ("call_Xb4nWq7Lk2Tz9Rc1Vm6Ps3Hd", "get_current_time", {"timezone": "Asia/Tokyo"}),
        ("call_Jm8cYv3Qs5Np1Xk7Bt2Wr9Lf", "calculate", {"expression": "sqrt(2) ** 2"}),
    ],
}


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("size", [None, 7])
async def test_the_sdk_assembles_the_calls(name: str, size: int | None) -> None:
    upstream = Upstream([stream_reply(ScriptedStream(frames(name, size=size)))])
    http_client = httpx2.AsyncClient(transport=upstream.transport)
    client = openai.AsyncOpenAI(api_key="sk-test", max_retries=0, http_client=http_client)
    state = ChatCompletionStreamState()
    stream = await client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    async for chunk in stream:
        state.handle_chunk(chunk)
    await client.close()
    choice = state.get_final_completion().choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = [
        (c.id, c.function.name, json.loads(c.function.arguments))  # type: ignore[union-attr]
        for c in choice.message.tool_calls or []
    ]
    assert calls == EXPECTED[name]


def test_azure_stream_has_the_azure_layout() -> None:
    events = [json.loads(e[6:]) for e in stream_bytes("azure_two_calls").split(b"\n\n")[:-2]]
    assert events[0]["choices"] == [] and "prompt_filter_results" in events[0]
    for event in events[1:]:
        assert list(event) == sorted(event)
        assert all(c["content_filter_results"] == {} for c in event["choices"])
        assert "obfuscation" in event
