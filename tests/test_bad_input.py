"""Every malformed request gets a 4xx in the protocol's error shape; nothing reaches upstream."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import ClientFactory, openai_settings
from tests.upstream import Upstream, chunks_reply, openai_stream

USER = {"role": "user", "content": "hi"}
LIMITS = {"chat_max_messages": 3, "chat_max_message_chars": 20, "chat_max_body_bytes": 2048}


@pytest.mark.parametrize("route", ["/chat", "/chat/stream"])
@pytest.mark.parametrize(
    ("body", "status", "code", "names"),
    [
        (
            {"messages": [{"role": "bot", "content": "hi"}]},
            422,
            "invalid_request",
            "messages[0].role",
        ),
        ({"messages": []}, 422, "invalid_request", "messages"),
        ({}, 422, "invalid_request", "messages"),
        (
            {"messages": [{"role": "user", "content": "x" * 21}]},
            422,
            "invalid_request",
            "messages[0].content",
        ),
        ({"messages": [USER] * 4}, 422, "invalid_request", "messages"),
        (
            {"messages": [{"role": "user", "content": 42}]},
            422,
            "invalid_request",
            "messages[0].content",
        ),
        ({"messages": "hi"}, 422, "invalid_request", "messages"),
        (
            {"messages": [USER], "context": {"overrides": {"temprature": 1}}},
            422,
            "invalid_request",
            "context.overrides.temprature",
        ),
        (
            {"messages": [USER], "context": {"overrides": {"temperature": 3}}},
            422,
            "invalid_request",
            "context.overrides.temperature",
        ),
        (
            {"messages": [USER], "context": {"overrides": {"max_tokens": "many"}}},
            422,
            "invalid_request",
            "context.overrides.max_tokens",
        ),
        (
            {"messages": [USER], "context": {"overrides": {"stop": ["a"] * 5}}},
            422,
            "invalid_request",
            "context.overrides.stop",
        ),
        ({"messages": [USER], "extra": 1}, 422, "invalid_request", "extra"),
    ],
)
def test_invalid_requests(
    client_for: ClientFactory, route: str, body: Any, status: int, code: str, names: str
) -> None:
    upstream = Upstream([chunks_reply(openai_stream("unused"))])
    with client_for(upstream, openai_settings(**LIMITS)) as client:
        response = client.post(route, json=body)
    assert response.status_code == status
    assert set(response.json()) == {"error"}
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"].startswith(names)
    assert upstream.requests == []


@pytest.mark.parametrize("payload", [b"{not json", b"", b'{"messages": [}', b"\xff\xfe"])
def test_invalid_json_is_400(client_for: ClientFactory, payload: bytes) -> None:
    upstream = Upstream([chunks_reply(openai_stream("unused"))])
    with client_for(upstream) as client:
        response = client.post(
            "/chat/stream", content=payload, headers={"content-type": "application/json"}
        )
    assert response.status_code in (400, 422)
    assert response.json()["error"]["code"] in ("invalid_json", "invalid_request")
    if payload:
        assert response.status_code == 400
    assert upstream.requests == []


def test_huge_body_is_413(client_for: ClientFactory) -> None:
    upstream = Upstream([chunks_reply(openai_stream("unused"))])
    body = json.dumps({"messages": [{"role": "user", "content": "x" * 5000}]}).encode()
    with client_for(upstream, openai_settings(**LIMITS)) as client:
        declared = client.post("/chat", content=body, headers={"content-type": "application/json"})
        chunked = client.post(
            "/chat",
            content=iter([body[:1000], body[1000:]]),
            headers={"content-type": "application/json"},
        )
    for response in (declared, chunked):
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "body_too_large"
    assert upstream.requests == []


def test_unknown_route_and_method_use_the_error_shape(client_for: ClientFactory) -> None:
    with client_for(Upstream([chunks_reply(openai_stream("unused"))])) as client:
        missing = client.get("/nope")
        wrong_method = client.get("/chat")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"


def test_validation_errors_do_not_echo_content(client_for: ClientFactory) -> None:
    with client_for(Upstream([chunks_reply(openai_stream("unused"))])) as client:
        response = client.post(
            "/chat", json={"messages": [{"role": "wizard", "content": "my password is hunter2"}]}
        )
    assert response.status_code == 422
    assert "hunter2" not in response.text
    assert "wizard" not in response.text


def test_default_system_prompt_is_prepended_unless_the_request_has_one(
    client_for: ClientFactory,
) -> None:
    upstream = Upstream([chunks_reply(openai_stream("ok"))])
    settings = openai_settings(chat_system_prompt="Be brief.")
    with client_for(upstream, settings) as client:
        client.post("/chat", json={"messages": [USER]})
        default_messages = upstream.last_json()["messages"]
        own = {"role": "system", "content": "Be verbose."}
        client.post("/chat", json={"messages": [own, USER]})
        own_messages = upstream.last_json()["messages"]
    assert default_messages == [{"role": "system", "content": "Be brief."}, USER]
    assert own_messages == [own, USER]
