"""The provider factory: settings in, one ready provider out, built once in the lifespan."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx2

from chatbackend.providers.base import AuthMode, Provider
from chatbackend.providers.clients import (
    COGNITIVE_SERVICES_SCOPE,
    OPENAI_BASE_URL,
    AzureEndpoint,
    Endpoint,
    OpenAIEndpoint,
    SdkClient,
    sdk_client,
)
from chatbackend.providers.fallback import FallbackChain, ProviderHealth
from chatbackend.providers.openai_family import OpenAIProvider
from chatbackend.settings import FallbackProvider, Settings

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

__all__ = ["COGNITIVE_SERVICES_SCOPE", "OPENAI_BASE_URL", "Provider", "build_provider"]


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
        api_key=key or None,
        auth_mode=auth_mode,
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
        api_key=key.get_secret_value() if key else None,
        # Ollama and older vLLM/llama.cpp servers know only the legacy parameter name.
        max_tokens_parameter="max_tokens",
    )


def _azure(
    settings: Settings,
    transport: httpx2.AsyncBaseTransport | None,
    credential: AsyncTokenCredential | None,
) -> Provider:
    assert settings.azure_openai_endpoint and settings.azure_openai_deployment
    key = settings.azure_openai_api_key
    endpoint = AzureEndpoint(
        settings.azure_openai_endpoint,
        settings.azure_openai_deployment,
        api_key=key.get_secret_value() if key is not None else None,
        api_version=settings.azure_openai_api_version,
        client_id=settings.azure_client_id,
    )
    made = _chat_client(settings, endpoint, transport, credential)
    return OpenAIProvider(
        name="azure",
        model=endpoint.deployment,
        auth_mode=made.auth_mode,
        client=made.client,
        on_close=made.on_close,
        token=made.token,
    )


def _openai_compatible(
    settings: Settings,
    transport: httpx2.AsyncBaseTransport | None,
    *,
    name: str,
    model: str,
    base_url: str,
    api_key: str | None,
    auth_mode: AuthMode = "api-key",
    max_tokens_parameter: str = "max_completion_tokens",
) -> OpenAIProvider:
    endpoint = OpenAIEndpoint(base_url, api_key=api_key, auth_mode=auth_mode)
    made = _chat_client(settings, endpoint, transport, None)
    return OpenAIProvider(
        name=name,
        model=model,
        auth_mode=made.auth_mode,
        client=made.client,
        max_tokens_parameter=max_tokens_parameter,
    )


def _chat_client(
    settings: Settings,
    endpoint: Endpoint,
    transport: httpx2.AsyncBaseTransport | None,
    credential: AsyncTokenCredential | None,
) -> SdkClient:
    # The read timeout bounds the silence between two chunks; the service enforces the
    # first-token and whole-response deadlines on top of it. One kept-alive connection per
    # stream the worker may hold: with the SDK's default of 100 kept alive, every stream above
    # 100 would open (and TLS-handshake) a new connection.
    return sdk_client(
        endpoint,
        connect_timeout=settings.chat_connect_timeout,
        read_timeout=settings.chat_first_token_timeout,
        pool_size=settings.chat_max_streams,
        transport=transport,
        credential=credential,
    )
