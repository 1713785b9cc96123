"""Exact bytes of /chat, /chat/stream and its SSE form, with the real SDK over a mock transport."""

from __future__ import annotations

import json
from typing import Any

import httpx2
from pytest_snapshot.plugin import Snapshot

from tests.conftest import ClientFactory, azure_settings, openai_settings
from tests.upstream import (
    ScriptedStream,
    Upstream,
    azure_stream,
    chunks_reply,
    error_reply,
    openai_stream,
    sse_bytes,
    stream_reply,
)

REQUEST: dict[str, Any] = {
    "messages": [{"role": "user", "content": "What is the capital of France?"}],
    "context": {"overrides": {"temperature": 0.2, "max_tokens": 50, "seed": 7, "stop": "END"}},
    "sessionState": {"conversation": "42"},
}
SSE_HEADERS = {"accept": "text/event-stream"}


def http_text(response: httpx2.Response) -> str:
    """Status, the headers a client relies on, then the body exactly as sent."""
    lines = [f"HTTP {response.status_code}", f"content-type: {response.headers['content-type']}"]
    if "retry-after" in response.headers:
        lines.append(f"retry-after: {response.headers['retry-after']}")
    return "\n".join(lines) + "\n\n" + response.text


def json_text(response: httpx2.Response) -> str:
    """Like ``http_text`` with the JSON body pretty-printed, after checking it is compact JSON."""
    body = response.json()
    assert response.content == json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    head = http_text(response).split("\n\n")[0]
    return head + "\n\n" + json.dumps(body, indent=2) + "\n"


def upstream_text(upstream: Upstream) -> str:
    """What the SDK sent upstream: method, URL, auth header kind and the JSON body."""
    request = upstream.requests[-1]
    auth = "api-key" if "api-key" in request.headers else request.headers["authorization"][:7]
    body = json.dumps(upstream.last_json(), indent=2)
    return f"{request.method} {request.url}\nauth: {auth}\n\n{body}\n"


def test_openai_stream(client_for: ClientFactory, snapshot: Snapshot) -> None:
    upstream = Upstream([chunks_reply(openai_stream("The capital", " of France", " is Paris."))])
    with client_for(upstream, openai_settings()) as client:
        response = client.post("/chat/stream", json=REQUEST)
    snapshot.assert_match(http_text(response), "response.txt")
    snapshot.assert_match(upstream_text(upstream), "upstream_request.txt")


def test_azure_stream(client_for: ClientFactory, snapshot: Snapshot) -> None:
    upstream = Upstream([chunks_reply(azure_stream("Paris", " is the capital."))])
    with client_for(upstream, azure_settings()) as client:
        response = client.post("/chat/stream", json=REQUEST)
    snapshot.assert_match(http_text(response), "response.txt")
    snapshot.assert_match(upstream_text(upstream), "upstream_request.txt")


def test_azure_stream_as_sse(client_for: ClientFactory, snapshot: Snapshot) -> None:
    upstream = Upstream([chunks_reply(azure_stream("Paris", " is the capital."))])
    with client_for(upstream, azure_settings()) as client:
        response = client.post("/chat/stream", json=REQUEST, headers=SSE_HEADERS)
    snapshot.assert_match(http_text(response), "response.txt")


def test_azure_chat_json(client_for: ClientFactory, snapshot: Snapshot) -> None:
    upstream = Upstream([chunks_reply(azure_stream("Paris", " is the capital."))])
    with client_for(upstream, azure_settings()) as client:
        response = client.post("/chat", json=REQUEST)
    snapshot.assert_match(json_text(response), "response.txt")


def test_openai_chat_json(client_for: ClientFactory, snapshot: Snapshot) -> None:
    upstream = Upstream([chunks_reply(openai_stream("Paris."))])
    with client_for(upstream, openai_settings()) as client:
        response = client.post("/chat", json=REQUEST)
    snapshot.assert_match(json_text(response), "response.txt")


AZURE_FILTER_REFUSAL = {
    "error": {
        "message": "The response was filtered due to the prompt triggering Azure OpenAI's content "
        "management policy. Please modify your prompt and retry.",
        "type": None,
        "param": "prompt",
        "code": "content_filter",
        "status": 400,
        "innererror": {
            "code": "ResponsibleAIPolicyViolation",
            "content_filter_result": {
                "hate": {"filtered": False, "severity": "safe"},
                "jailbreak": {"filtered": False, "detected": False},
                "self_harm": {"filtered": False, "severity": "safe"},
                "sexual": {"filtered": False, "severity": "safe"},
                "violence": {"filtered": True, "severity": "medium"},
            },
        },
    }
}


def test_content_filter_refusal(client_for: ClientFactory, snapshot: Snapshot) -> None:
    upstream = Upstream([error_reply(400, AZURE_FILTER_REFUSAL)])
    with client_for(upstream, azure_settings()) as client:
        streamed = client.post("/chat/stream", json=REQUEST)
        whole = client.post("/chat", json=REQUEST)
        sse = client.post("/chat/stream", json=REQUEST, headers=SSE_HEADERS)
    snapshot.assert_match(json_text(streamed), "stream.txt")
    assert whole.status_code == sse.status_code == 400
    assert whole.json() == sse.json() == streamed.json()
    assert len(upstream.requests) == 3, "a refusal is never retried"


def test_content_filter_mid_stream_is_a_finish_reason(
    client_for: ClientFactory, snapshot: Snapshot
) -> None:
    chunks = azure_stream("Here is how", finish_reason="content_filter")
    upstream = Upstream([chunks_reply(chunks)])
    with client_for(upstream, azure_settings()) as client:
        response = client.post("/chat/stream", json=REQUEST)
    snapshot.assert_match(http_text(response), "response.txt")


def test_rate_limited_beyond_budget_answers_429_at_once(
    client_for: ClientFactory, snapshot: Snapshot
) -> None:
    body = {"error": {"code": "429", "message": "Requests to the ChatCompletions_Create..."}}
    upstream = Upstream([error_reply(429, body, {"retry-after": "37"})])
    with client_for(upstream, azure_settings(chat_retry_budget_seconds=10)) as client:
        response = client.post("/chat/stream", json=REQUEST)
    snapshot.assert_match(json_text(response), "response.txt")
    assert len(upstream.requests) == 1, "a wait longer than the budget is not slept through"


def test_server_error_then_success_is_retried(
    client_for: ClientFactory, snapshot: Snapshot
) -> None:
    upstream = Upstream(
        [
            error_reply(500, {"error": {"message": "The server had an error"}}),
            chunks_reply(openai_stream("Paris.")),
        ]
    )
    with client_for(upstream) as client:
        response = client.post("/chat/stream", json=REQUEST)
    snapshot.assert_match(http_text(response), "response.txt")
    assert len(upstream.requests) == 2
    assert upstream.requests[0].content == upstream.requests[1].content


def test_mid_stream_break_ends_with_an_error_line(
    client_for: ClientFactory, snapshot: Snapshot
) -> None:
    frames = sse_bytes(openai_stream("The capital", " of France", " is Paris."))
    upstream = Upstream([stream_reply(ScriptedStream(frames, break_after=3))])
    with client_for(upstream) as client:
        response = client.post("/chat/stream", json=REQUEST)
        sse = client.post("/chat/stream", json=REQUEST, headers=SSE_HEADERS)
    snapshot.assert_match(http_text(response), "response.txt")
    snapshot.assert_match(http_text(sse), "sse.txt")
    assert len(upstream.requests) == 2, "nothing is retried once bytes have reached the client"


def full_upstream_text(upstream: Upstream) -> str:
    """``upstream_text`` with the auth header shown in full (test credentials only)."""
    request = upstream.requests[-1]
    auth = {k: v for k, v in request.headers.items() if k in ("api-key", "authorization")}
    body = json.dumps(upstream.last_json(), indent=2)
    headers = "\n".join(f"{k}: {v}" for k, v in sorted(auth.items()))
    return f"{request.method} {request.url}\n{headers}\n\n{body}\n"


def test_azure_api_version_with_key(client_for: ClientFactory, snapshot: Snapshot) -> None:
    """``AZURE_OPENAI_API_VERSION`` set: ``AsyncAzureOpenAI``, the deployment path, ``api-key``."""
    upstream = Upstream([chunks_reply(azure_stream("Paris", " is the capital."))])
    settings = azure_settings(azure_openai_api_version="2024-10-21")
    with client_for(upstream, settings) as client:
        response = client.post("/chat/stream", json=REQUEST)
    snapshot.assert_match(http_text(response), "response.txt")
    snapshot.assert_match(full_upstream_text(upstream), "upstream_request.txt")


def test_azure_api_version_keyless(snapshot: Snapshot) -> None:
    from fastapi.testclient import TestClient

    from chatbackend.app import create_app
    from tests.test_providers import COGNITIVE_SCOPE, FakeCredential

    upstream = Upstream([chunks_reply(azure_stream("Paris."))])
    settings = azure_settings(azure_openai_api_key=None, azure_openai_api_version="2024-10-21")
    credential = FakeCredential()
    app = create_app(settings, transport=upstream.transport, credential=credential)  # type: ignore[arg-type]
    with TestClient(app) as client:
        response = client.post("/chat", json=REQUEST)
    assert response.status_code == 200
    assert credential.scopes == [(COGNITIVE_SCOPE,)]
    assert credential.closed
    snapshot.assert_match(full_upstream_text(upstream), "upstream_request.txt")
