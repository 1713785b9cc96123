"""A client that goes away releases the upstream at once, under a real uvicorn server."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from chatbackend.app import create_app
from tests.conftest import openai_settings
from tests.servers import serve
from tests.upstream import ScriptedStream, Upstream, openai_stream, sse_bytes, stream_reply

REQUEST: dict[str, Any] = {"messages": [{"role": "user", "content": "Write a long story"}]}
CLOSE_WITHIN = 3.0


def _upstream(stall_after: int) -> tuple[Upstream, ScriptedStream]:
    stream = ScriptedStream(sse_bytes(openai_stream("Once", " upon")), stall_after=stall_after)
    return Upstream([stream_reply(stream)]), stream


@pytest.mark.parametrize("accept", ["application/x-ndjson", "text/event-stream"])
def test_stream_disconnect_after_the_first_delta_closes_the_upstream(accept: str) -> None:
    upstream, stream = _upstream(stall_after=2)
    app = create_app(openai_settings(sse_keepalive_seconds=60), transport=upstream.transport)
    with serve(app) as url, httpx2.Client(base_url=url, timeout=10) as client:
        with client.stream(
            "POST", "/chat/stream", json=REQUEST, headers={"accept": accept}
        ) as response:
            lines = response.iter_lines()
            assert next(lines) in (
                '{"delta":{"role":"assistant"}}',
                'data: {"delta":{"role":"assistant"}}',
            )
            assert not stream.closed.is_set()
        assert stream.closed.wait(CLOSE_WITHIN), "the upstream stream was not closed"


@pytest.mark.parametrize("route", ["/chat", "/chat/stream"])
def test_disconnect_while_waiting_for_the_first_token_closes_the_upstream(route: str) -> None:
    upstream, stream = _upstream(stall_after=0)
    app = create_app(openai_settings(), transport=upstream.transport)
    with serve(app) as url, httpx2.Client(base_url=url, timeout=0.5) as client:
        with pytest.raises(httpx2.ReadTimeout):
            client.post(route, json=REQUEST)
        assert stream.closed.wait(CLOSE_WITHIN), "the upstream stream was not closed"
        assert client.get("/health/live", timeout=5).status_code == 200


def test_curl_style_stream_arrives_line_by_line() -> None:
    frames = sse_bytes(openai_stream("one", " two", " three"))
    stream = ScriptedStream(frames, delay=0.2)
    app = create_app(openai_settings(), transport=Upstream([stream_reply(stream)]).transport)
    with serve(app) as url, httpx2.Client(base_url=url, timeout=10) as client:
        with client.stream("POST", "/chat/stream", json=REQUEST) as response:
            assert response.headers["content-type"] == "application/x-ndjson"
            assert response.headers["transfer-encoding"] == "chunked"
            chunks = list(response.iter_raw())
    assert len(chunks) >= 4, "each line is flushed as it is produced, not buffered to the end"
    assert b"".join(chunks).decode().splitlines()[1] == '{"delta":{"content":"one"}}'
