"""The fake upstream behaves like OpenAI and Azure, and each fault does what it says.

These talk to the real server over TCP, with the real ``openai`` SDK where it parses the answer.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import httpx2
import openai
import pytest

from loadtests.fake_upstream import FakeUpstream

MESSAGES = [{"role": "user", "content": "Say something long please"}]


@pytest.fixture
def upstream(fake_upstream: FakeUpstream) -> FakeUpstream:
    fake_upstream.configure(tokens=6)
    return fake_upstream


def sdk(upstream: FakeUpstream, **kwargs: object) -> openai.OpenAI:
    return openai.OpenAI(base_url=upstream.base_url, api_key="unused", max_retries=0, **kwargs)  # type: ignore[arg-type]


def wait_for(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.01)


def test_stream_parses_with_the_sdk_and_reports_usage(upstream: FakeUpstream) -> None:
    chunks = list(
        sdk(upstream).chat.completions.create(
            model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "The quick brown fox jumps over"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (4, 6)
    # The server counts the stream once its last write returned, on its own thread: the
    # client may have read ``[DONE]`` a moment before.
    wait_for(lambda: upstream.snapshot()["content_chunks"] == 6)
    stats = upstream.snapshot()
    assert (stats["completed"], stats["content_chunks"], stats["abandoned"]) == (1, 6, 0)


def test_stream_without_include_usage_ends_with_done_and_no_usage(upstream: FakeUpstream) -> None:
    body = {"model": "m", "messages": MESSAGES, "stream": True}
    text = httpx2.post(f"{upstream.base_url}/chat/completions", json=body).text
    events = [line for line in text.split("\n\n") if line]
    assert events[-1] == "data: [DONE]"
    assert '"usage"' not in text
    assert '"finish_reason":"stop"' in events[-2]


def test_non_streaming_answer_has_usage(upstream: FakeUpstream) -> None:
    completion = sdk(upstream).chat.completions.create(model="m", messages=MESSAGES)
    assert completion.choices[0].message.content == "The quick brown fox jumps over"
    assert completion.usage is not None and completion.usage.completion_tokens == 6


def test_max_tokens_caps_the_answer(upstream: FakeUpstream) -> None:
    completion = sdk(upstream).chat.completions.create(
        model="m", messages=MESSAGES, max_completion_tokens=2
    )
    assert completion.choices[0].message.content == "The quick"


def test_azure_deployment_path_sends_content_filter_results(upstream: FakeUpstream) -> None:
    url = f"{upstream.origin}/openai/deployments/chat-deployment/chat/completions"
    body = {"messages": MESSAGES, "stream": True}
    events = httpx2.post(url, json=body).text.split("\n\n")
    assert '"prompt_filter_results"' in events[0]
    assert '"model":"chat-deployment"' in events[1]
    assert '"content_filter_results"' in events[2]


@pytest.mark.parametrize(
    ("knobs", "status", "code"),
    [
        ("fault=rate_limit;retry_after=7", 429, "rate_limit_exceeded"),
        ("fault=server_error", 500, "server_error"),
        ("fault=content_filter", 400, "content_filter"),
    ],
)
def test_refusals_by_header(upstream: FakeUpstream, knobs: str, status: int, code: str) -> None:
    response = httpx2.post(
        f"{upstream.base_url}/chat/completions",
        json={"model": "m", "messages": MESSAGES, "stream": True},
        headers={"X-Fake-Upstream": knobs},
    )
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    if status == 429:
        assert response.headers["retry-after"] == "7"


def test_queued_knobs_apply_to_the_next_requests_only(upstream: FakeUpstream) -> None:
    control = httpx2.post(
        f"{upstream.origin}/_fake/next", json={"count": 2, "fault": "server_error"}
    )
    assert control.json() == {"queued": 2}
    client = sdk(upstream)
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="m", messages=MESSAGES)
    assert client.chat.completions.create(model="m", messages=MESSAGES).choices


def test_defaults_endpoint_replaces_the_defaults(upstream: FakeUpstream) -> None:
    response = httpx2.put(f"{upstream.origin}/_fake/defaults", json={"tokens": 3})
    assert response.json()["tokens"] == 3
    completion = sdk(upstream).chat.completions.create(model="m", messages=MESSAGES)
    assert completion.choices[0].message.content == "The quick brown"


ANSWER = "Look: <img src=x onerror=alert(1)>\n\n```py\nprint(1)\n```"


def test_answer_knob_streams_the_given_text_word_by_word(upstream: FakeUpstream) -> None:
    upstream.queue(answer=ANSWER)
    chunks = list(
        sdk(upstream).chat.completions.create(
            model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert "".join(pieces) == ANSWER
    assert pieces[:3] == ["Look:", " <img", " src=x"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == len(pieces)


def test_answer_knob_in_a_json_completion_honours_max_tokens(upstream: FakeUpstream) -> None:
    upstream.queue(answer=ANSWER)
    completion = sdk(upstream).chat.completions.create(
        model="m", messages=MESSAGES, max_completion_tokens=2
    )
    assert completion.choices[0].message.content == "Look: <img"


def test_unknown_knob_is_a_clear_400(upstream: FakeUpstream) -> None:
    response = httpx2.put(f"{upstream.origin}/_fake/defaults", json={"speed": 3})
    assert response.status_code == 400
    assert "unknown knob 'speed'" in response.text


def test_hang_outlasts_the_client_timeout_and_counts_as_abandoned(upstream: FakeUpstream) -> None:
    client = sdk(upstream, timeout=0.3)
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(
            model="m", messages=MESSAGES, extra_headers={"X-Fake-Upstream": "fault=hang"}
        )
    wait_for(lambda: upstream.snapshot()["abandoned"] == 1)
    assert upstream.snapshot()["abandoned"] == 1


def test_drop_cuts_the_connection_mid_stream(upstream: FakeUpstream) -> None:
    stream = sdk(upstream).chat.completions.create(
        model="m",
        messages=MESSAGES,
        stream=True,
        extra_headers={"X-Fake-Upstream": "fault=drop;drop_after=3"},
    )
    received: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in stream:
            received.extend(c.delta.content or "" for c in chunk.choices)
    assert "".join(received) == "The quick brown"


def test_trickle_sends_the_stream_a_few_bytes_at_a_time(upstream: FakeUpstream) -> None:
    body = {"model": "m", "messages": MESSAGES, "stream": True, "max_tokens": 1}
    headers = {"X-Fake-Upstream": "fault=trickle;trickle_bytes=16;itl=0.002"}
    with httpx2.stream(
        "POST", f"{upstream.base_url}/chat/completions", json=body, headers=headers
    ) as response:
        pieces = list(response.iter_raw())
    text = b"".join(pieces).decode()
    assert text.endswith("data: [DONE]\n\n")
    assert '"content":"The"' in text
    assert len(pieces) > 10  # a whole event never arrives at once


def test_ttft_and_itl_pace_the_stream(upstream: FakeUpstream) -> None:
    started = time.monotonic()
    list(
        sdk(upstream).chat.completions.create(
            model="m",
            messages=MESSAGES,
            stream=True,
            extra_headers={"X-Fake-Upstream": "ttft=0.2;itl=0.05;tokens=5"},
        )
    )
    assert time.monotonic() - started >= 0.2 + 4 * 0.05


def test_client_closing_mid_stream_is_recorded_as_abandoned(upstream: FakeUpstream) -> None:
    upstream.configure(itl=0.02, tokens=200)
    stream = sdk(upstream).chat.completions.create(model="m", messages=MESSAGES, stream=True)
    for index, _ in enumerate(stream):
        if index == 3:
            break
    stream.close()
    wait_for(lambda: upstream.snapshot()["abandoned"] == 1)
    stats = upstream.snapshot()
    assert (stats["abandoned"], stats["completed"], stats["in_flight"]) == (1, 0, 0)
    assert 0 < stats["abandoned_after"][0] < 200


def test_one_client_reuses_one_connection(upstream: FakeUpstream) -> None:
    """The async SDK drains the body after ``[DONE]``, so its pool keeps the connection."""

    async def five_streams() -> None:
        client = openai.AsyncOpenAI(base_url=upstream.base_url, api_key="unused", max_retries=0)
        async with client:
            for _ in range(5):
                stream = await client.chat.completions.create(
                    model="m", messages=MESSAGES, stream=True
                )
                async for _chunk in stream:
                    pass

    asyncio.run(five_streams())
    assert upstream.snapshot()["connections"] == 1


def test_holds_a_thousand_concurrent_streams() -> None:
    streams = 1000
    with FakeUpstream.running_in_thread(ttft=0.5, itl=0.05, tokens=5) as upstream:

        async def one(session: aiohttp.ClientSession) -> bytes:
            body = {"model": "m", "messages": MESSAGES, "stream": True}
            async with session.post(f"{upstream.base_url}/chat/completions", json=body) as reply:
                return await reply.read()

        async def run() -> list[bytes]:
            connector = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(connector=connector) as session:
                return await asyncio.gather(*(one(session) for _ in range(streams)))

        bodies = asyncio.run(run())
        stats = upstream.snapshot()
    assert all(body.endswith(b"data: [DONE]\n\n") for body in bodies)
    assert stats["completed"] == streams
    assert stats["max_in_flight"] == streams


def test_each_chunk_is_sent_when_it_is_produced(upstream: FakeUpstream) -> None:
    """Not held back until the next one is ready: the first token arrives after ``ttft``."""
    body = {"model": "m", "messages": MESSAGES, "stream": True}
    headers = {"X-Fake-Upstream": "ttft=0;itl=0.5;tokens=3"}
    started = time.monotonic()
    with httpx2.stream(
        "POST", f"{upstream.base_url}/chat/completions", json=body, headers=headers
    ) as response:
        for line in response.iter_lines():
            if '"content":"The"' in line:
                break
    assert time.monotonic() - started < 0.4
