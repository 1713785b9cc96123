"""The SSE reader of the OpenAI provider: events complete per read, however the bytes are split."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from chatbackend.providers.openai_family import sse_data


async def _reads(*pieces: bytes) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


async def _collect(*pieces: bytes) -> list[list[bytes]]:
    return [events async for events in sse_data(_reads(*pieces))]


@pytest.mark.anyio
async def test_one_read_with_several_events_is_one_batch() -> None:
    batches = await _collect(b'data: {"a":1}\n\ndata: {"b":2}\n\ndata: [DONE]\n\n')
    assert batches == [[b'{"a":1}', b'{"b":2}', b"[DONE]"]]


@pytest.mark.anyio
async def test_an_event_split_across_reads_waits_for_its_end() -> None:
    batches = await _collect(b'data: {"a"', b":1}\n", b"\n", b"data: x\n\n")
    assert batches == [[b'{"a":1}'], [b"x"]]


@pytest.mark.anyio
async def test_crlf_comments_other_fields_and_multiline_data() -> None:
    body = b": keep-alive\r\n\r\nevent: message\r\nid: 7\r\ndata:first\r\ndata: second\r\n\r\n"
    assert await _collect(body) == [[b"first\nsecond"]]


@pytest.mark.anyio
async def test_an_unfinished_event_at_the_end_is_not_delivered() -> None:
    assert await _collect(b"data: complete\n\ndata: cut") == [[b"complete"]]
