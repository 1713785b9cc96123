"""One owner per answer: the slot, the upstream and the completion hooks, on every ending.

Hooks are registered through the service's public ``on_answer`` (what usage accounting and
history use); the upstream is the real fake upstream over TCP, or the mock transport where a
fault must land at an exact byte.
"""

from __future__ import annotations

import gc
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient

from chatbackend.app import create_app
from chatbackend.chat import ChatService, Outcome
from chatbackend.settings import Settings, load_settings
from loadtests.fake_upstream import FakeUpstream
from tests.conftest import openai_settings
from tests.servers import serve_with_state
from tests.upstream import (
    ScriptedStream,
    Upstream,
    error_reply,
    openai_stream,
    sse_bytes,
    stream_reply,
)

REQUEST: dict[str, Any] = {"messages": [{"role": "user", "content": "Tell me a story"}]}


class Recorder:
    """Collects the outcomes an app's answers end with (thread-safe: the server has its own)."""

    def __init__(self) -> None:
        self.outcomes: list[Outcome] = []
        self._changed = threading.Condition()

    async def __call__(self, outcome: Outcome) -> None:
        with self._changed:
            self.outcomes.append(outcome)
            self._changed.notify_all()

    def wait(self, count: int, timeout: float = 5.0) -> list[Outcome]:
        with self._changed:
            self._changed.wait_for(lambda: len(self.outcomes) >= count, timeout)
            return list(self.outcomes)


def fake_settings(upstream: FakeUpstream, **overrides: Any) -> Settings:
    return load_settings(
        chat_provider="compatible",
        chat_base_url=upstream.base_url,
        chat_model="fake-model",
        chat_retry_backoff_seconds=0.01,
        **overrides,
    )


def settled(upstream: FakeUpstream, condition: Any, timeout: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition(upstream.snapshot()):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


@contextmanager
def gc_disabled() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_chat_releases_its_slot_and_the_upstream_before_the_response(
    fake_upstream: FakeUpstream,
) -> None:
    fake_upstream.configure(tokens=5)
    app = create_app(fake_settings(fake_upstream))
    with gc_disabled(), TestClient(app) as client:
        service: ChatService = client.app_state["service"]
        for _ in range(3):
            response = client.post("/chat", json=REQUEST)
            assert response.status_code == 200
            # Right after the response, with nothing left to the garbage collector:
            assert service.slots.in_use == 0
            # The upstream's own counters are bumped on its thread once its write returned.
            assert settled(fake_upstream, lambda s: s["in_flight"] == 0)
            assert fake_upstream.snapshot()["abandoned"] == 0
        assert fake_upstream.snapshot()["completed"] == 3


def test_chat_stream_releases_its_slot_when_the_response_ends(fake_upstream: FakeUpstream) -> None:
    fake_upstream.configure(tokens=5)
    app = create_app(fake_settings(fake_upstream))
    with gc_disabled(), TestClient(app) as client:
        service: ChatService = client.app_state["service"]
        response = client.post("/chat/stream", json=REQUEST)
        assert response.status_code == 200
        assert service.slots.in_use == 0
        assert settled(fake_upstream, lambda s: s["in_flight"] == 0)


def test_hooks_run_once_on_completion_with_text_usage_and_reason(
    fake_upstream: FakeUpstream,
) -> None:
    fake_upstream.configure(tokens=4)
    recorder = Recorder()
    app = create_app(fake_settings(fake_upstream))
    with TestClient(app) as client:
        client.app_state["service"].on_answer(recorder)
        json_answer = client.post("/chat", json=REQUEST).json()
        stream = client.post("/chat/stream", json=REQUEST)
        sse = client.post("/chat/stream", json=REQUEST, headers={"accept": "text/event-stream"})
    assert stream.status_code == sse.status_code == 200
    outcomes = recorder.wait(3)
    assert len(outcomes) == 3
    for outcome in outcomes:
        assert outcome.ending == "complete"
        assert outcome.streamed
        assert outcome.finish_reason == "stop"
        assert outcome.usage is not None and outcome.usage.completion_tokens == 4
        assert outcome.error is None
    assert outcomes[0].text == json_answer["message"]["content"]


def test_hooks_run_once_when_the_upstream_fails_before_the_first_delta() -> None:
    upstream = Upstream([error_reply(401, {"error": {"message": "bad key"}})])
    recorder = Recorder()
    app = create_app(openai_settings(), transport=upstream.transport)
    with TestClient(app) as client:
        client.app_state["service"].on_answer(recorder)
        assert client.post("/chat/stream", json=REQUEST).status_code == 502
        assert client.post("/chat", json=REQUEST).status_code == 502
    outcomes = recorder.wait(2)
    assert [(o.ending, o.streamed, o.error and o.error.code) for o in outcomes] == [
        ("error", False, "upstream_auth_failed"),
        ("error", False, "upstream_auth_failed"),
    ]


@pytest.mark.parametrize("accept", ["application/x-ndjson", "text/event-stream", "json"])
def test_hooks_run_once_when_the_upstream_drops_mid_stream(accept: str) -> None:
    frames = sse_bytes(openai_stream("Once", " upon", " a time"))
    upstream = Upstream([stream_reply(ScriptedStream(frames, break_after=3))])
    recorder = Recorder()
    app = create_app(openai_settings(), transport=upstream.transport)
    with TestClient(app) as client:
        client.app_state["service"].on_answer(recorder)
        if accept == "json":
            assert client.post("/chat", json=REQUEST).status_code == 502
        else:
            response = client.post("/chat/stream", json=REQUEST, headers={"accept": accept})
            assert "upstream_incomplete" in response.text
    (outcome,) = recorder.wait(1)
    assert outcome.ending == "error"
    assert outcome.streamed
    assert outcome.text == "Once upon"
    assert outcome.error is not None and outcome.error.code == "upstream_incomplete"
    time.sleep(0.1)
    assert len(recorder.outcomes) == 1


def test_hooks_run_once_on_a_first_token_timeout() -> None:
    frames = sse_bytes(openai_stream("late"))
    stream = ScriptedStream(frames, stall_after=0)
    recorder = Recorder()
    app = create_app(
        openai_settings(chat_first_token_timeout=0.3, chat_retry_attempts=1),
        transport=Upstream([stream_reply(stream)]).transport,
    )
    with TestClient(app) as client:
        client.app_state["service"].on_answer(recorder)
        response = client.post("/chat/stream", json=REQUEST)
    assert response.status_code == 504
    (outcome,) = recorder.wait(1)
    assert (outcome.ending, outcome.streamed, outcome.text) == ("error", False, "")
    assert outcome.error is not None and outcome.error.code == "upstream_timeout"
    assert stream.closed.is_set()


@pytest.mark.parametrize("accept", ["application/x-ndjson", "text/event-stream"])
def test_hooks_run_once_when_the_client_disconnects_mid_stream(
    fake_upstream: FakeUpstream, accept: str
) -> None:
    fake_upstream.configure(tokens=200, itl=0.05)
    recorder = Recorder()
    app = create_app(fake_settings(fake_upstream, sse_keepalive_seconds=60))
    with serve_with_state(app) as (url, state):
        state["service"].on_answer(recorder)
        with httpx2.Client(base_url=url, timeout=10) as client:
            with client.stream(
                "POST", "/chat/stream", json=REQUEST, headers={"accept": accept}
            ) as response:
                lines = response.iter_lines()
                while "content" not in next(lines):
                    pass
        (outcome,) = recorder.wait(1)
        assert outcome.ending == "cancelled"
        assert outcome.streamed and outcome.text
        assert outcome.error is None
        assert state["service"].slots.in_use == 0
        time.sleep(0.2)
        assert len(recorder.outcomes) == 1
        assert settled(fake_upstream, lambda s: s["abandoned"] == 1)


def test_hooks_run_once_when_the_client_of_chat_disconnects(fake_upstream: FakeUpstream) -> None:
    fake_upstream.configure(tokens=200, itl=0.05)
    recorder = Recorder()
    app = create_app(fake_settings(fake_upstream))
    with serve_with_state(app) as (url, state):
        state["service"].on_answer(recorder)
        with httpx2.Client(base_url=url, timeout=0.5) as client:
            with pytest.raises(httpx2.ReadTimeout):
                client.post("/chat", json=REQUEST)
        (outcome,) = recorder.wait(1)
        assert outcome.ending == "cancelled"
        assert state["service"].slots.in_use == 0
        assert settled(fake_upstream, lambda s: s["abandoned"] == 1)


def test_a_hook_that_fails_is_logged_and_never_reaches_the_client(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(_: Outcome) -> None:
        raise RuntimeError("hook bug")

    upstream = Upstream([stream_reply(ScriptedStream(sse_bytes(openai_stream("Hi"))))])
    app = create_app(openai_settings(), transport=upstream.transport)
    with TestClient(app) as client:
        client.app_state["service"].on_answer(broken)
        response = client.post("/chat/stream", json=REQUEST)
    assert response.status_code == 200
    assert json.loads(response.text.splitlines()[-1])["context"]["finish_reason"] == "stop"
    assert "completion hook failed" in caplog.text


def test_an_unexpected_failure_after_the_first_keepalive_is_an_error_event() -> None:
    """The transport raises something that is no HTTP error after the first SSE keep-alive."""
    import anyio

    async def handler(_: httpx2.Request) -> httpx2.Response:
        await anyio.sleep(0.4)
        raise ValueError("a bug below the SDK")

    app = create_app(
        openai_settings(sse_keepalive_seconds=0.1, chat_retry_attempts=1),
        transport=httpx2.MockTransport(handler),
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post(
            "/chat/stream", json=REQUEST, headers={"accept": "text/event-stream"}
        )
    assert response.status_code == 200
    assert response.text.startswith(": keep-alive\n\n")
    assert response.text.endswith(
        'event: error\ndata: {"error":{"code":"internal_error",'
        '"message":"The server failed to answer; try again later."}}\n\n'
    )
    assert "a bug below the SDK" not in response.text
