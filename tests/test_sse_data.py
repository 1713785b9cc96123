"""The OpenAI provider's SSE reader: events complete per read, however the bytes are split."""

from __future__ import annotations

import json

import pytest

from chatbackend.providers import build_provider
from chatbackend.providers.base import Delta, Finish, GenerationRequest, Message, TextDelta
from tests.conftest import openai_settings
from tests.upstream import MODEL, ScriptedStream, Upstream, chunk, stream_reply, usage_chunk

REQUEST = GenerationRequest([Message("user", "Hi")])


def event(payload: dict[str, object]) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()


async def deltas(*pieces: bytes) -> list[Delta]:
    upstream = Upstream([stream_reply(ScriptedStream(list(pieces)))])
    provider = await build_provider(openai_settings(), transport=upstream.transport)
    try:
        return [delta async for delta in provider.stream(REQUEST)]
    finally:
        await provider.aclose()


FINISH = event(chunk(finish_reason="stop")) + event(usage_chunk(3, 2)) + b"data: [DONE]\n\n"


@pytest.mark.anyio
async def test_one_read_with_several_events_is_one_delta() -> None:
    body = event(chunk("a")) + event(chunk("b")) + FINISH
    assert await deltas(body) == [TextDelta("ab"), Finish("stop", usage_of(3, 2), MODEL)]


@pytest.mark.anyio
async def test_an_event_split_across_reads_waits_for_its_end() -> None:
    first = event(chunk("a"))
    result = await deltas(first[:9], first[9:-1], first[-1:], event(chunk("b")), FINISH)
    assert [d for d in result if isinstance(d, TextDelta)] == [TextDelta("a"), TextDelta("b")]


@pytest.mark.anyio
async def test_crlf_comments_other_fields_and_multiline_data() -> None:
    body = (
        b": keep-alive\r\n\r\nevent: message\r\nid: 7\r\n"
        b'data:{"model":"m","choices":[{"index":0,\r\n'
        b'data: "delta":{"content":"x"}}]}\r\n\r\n'
    )
    result = await deltas(body, FINISH)
    assert result[0] == TextDelta("x")


@pytest.mark.anyio
async def test_an_unfinished_event_at_the_end_is_not_delivered() -> None:
    from chatbackend import errors

    with pytest.raises(errors.UpstreamIncomplete):
        await deltas(event(chunk("complete")), b"data: cut")


def usage_of(prompt: int, completion: int) -> object:
    from chatbackend.providers.base import Usage

    return Usage(prompt, completion, prompt + completion)
