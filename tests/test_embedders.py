"""The remote embedder through the real SDK over a mock transport: URL, auth, body, retries,
batching and the content-hash cache."""

from __future__ import annotations

import time
from typing import Any

import httpx2
import pytest

from chatbackend import errors
from chatbackend.retrieval.factory import build_embedder
from chatbackend.settings import Settings, SettingsError, load_settings
from tests.conftest import AZURE_KEY, OPENAI_KEY
from tests.embedding_upstream import EmbeddingUpstream
from tests.test_providers import FakeCredential

pytestmark = pytest.mark.anyio


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "openai_api_key": OPENAI_KEY,
        "embedding_model": "text-embedding-3-small",
        "embedding_dimensions": 64,
        "chat_retry_backoff_seconds": 0.01,
        **overrides,
    }
    return load_settings(**values)


async def test_openai_request_shape() -> None:
    upstream = EmbeddingUpstream()
    embedder = build_embedder(settings(), transport=upstream.transport)
    try:
        vectors = await embedder.embed(["hello world", "second"])
    finally:
        await embedder.aclose()
    assert len(vectors) == 2 and all(len(v) == 64 for v in vectors)
    request = upstream.requests[0]
    assert str(request.url) == "https://api.openai.com/v1/embeddings"
    assert request.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert upstream.last_json() == {
        "model": "text-embedding-3-small",
        "input": ["hello world", "second"],
        "encoding_format": "float",
        "dimensions": 64,
    }
    assert embedder.model == "text-embedding-3-small" and embedder.dimensions == 64


async def test_azure_with_key_uses_the_v1_endpoint_and_deployment() -> None:
    upstream = EmbeddingUpstream()
    config = settings(
        openai_api_key=None,
        azure_openai_endpoint="https://contoso.openai.azure.com/",
        azure_openai_deployment="chat",
        azure_openai_api_key=AZURE_KEY,
        embedding_model="embed-deployment",
    )
    assert config.embedder == "azure"
    embedder = build_embedder(config, transport=upstream.transport)
    try:
        await embedder.embed(["x"])
    finally:
        await embedder.aclose()
    request = upstream.requests[0]
    assert str(request.url) == "https://contoso.openai.azure.com/openai/v1/embeddings"
    assert AZURE_KEY in request.headers["authorization"]
    assert upstream.last_json()["model"] == "embed-deployment"


async def test_keyless_azure_gets_an_entra_token_and_closes_the_credential() -> None:
    upstream = EmbeddingUpstream()
    credential = FakeCredential()
    config = settings(
        openai_api_key=None,
        azure_openai_endpoint="https://contoso.openai.azure.com/",
        azure_openai_deployment="chat",
        embedding_model="embed-deployment",
    )
    embedder = build_embedder(config, transport=upstream.transport, credential=credential)  # type: ignore[arg-type]
    await embedder.embed(["x"])
    await embedder.aclose()
    assert upstream.requests[0].headers["authorization"] == "Bearer fake-entra-token"
    assert credential.scopes == [("https://cognitiveservices.azure.com/.default",)]
    assert credential.closed


async def test_compatible_server_without_key_sends_no_authorization() -> None:
    upstream = EmbeddingUpstream()
    config = settings(
        openai_api_key=None,
        embedding_provider="compatible",
        embedding_base_url="http://127.0.0.1:9/v1",
        embedding_model="nomic-embed-text",
    )
    embedder = build_embedder(config, transport=upstream.transport)
    await embedder.embed(["x"])
    await embedder.aclose()
    assert str(upstream.requests[0].url) == "http://127.0.0.1:9/v1/embeddings"
    assert "authorization" not in upstream.requests[0].headers


async def test_ada_002_is_not_sent_a_dimensions_parameter() -> None:
    upstream = EmbeddingUpstream()
    embedder = build_embedder(
        settings(embedding_model="text-embedding-ada-002"), transport=upstream.transport
    )
    await embedder.embed(["x"])
    await embedder.aclose()
    assert "dimensions" not in upstream.last_json()


async def test_batches_and_never_embeds_the_same_text_twice() -> None:
    upstream = EmbeddingUpstream()
    embedder = build_embedder(settings(embedding_batch_size=4), transport=upstream.transport)
    texts = [f"text {i}" for i in range(10)]
    first = await embedder.embed([*texts, "text 0"])
    again = await embedder.embed(texts[:3] + ["new"])
    await embedder.aclose()
    assert [len(batch) for batch in upstream.inputs] == [4, 4, 2, 1]
    assert upstream.inputs[-1] == ["new"]
    assert first[0] == first[-1] == again[0]
    assert embedder.embedded == 11


async def test_retries_rate_limits_and_server_errors_within_the_budget() -> None:
    upstream = EmbeddingUpstream(
        failures=[
            httpx2.Response(429, json={"error": {}}, headers={"retry-after-ms": "10"}),
            httpx2.Response(500, json={"error": {"message": "boom"}}),
        ]
    )
    embedder = build_embedder(settings(), transport=upstream.transport)
    vectors = await embedder.embed(["x"])
    await embedder.aclose()
    assert len(upstream.requests) == 3 and len(vectors[0]) == 64


async def test_a_wait_longer_than_the_budget_fails_at_once() -> None:
    upstream = EmbeddingUpstream(
        failures=[httpx2.Response(429, json={"error": {}}, headers={"retry-after": "30"})]
    )
    embedder = build_embedder(settings(chat_retry_budget_seconds=1), transport=upstream.transport)
    started = time.monotonic()
    with pytest.raises(errors.RateLimited) as raised:
        await embedder.embed(["x"])
    await embedder.aclose()
    assert time.monotonic() - started < 1
    assert raised.value.retry_after == 30


async def test_an_auth_failure_is_not_retried_and_its_text_is_dropped() -> None:
    upstream = EmbeddingUpstream(
        failures=[httpx2.Response(401, json={"error": {"message": f"bad key {OPENAI_KEY}"}})]
    )
    embedder = build_embedder(settings(), transport=upstream.transport)
    with pytest.raises(errors.UpstreamAuthFailed) as raised:
        await embedder.embed(["x"])
    await embedder.aclose()
    assert len(upstream.requests) == 1 and OPENAI_KEY not in str(raised.value)


async def test_vectors_of_the_wrong_size_are_refused() -> None:
    upstream = EmbeddingUpstream(dimensions=32)
    embedder = build_embedder(settings(), transport=upstream.transport)
    with pytest.raises(errors.EmbeddingMismatch):
        await embedder.embed(["x"])
    await embedder.aclose()


def test_remote_embedding_settings_are_checked() -> None:
    with pytest.raises(SettingsError, match="EMBEDDING_DIMENSIONS is required"):
        load_settings(openai_api_key=OPENAI_KEY, embedding_model="text-embedding-3-small")
    with pytest.raises(SettingsError, match="EMBEDDING_BASE_URL is required"):
        load_settings(embedding_provider="compatible", embedding_model="m", embedding_dimensions=8)
    assert load_settings().embedder == "embedded"
