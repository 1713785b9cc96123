"""The provider factory: settings in, one ready provider out, built once in the lifespan."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import httpx2
import openai

from chatbackend.providers.base import AuthMode, Provider
from chatbackend.providers.fallback import FallbackChain, ProviderHealth
from chatbackend.providers.openai_family import ApiKey, CloseHook, OpenAIProvider
from chatbackend.settings import FallbackProvider, Settings

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

__all__ = ["COGNITIVE_SERVICES_SCOPE", "Provider", "build_provider"]

COGNITIVE_SERVICES_SCOPE = "https://cognitiveservices.azure.com/.default"
OPENAI_BASE_URL = "https://api.openai.com/v1"
Hooks = dict[str, list[Callable[[httpx2.Request], Awaitable[None]]]]


async def build_provider(
    settings: Settings,
    *,
    transport: httpx2.AsyncBaseTransport | None = None,
    credential: AsyncTokenCredential | None = None,
    health: ProviderHealth | None = None,
) -> Provider:
    """Build the provider ``settings`` select, behind a ``FallbackChain`` when
    ``CHAT_FALLBACKS`` names further ones (``health`` keeps their cool-downs).

    ``transport`` replaces the HTTP transport (tests pass a ``MockTransport``); ``credential``
    replaces the Azure credential that keyless auth would otherwise create.
    """
    primary = await _primary(settings, transport=transport, credential=credential)
    if not settings.chat_fallbacks:
        return primary
    assert health is not None, "a fallback chain needs its health store"
    members = [primary]
    members += [
        _fallback(settings, spec, transport, credential) for spec in settings.chat_fallbacks
    ]
    return FallbackChain(members, health=health, first_delta_timeout=settings.chat_fallback_timeout)


def _fallback(
    settings: Settings,
    spec: FallbackProvider,
    transport: httpx2.AsyncBaseTransport | None,
    credential: AsyncTokenCredential | None,
) -> Provider:
    if spec.provider == "azure":
        # The primary's Azure settings (api-version, identity) with this entry's resource.
        azure = settings.model_copy(
            update={
                "azure_openai_endpoint": spec.endpoint,
                "azure_openai_deployment": spec.deployment,
                "azure_openai_api_key": spec.api_key,
            }
        )
        return _azure(azure, transport, credential)
    assert spec.model is not None  # checked by Settings
    defaults = {"openai": OPENAI_BASE_URL, "github": settings.github_models_base_url}
    base_url = spec.base_url or defaults.get(spec.provider)
    assert base_url is not None  # checked by Settings for compatible
    key = spec.api_key.get_secret_value() if spec.api_key is not None else None
    auth_mode: AuthMode = "token" if spec.provider == "github" else "api-key"
    return _openai_compatible(
        settings,
        transport,
        name=spec.provider,
        model=spec.model,
        base_url=base_url,
        api_key=key or "unused",
        auth_mode=auth_mode if key else "none",
        max_tokens_parameter=(
            "max_tokens" if spec.provider == "compatible" else "max_completion_tokens"
        ),
    )


async def _primary(
    settings: Settings,
    *,
    transport: httpx2.AsyncBaseTransport | None,
    credential: AsyncTokenCredential | None,
) -> Provider:
    provider = settings.provider
    if provider == "local":
        from chatbackend.providers.local import build_local_provider

        return await build_local_provider(settings)
    if provider == "azure":
        return _azure(settings, transport, credential)
    if provider == "openai":
        assert settings.openai_api_key is not None  # checked by Settings
        return _openai_compatible(
            settings,
            transport,
            name="openai",
            model=settings.openai_model,
            base_url=settings.openai_base_url or OPENAI_BASE_URL,
            api_key=settings.openai_api_key.get_secret_value(),
        )
    if provider == "github":
        assert settings.github_token is not None  # checked by Settings
        return _openai_compatible(
            settings,
            transport,
            name="github",
            model=settings.github_model,
            base_url=settings.github_models_base_url,
            api_key=settings.github_token.get_secret_value(),
            auth_mode="token",
        )
    assert settings.chat_base_url is not None and settings.chat_model is not None
    key = settings.chat_api_key
    return _openai_compatible(
        settings,
        transport,
        name="compatible",
        model=settings.chat_model,
        base_url=settings.chat_base_url,
        # The SDK refuses an empty key; without one the Authorization header is dropped again.
        api_key=key.get_secret_value() if key else "unused",
        auth_mode="api-key" if key else "none",
        # Ollama and older vLLM/llama.cpp servers know only the legacy parameter name.
        max_tokens_parameter="max_tokens",
    )


def _azure(
    settings: Settings,
    transport: httpx2.AsyncBaseTransport | None,
    credential: AsyncTokenCredential | None,
) -> Provider:
    """The v1 endpoint with ``AsyncOpenAI``; with ``AZURE_OPENAI_API_VERSION``, the deployment
    path and that api-version with ``AsyncAzureOpenAI`` (clouds and accounts without v1)."""
    assert settings.azure_openai_endpoint and settings.azure_openai_deployment
    endpoint = settings.azure_openai_endpoint.rstrip("/")
    deployment = settings.azure_openai_deployment
    key = settings.azure_openai_api_key
    token_provider: Callable[[], Awaitable[str]] | None = None
    on_close: CloseHook | None = None
    auth_mode: AuthMode = "api-key"
    if key is None:
        from azure.identity.aio import get_bearer_token_provider

        auth_mode = "managed-identity" if settings.azure_client_id else "developer-credential"
        owned = credential or _azure_credential(settings.azure_client_id)
        token_provider = get_bearer_token_provider(owned, COGNITIVE_SERVICES_SCOPE)
        on_close = owned.close
    http_client, timeout = _http_client(settings, transport, auth_mode=auth_mode)
    client: openai.AsyncOpenAI
    if settings.azure_openai_api_version:
        client = openai.AsyncAzureOpenAI(
            azure_endpoint=endpoint,
            azure_deployment=deployment,
            api_version=settings.azure_openai_api_version,
            api_key=key.get_secret_value() if key is not None else None,
            azure_ad_token_provider=token_provider,
            http_client=http_client,
            timeout=timeout,
            max_retries=0,
        )
    else:
        api_key: ApiKey = key.get_secret_value() if key is not None else token_provider  # type: ignore[assignment]
        client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=f"{endpoint}/openai/v1/",
            http_client=http_client,
            timeout=timeout,
            max_retries=0,
        )
    return OpenAIProvider(
        name="azure",
        model=deployment,
        auth_mode=auth_mode,
        client=client,
        on_close=on_close,
        token=token_provider,
    )


def _azure_credential(client_id: str | None) -> AsyncTokenCredential:
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


def _openai_compatible(
    settings: Settings,
    transport: httpx2.AsyncBaseTransport | None,
    *,
    name: str,
    model: str,
    base_url: str,
    api_key: str,
    auth_mode: AuthMode = "api-key",
    max_tokens_parameter: str = "max_completion_tokens",
) -> OpenAIProvider:
    http_client, timeout = _http_client(settings, transport, auth_mode=auth_mode)
    client = openai.AsyncOpenAI(
        api_key=api_key,
        base_url=base_url,
        http_client=http_client,
        timeout=timeout,
        max_retries=0,  # the service retries, within its own budget
    )
    return OpenAIProvider(
        name=name,
        model=model,
        auth_mode=auth_mode,
        client=client,
        max_tokens_parameter=max_tokens_parameter,
    )


def _http_client(
    settings: Settings, transport: httpx2.AsyncBaseTransport | None, *, auth_mode: AuthMode
) -> tuple[httpx2.AsyncClient, httpx2.Timeout]:
    """The SDK's aiohttp-backed client in production, httpx2's own when a test brings a transport.

    aiohttp parses HTTP in C: reading a streamed body through it costs about half of what the
    pure-Python h11 parser under httpx2's default transport does, per chunk.
    """
    # The read timeout bounds the silence between two chunks; the service enforces the
    # first-token and whole-response deadlines on top of it.
    timeout = httpx2.Timeout(
        connect=settings.chat_connect_timeout,
        read=settings.chat_first_token_timeout,
        write=settings.chat_connect_timeout,
        pool=settings.chat_connect_timeout,
    )
    hooks: Hooks = {"request": [_drop_authorization]} if auth_mode == "none" else {}
    # One kept-alive connection per stream the worker may hold: with the SDK's default of 100
    # kept alive, every stream above 100 would open (and TLS-handshake) a new connection.
    limits = httpx2.Limits(
        max_connections=settings.chat_max_streams,
        max_keepalive_connections=settings.chat_max_streams,
    )
    if transport is not None:
        client: httpx2.AsyncClient = openai.DefaultAsyncHttpxClient(
            transport=transport, timeout=timeout, limits=limits, event_hooks=hooks
        )
    else:
        client = openai.DefaultAioHttpClient(timeout=timeout, limits=limits, event_hooks=hooks)
    return client, timeout


async def _drop_authorization(request: httpx2.Request) -> None:
    request.headers.pop("Authorization", None)
