"""Embeddings from Azure OpenAI, OpenAI or a compatible server, through the SDK's endpoint.

The client is built like the chat provider's (same base URLs, keyless Azure through a bearer token
provider); the SDK does not retry, this module does, within ``CHAT_RETRY_BUDGET_SECONDS``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeVar

import anyio
import httpx2
import openai

from chatbackend import errors
from chatbackend.providers.openai_family import ApiKey, to_chat_error
from chatbackend.retrieval.embedder import Vector
from chatbackend.retrieval.tokens import count_o200k
from chatbackend.settings import Settings

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

RemoteKind = Literal["azure", "openai", "compatible"]
OPENAI_BASE_URL = "https://api.openai.com/v1"
COGNITIVE_SERVICES_SCOPE = "https://cognitiveservices.azure.com/.default"
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
    timeout = httpx2.Timeout(
        connect=settings.chat_connect_timeout,
        read=settings.chat_first_token_timeout,
        write=settings.chat_connect_timeout,
        pool=settings.chat_connect_timeout,
    )
    key = (settings.embedding_api_key or settings.chat_api_key) if kind == "compatible" else None
    hooks = {"request": [_drop_authorization]} if kind == "compatible" and key is None else {}
    http_client = (
        openai.DefaultAsyncHttpxClient(transport=transport, timeout=timeout, event_hooks=hooks)
        if transport is not None
        else openai.DefaultAioHttpClient(timeout=timeout, event_hooks=hooks)
    )
    on_close: Callable[[], Awaitable[None]] | None = None
    client: openai.AsyncOpenAI
    if kind == "azure":
        client, on_close = _azure_client(settings, model, http_client, credential)
    elif kind == "openai":
        assert settings.openai_api_key is not None  # checked by Settings
        client = openai.AsyncOpenAI(
            api_key=settings.openai_api_key.get_secret_value(),
            base_url=settings.openai_base_url or OPENAI_BASE_URL,
            http_client=http_client,
            max_retries=0,
        )
    else:
        client = openai.AsyncOpenAI(
            api_key=key.get_secret_value() if key else "unused",
            base_url=settings.embedding_base_url or settings.chat_base_url or "",
            http_client=http_client,
            max_retries=0,
        )
    retry = RetryPolicy(
        attempts=settings.chat_retry_attempts,
        budget_seconds=settings.chat_retry_budget_seconds,
        backoff_seconds=settings.chat_retry_backoff_seconds,
    )
    return RemoteEmbedder(
        client=client,
        model=model,
        dimensions=dimensions,
        # text-embedding-ada-002 has one size and refuses the parameter (as the Azure sample does).
        send_dimensions="ada-002" not in model,
        retry=retry,
        on_close=on_close,
    )


def _azure_client(
    settings: Settings,
    deployment: str,
    http_client: httpx2.AsyncClient,
    credential: AsyncTokenCredential | None,
) -> tuple[openai.AsyncOpenAI, Callable[[], Awaitable[None]] | None]:
    """Like the chat provider: the v1 endpoint, or the deployment path with
    ``AZURE_OPENAI_API_VERSION``; a key, or an Entra token from the same credential chain."""
    assert settings.azure_openai_endpoint is not None  # checked by Settings
    endpoint = settings.azure_openai_endpoint.rstrip("/")
    key = settings.azure_openai_api_key
    token_provider: Callable[[], Awaitable[str]] | None = None
    on_close: Callable[[], Awaitable[None]] | None = None
    if key is None:
        from azure.identity.aio import get_bearer_token_provider

        from chatbackend.providers import _azure_credential

        owned = credential or _azure_credential(settings.azure_client_id)
        token_provider = get_bearer_token_provider(owned, COGNITIVE_SERVICES_SCOPE)
        on_close = owned.close
    if settings.azure_openai_api_version:
        client: openai.AsyncOpenAI = openai.AsyncAzureOpenAI(
            azure_endpoint=endpoint,
            azure_deployment=deployment,
            api_version=settings.azure_openai_api_version,
            api_key=key.get_secret_value() if key is not None else None,
            azure_ad_token_provider=token_provider,
            http_client=http_client,
            max_retries=0,
        )
        return client, on_close
    api_key: ApiKey = key.get_secret_value() if key is not None else token_provider  # type: ignore[assignment]
    client = openai.AsyncOpenAI(
        api_key=api_key, base_url=f"{endpoint}/openai/v1/", http_client=http_client, max_retries=0
    )
    return client, on_close


async def _drop_authorization(request: httpx2.Request) -> None:
    request.headers.pop("Authorization", None)
