"""Health, CORS and the OpenAPI document."""

from __future__ import annotations

from tests.conftest import ClientFactory, openai_settings
from tests.upstream import Upstream, chunks_reply, openai_stream


def _upstream() -> Upstream:
    return Upstream([chunks_reply(openai_stream("unused"))])


def test_health(client_for: ClientFactory) -> None:
    upstream = _upstream()
    with client_for(upstream) as client:
        live = client.get("/health/live")
        ready = client.get("/health/ready")
    assert live.json() == {"status": "ok"}
    assert ready.json() == {"status": "ready", "provider": "openai", "model": "gpt-4.1-mini"}
    assert upstream.requests == []


def test_no_cors_origin_is_allowed_by_default(client_for: ClientFactory) -> None:
    with client_for(_upstream()) as client:
        response = client.options(
            "/chat",
            headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
        )
    assert "access-control-allow-origin" not in response.headers


def test_cors_origins_come_from_settings(client_for: ClientFactory) -> None:
    settings = openai_settings(cors_origins="https://app.example, https://other.example")
    with client_for(_upstream(), settings) as client:
        allowed = client.options(
            "/chat/stream",
            headers={"origin": "https://app.example", "access-control-request-method": "POST"},
        )
        refused = client.options(
            "/chat/stream",
            headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
        )
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "access-control-allow-origin" not in refused.headers


def test_openapi_documents_the_protocol_with_examples(client_for: ClientFactory) -> None:
    with client_for(_upstream()) as client:
        docs = client.get("/docs")
        schema = client.get("/openapi.json").json()
    assert docs.status_code == 200
    stream = schema["paths"]["/chat/stream"]["post"]
    assert {"application/x-ndjson", "text/event-stream"} <= set(
        stream["responses"]["200"]["content"]
    )
    assert {"413", "422", "429", "502", "504"} <= set(stream["responses"])
    components = schema["components"]["schemas"]
    assert components["ChatRequest"]["examples"][0]["messages"]
    assert components["ChatResponse"]["examples"][0]["message"]["role"] == "assistant"
    chat = schema["paths"]["/chat"]["post"]
    assert chat["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "ChatResponse"
    )
