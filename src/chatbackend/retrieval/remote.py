"""Embeddings from Azure OpenAI, OpenAI or a compatible server, through the SDK's endpoint.

The SDK client is built by ``providers.clients``, as the chat provider's is (same base URLs,
keyless Azure through a bearer token provider); the SDK does not retry, this module does, within
``CHAT_RETRY_BUDGET_SECONDS``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeVar

import anyio
import httpx2
import openai

from chatbackend import errors
from chatbackend.providers.clients import (
    OPENAI_BASE_URL,
    AzureEndpoint,
    Endpoint,
    OpenAIEndpoint,
    sdk_client,
)
from chatbackend.providers.openai_family import to_chat_error
from chatbackend.retrieval.embedder import Vector
from chatbackend.retrieval.tokens import count_o200k
from chatbackend.settings import Settings

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

RemoteKind = Literal["azure", "openai", "compatible"]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int
    budget_seconds: float
    backoff_seconds: float

    async def run(self, call: Callable[[], Awaitable[T]]) -> T:
        waited = 0.0
        for attempt in range(1, self.attempts + 1):
            try:
                return await call()
            except errors.ChatError as exc:
                delay = self._delay(exc, attempt, waited)
            await anyio.sleep(delay)
            waited += delay
        raise AssertionError("unreachable: the last attempt raises")  # pragma: no cover

    def _delay(self, exc: errors.ChatError, attempt: int, waited: float) -> float:
        if not exc.retryable or attempt >= self.attempts:
            raise exc
        backoff = self.backoff_seconds * 2 ** (attempt - 1)
        delay = exc.retry_after if exc.retry_after is not None else backoff
        if delay > self.budget_seconds - waited:
            raise exc
        return delay


class RemoteEmbedder:
    """One ``POST /embeddings`` per batch; vectors come back in input order."""

    def __init__(
        self,
        *,
        client: openai.AsyncOpenAI,
        model: str,
        dimensions: int,
        send_dimensions: bool,
        retry: RetryPolicy,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._client = client
        self._model = model
        self.model = model
        self.dimensions = dimensions
        self._send_dimensions = send_dimensions
        self._retry = retry
        self._on_close = on_close

    async def load(self) -> None:
        return None

    def count_tokens(self, text: str) -> int:
        return count_o200k(text)

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        if not texts:
            return []
        return await self._retry.run(lambda: self._once(list(texts)))

    async def _once(self, texts: list[str]) -> list[Vector]:
        try:
            response = await self._client.embeddings.create(
                model=self._model,
                input=texts,
                encoding_format="float",
                dimensions=self.dimensions if self._send_dimensions else openai.omit,
            )
        except (openai.APIError, httpx2.HTTPError) as exc:
            raise to_chat_error(exc) from None
        vectors = [item.embedding for item in sorted(response.data, key=lambda d: d.index)]
        if len(vectors) != len(texts) or any(len(v) != self.dimensions for v in vectors):
            raise errors.EmbeddingMismatch()
        return vectors

    async def aclose(self) -> None:
        await self._client.close()
        if self._on_close is not None:
            await self._on_close()


def build_remote_embedder(
    settings: Settings,
    kind: RemoteKind,
    *,
    transport: httpx2.AsyncBaseTransport | None = None,
    credential: AsyncTokenCredential | None = None,
) -> RemoteEmbedder:
    """The embedder for ``kind``, authenticated like the chat provider of that kind."""
    model = settings.embedding_model
    dimensions = settings.embedding_dimensions
    assert model is not None and dimensions is not None  # checked by Settings
    made = sdk_client(
        _endpoint(settings, kind, model),
        connect_timeout=settings.chat_connect_timeout,
        read_timeout=settings.chat_first_token_timeout,
        transport=transport,
        credential=credential,
    )
    retry = RetryPolicy(
        attempts=settings.chat_retry_attempts,
        budget_seconds=settings.chat_retry_budget_seconds,
        backoff_seconds=settings.chat_retry_backoff_seconds,
    )
    return RemoteEmbedder(
        client=made.client,
        model=model,
        dimensions=dimensions,
        # text-embedding-ada-002 has one size and refuses the parameter (as the Azure sample does).
        send_dimensions="ada-002" not in model,
        retry=retry,
        on_close=made.on_close,
    )


def _endpoint(settings: Settings, kind: RemoteKind, model: str) -> Endpoint:
    """The chat provider's endpoint of ``kind``; on Azure, ``model`` is the deployment."""
    if kind == "azure":
        assert settings.azure_openai_endpoint is not None  # checked by Settings
        key = settings.azure_openai_api_key
        return AzureEndpoint(
            settings.azure_openai_endpoint,
            model,
            api_key=key.get_secret_value() if key is not None else None,
            api_version=settings.azure_openai_api_version,
            client_id=settings.azure_client_id,
        )
    if kind == "openai":
        assert settings.openai_api_key is not None  # checked by Settings
        return OpenAIEndpoint(
            settings.openai_base_url or OPENAI_BASE_URL,
            api_key=settings.openai_api_key.get_secret_value(),
        )
    key = settings.embedding_api_key or settings.chat_api_key
    return OpenAIEndpoint(
        settings.embedding_base_url or settings.chat_base_url or "",
        api_key=key.get_secret_value() if key else None,
    )
