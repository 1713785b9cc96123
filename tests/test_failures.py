"""Timeouts, retries, the retry budget and the status a client gets for each upstream failure."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conftest import OPENAI_KEY, ClientFactory, openai_settings
from tests.upstream import (
    ScriptedStream,
    Upstream,
    chunks_reply,
    connection_error_reply,
    error_reply,
    openai_stream,
    sse_bytes,
    stream_reply,
)

REQUEST: dict[str, Any] = {"messages": [{"role": "user", "content": "Tell me a secret story"}]}
SSE = {"accept": "text/event-stream"}
ROUTES = ["/chat", "/chat/stream"]
TIMEOUT_LINE = (
    '{"error":{"code":"upstream_timeout","message":"The model provider did not answer in time."}}'
)


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    ("status", "upstream_body", "expected_status", "expected_code"),
    [
        (
            401,
            {"error": {"message": f"Incorrect API key provided: {OPENAI_KEY[:12]}***"}},
            502,
            "upstream_auth_failed",
        ),
        (
            403,
            {"error": {"message": "PermissionDenied: principal lacks data action"}},
            502,
            "upstream_forbidden",
        ),
        (
            404,
            {"error": {"code": "DeploymentNotFound", "message": "no such deployment"}},
            502,
            "upstream_model_not_found",
        ),
        (
            400,
            {"error": {"message": "maximum context length is 128000 tokens"}},
            400,
            "upstream_rejected",
        ),
    ],
)
def test_upstream_client_errors_are_not_retried_and_not_echoed(
    client_for: ClientFactory,
    route: str,
    status: int,
    upstream_body: dict[str, Any],
    expected_status: int,
    expected_code: str,
) -> None:
    upstream = Upstream([error_reply(status, upstream_body)])
    with client_for(upstream) as client:
        response = client.post(route, json=REQUEST)
    assert response.status_code == expected_status
    assert response.json()["error"]["code"] == expected_code
    assert upstream_body["error"]["message"] not in response.text
    assert OPENAI_KEY[:12] not in response.text
    assert len(upstream.requests) == 1


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503])
def test_retryable_statuses_are_retried_then_succeed(
    client_for: ClientFactory, status: int
) -> None:
    upstream = Upstream([error_reply(status, {"error": {}}), chunks_reply(openai_stream("ok"))])
    with client_for(upstream) as client:
        response = client.post("/chat", json=REQUEST)
    assert response.status_code == 200
    assert response.json()["message"]["content"] == "ok"
    assert len(upstream.requests) == 2


def test_persistent_server_errors_give_502_after_the_attempt_limit(
    client_for: ClientFactory,
) -> None:
    upstream = Upstream([error_reply(500, {"error": {"message": "boom"}})])
    with client_for(upstream, openai_settings(chat_retry_attempts=3)) as client:
        response = client.post("/chat/stream", json=REQUEST)
    assert response.status_code == 502
    assert response.json() == {
        "error": {"code": "upstream_error", "message": "The model provider failed to answer."}
    }
    assert len(upstream.requests) == 3


def test_connection_errors_give_502(client_for: ClientFactory) -> None:
    upstream = Upstream([connection_error_reply])
    with client_for(upstream, openai_settings(chat_retry_attempts=2)) as client:
        response = client.post("/chat", json=REQUEST)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_unreachable"
    assert len(upstream.requests) == 2


def test_retry_after_ms_is_honoured(client_for: ClientFactory) -> None:
    upstream = Upstream(
        [
            error_reply(429, {"error": {}}, {"retry-after-ms": "300", "retry-after": "5"}),
            chunks_reply(openai_stream("ok")),
        ]
    )
    with client_for(upstream) as client:
        started = time.monotonic()
        response = client.post("/chat/stream", json=REQUEST)
        elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert len(upstream.requests) == 2
    assert 0.3 <= elapsed < 3, "the wait follows retry-after-ms, not retry-after"


def test_rate_limit_within_budget_but_out_of_attempts_passes_retry_after_on(
    client_for: ClientFactory,
) -> None:
    upstream = Upstream([error_reply(429, {"error": {}}, {"retry-after": "0"})])
    with client_for(upstream, openai_settings(chat_retry_attempts=2)) as client:
        response = client.post("/chat", json=REQUEST)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert len(upstream.requests) == 2


def test_rate_limit_longer_than_the_budget_left_is_not_slept(client_for: ClientFactory) -> None:
    upstream = Upstream(
        [
            error_reply(429, {"error": {}}, {"retry-after": "0.2"}),
            error_reply(429, {"error": {}}, {"retry-after": "20"}),
        ]
    )
    settings = openai_settings(chat_retry_budget_seconds=5, chat_retry_attempts=5)
    with client_for(upstream, settings) as client:
        started = time.monotonic()
        response = client.post("/chat/stream", json=REQUEST)
    assert time.monotonic() - started < 2
    assert response.status_code == 429
    assert response.headers["retry-after"] == "20"
    assert len(upstream.requests) == 2


@pytest.mark.parametrize("route", ROUTES)
def test_first_token_timeout_gives_504_and_closes_the_upstream(
    client_for: ClientFactory, route: str
) -> None:
    stream = ScriptedStream(sse_bytes(openai_stream("late")), stall_after=0)
    upstream = Upstream([stream_reply(stream)])
    with client_for(upstream, openai_settings(chat_first_token_timeout=0.3)) as client:
        response = client.post(route, json=REQUEST)
        assert stream.closed.is_set()
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "upstream_timeout"
    assert len(upstream.requests) == 1, "a timeout is not retried: it would double the wait"


def test_whole_response_timeout_mid_stream_ends_with_an_error_line(
    client_for: ClientFactory,
) -> None:
    stream = ScriptedStream(sse_bytes(openai_stream("a", "b", "c", "d")), delay=0.15)
    upstream = Upstream([stream_reply(stream)])
    settings = openai_settings(chat_first_token_timeout=0.5, chat_response_timeout=0.5)
    with client_for(upstream, settings) as client:
        response = client.post("/chat/stream", json=REQUEST)
        assert stream.closed.is_set()
    lines = response.text.splitlines()
    assert response.status_code == 200
    assert lines[0] == '{"delta":{"role":"assistant"}}'
    assert lines[-1] == TIMEOUT_LINE


def test_stream_without_finish_reason_is_incomplete(client_for: ClientFactory) -> None:
    frames = sse_bytes(openai_stream("cut")[:2])
    upstream = Upstream([stream_reply(ScriptedStream(frames))])
    with client_for(upstream) as client:
        response = client.post("/chat", json=REQUEST)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_incomplete"


def test_sse_sends_keepalives_while_waiting_for_the_first_token(
    client_for: ClientFactory,
) -> None:
    stream = ScriptedStream(sse_bytes(openai_stream("hi")), delay=0.25)
    upstream = Upstream([stream_reply(stream)])
    with client_for(upstream, openai_settings(sse_keepalive_seconds=0.1)) as client:
        response = client.post("/chat/stream", json=REQUEST, headers=SSE)
    assert response.status_code == 200
    assert response.text.startswith(": keep-alive\n\n")
    assert 'data: {"delta":{"role":"assistant"}}\n\n' in response.text
    assert 'data: {"delta":{"content":"hi"}}\n\n' in response.text


def test_sse_failure_before_the_first_keepalive_has_a_real_status(
    client_for: ClientFactory,
) -> None:
    upstream = Upstream([error_reply(401, {"error": {}})])
    with client_for(upstream, openai_settings(sse_keepalive_seconds=5)) as client:
        response = client.post("/chat/stream", json=REQUEST, headers=SSE)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_auth_failed"


def test_sse_failure_after_a_keepalive_is_an_error_event(client_for: ClientFactory) -> None:
    stream = ScriptedStream(sse_bytes(openai_stream("never")), stall_after=0)
    upstream = Upstream([stream_reply(stream)])
    settings = openai_settings(sse_keepalive_seconds=0.1, chat_first_token_timeout=0.35)
    with client_for(upstream, settings) as client:
        response = client.post("/chat/stream", json=REQUEST, headers=SSE)
    assert response.status_code == 200
    assert response.text.startswith(": keep-alive\n\n")
    assert response.text.endswith(f"event: error\ndata: {TIMEOUT_LINE}\n\n")


def test_logs_hold_neither_secrets_nor_prompt_text(
    client_for: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    frames = sse_bytes(openai_stream("a", "b"))
    upstream = Upstream(
        [
            error_reply(401, {"error": {"message": f"bad key {OPENAI_KEY}"}}),
            stream_reply(ScriptedStream(frames, break_after=2)),
        ]
    )
    with client_for(upstream) as client:
        client.post("/chat", json=REQUEST)
        client.post("/chat/stream", json=REQUEST)
    assert "serving provider=openai model=gpt-4.1-mini auth=api-key" in caplog.text
    assert OPENAI_KEY not in caplog.text
    assert OPENAI_KEY[8:20] not in caplog.text
    assert "secret story" not in caplog.text
