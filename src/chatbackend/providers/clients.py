"""The openai SDK client for one endpoint, keyed or keyless: the chat providers' and the remote
embedder's, built the same way.

Azure is reached on its v1 endpoint with ``AsyncOpenAI``, or, with an api-version, on the
deployment path with ``AsyncAzureOpenAI``; without a key, with an Entra token from managed
identity or the developer's ``azd``/``az`` login. An OpenAI-compatible server without a key gets
no ``Authorization`` header at all. The SDK never retries: its callers retry within their budget.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx2
import openai

from chatbackend.providers.base import AuthMode
from chatbackend.providers.openai_family import ApiKey, CloseHook, TokenCheck

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

COGNITIVE_SERVICES_SCOPE = "https://cognitiveservices.azure.com/.default"
OPENAI_BASE_URL = "https://api.openai.com/v1"
Hooks = dict[str, list[Callable[[httpx2.Request], Awaitable[None]]]]


@dataclass(frozen=True, slots=True)
class AzureEndpoint:
    """An Azure OpenAI resource's deployment; no ``api_key`` means an Entra token."""

    endpoint: str
    deployment: str
    api_key: str | None = None
    api_version: str | None = None
    # The user-assigned managed identity to take tokens as (Container Apps).
    client_id: str | None = None


@dataclass(frozen=True, slots=True)
class OpenAIEndpoint:
    """OpenAI or a compatible server; no ``api_key`` means no ``Authorization`` header."""

    base_url: str
    api_key: str | None = None
    auth_mode: AuthMode = "api-key"


Endpoint = AzureEndpoint | OpenAIEndpoint


@dataclass(frozen=True, slots=True)
class SdkClient:
    client: openai.AsyncOpenAI
    auth_mode: AuthMode
    # Keyless Azure: the token provider (a readiness check) and the close of the credential.
    token: TokenCheck | None = None
    on_close: CloseHook | None = None


def sdk_client(
    endpoint: Endpoint,
    *,
    connect_timeout: float,
    read_timeout: float,
    pool_size: int | None = None,
    transport: httpx2.AsyncBaseTransport | None = None,
    credential: AsyncTokenCredential | None = None,
) -> SdkClient:
    """An SDK client for ``endpoint``.

    ``read_timeout`` bounds the silence between two reads; ``pool_size`` is how many connections
    are opened and kept alive (the SDK's default when ``None``). ``transport`` replaces the HTTP
    transport (tests); ``credential`` the Azure credential keyless auth would otherwise create.
    The returned ``on_close`` closes the credential the client uses.
    """
    timeout = httpx2.Timeout(
        connect=connect_timeout, read=read_timeout, write=connect_timeout, pool=connect_timeout
    )
    if isinstance(endpoint, AzureEndpoint):
        return _azure(endpoint, transport, credential, timeout=timeout, pool_size=pool_size)
    auth_mode: AuthMode = endpoint.auth_mode if endpoint.api_key else "none"
    client = openai.AsyncOpenAI(
        # The SDK refuses an empty key; without one the Authorization header is dropped again.
        api_key=endpoint.api_key or "unused",
        base_url=endpoint.base_url,
        http_client=http_client(transport, timeout, pool_size, auth_mode=auth_mode),
        timeout=timeout,
        max_retries=0,
    )
    return SdkClient(client, auth_mode)


def _azure(
    endpoint: AzureEndpoint,
    transport: httpx2.AsyncBaseTransport | None,
    credential: AsyncTokenCredential | None,
    *,
    timeout: httpx2.Timeout,
    pool_size: int | None,
) -> SdkClient:
    base = endpoint.endpoint.rstrip("/")
    key = endpoint.api_key
    token: TokenCheck | None = None
    on_close: CloseHook | None = None
    auth_mode: AuthMode = "api-key"
    if key is None:
        from azure.identity.aio import get_bearer_token_provider

        auth_mode = "managed-identity" if endpoint.client_id else "developer-credential"
        owned = credential or azure_credential(endpoint.client_id)
        token = get_bearer_token_provider(owned, COGNITIVE_SERVICES_SCOPE)
        on_close = owned.close
    client_http = http_client(transport, timeout, pool_size, auth_mode=auth_mode)
    client: openai.AsyncOpenAI
    if endpoint.api_version:
        client = openai.AsyncAzureOpenAI(
            azure_endpoint=base,
            azure_deployment=endpoint.deployment,
            api_version=endpoint.api_version,
            api_key=key,
            azure_ad_token_provider=token,
            http_client=client_http,
            timeout=timeout,
            max_retries=0,
        )
    else:
        api_key: ApiKey = key if key is not None else token  # type: ignore[assignment]
        client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=f"{base}/openai/v1/",
            http_client=client_http,
            timeout=timeout,
            max_retries=0,
        )
    return SdkClient(client, auth_mode, token=token, on_close=on_close)


def azure_credential(client_id: str | None) -> AsyncTokenCredential:
    """Managed identity in Container Apps; the developer's ``azd``/``az`` login elsewhere."""
    from azure.identity.aio import (
        AzureCliCredential,
        AzureDeveloperCliCredential,
        ChainedTokenCredential,
        ManagedIdentityCredential,
    )

    if client_id:
        return ManagedIdentityCredential(client_id=client_id)
    return ChainedTokenCredential(AzureDeveloperCliCredential(), AzureCliCredential())


def http_client(
    transport: httpx2.AsyncBaseTransport | None,
    timeout: httpx2.Timeout,
    pool_size: int | None,
    *,
    auth_mode: AuthMode,
) -> httpx2.AsyncClient:
    """The SDK's aiohttp-backed client in production, httpx2's own when a test brings a transport.

    aiohttp parses HTTP in C: reading a streamed body through it costs about half of what the
    pure-Python h11 parser under httpx2's default transport does, per chunk.
    """
    hooks: Hooks = {"request": [_drop_authorization]} if auth_mode == "none" else {}
    limits = (
        httpx2.Limits(max_connections=pool_size, max_keepalive_connections=pool_size)
        if pool_size is not None
        else openai.DEFAULT_CONNECTION_LIMITS
    )
    if transport is not None:
        return openai.DefaultAsyncHttpxClient(
            transport=transport, timeout=timeout, limits=limits, event_hooks=hooks
        )
    return openai.DefaultAioHttpClient(timeout=timeout, limits=limits, event_hooks=hooks)


async def _drop_authorization(request: httpx2.Request) -> None:
    request.headers.pop("Authorization", None)
