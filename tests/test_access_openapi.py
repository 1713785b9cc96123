"""The API docs follow DOCS_ENABLED; the OpenAPI document tells the key schemes and 401/429."""

from __future__ import annotations

from chatbackend.app import create_app
from tests.conftest import ClientFactory, openai_settings
from tests.upstream import Upstream, chunks_reply, openai_stream


def _upstream() -> Upstream:
    return Upstream([chunks_reply(openai_stream("unused"))])


def test_docs_can_be_turned_off(client_for: ClientFactory) -> None:
    with client_for(_upstream(), openai_settings(docs_enabled=False)) as client:
        paths = ["/docs", "/redoc", "/openapi.json"]
        assert [client.get(path).status_code for path in paths] == [404, 404, 404]
        assert client.get("/health/live").status_code == 200


def test_the_document_names_the_key_schemes_and_the_access_errors() -> None:
    settings = openai_settings(auth_mode="api-key", rate_limit_requests_per_minute=5)
    schema = create_app(settings).openapi()
    assert set(schema["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    chat = schema["paths"]["/chat/stream"]["post"]
    assert chat["security"] == [{"bearer": []}, {"apiKey": []}]
    assert {"401", "429"} <= set(chat["responses"])
    live = schema["paths"]["/health/live"]["get"]
    assert "security" not in live and "401" not in live["responses"]


def test_without_keys_the_document_has_no_security(client_for: ClientFactory) -> None:
    with client_for(_upstream()) as client:
        schema = client.get("/openapi.json").json()
    assert "securitySchemes" not in schema.get("components", {})
    assert "401" not in schema["paths"]["/chat"]["post"]["responses"]
