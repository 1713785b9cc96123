"""Microsoft Entra ID sign-in to the data stores: Azure Database for PostgreSQL and Azure Managed
Redis, with no password or access key anywhere.

The credential is the one keyless Azure OpenAI uses (``chatbackend.providers``): the managed
identity named by ``AZURE_CLIENT_ID`` in Container Apps, the developer's ``azd``/``az`` login
elsewhere. PostgreSQL takes a token as the password of each new connection; Redis takes one with
``AUTH`` and, through ``redis-entraid``, again on every open connection before it expires.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.core.credentials_async import AsyncTokenCredential
    from redis_entraid.cred_provider import EntraIdCredentialsProvider

logger = logging.getLogger("chatbackend.entra")

DATABASE_SCOPE = "https://ossrdbms-aad.database.windows.net/.default"
REDIS_SCOPE = "https://redis.azure.com/.default"


class TokenPassword:
    """A PostgreSQL password source: an Entra token for each new connection (the credential
    caches tokens and renews them before they expire, so most calls cost no request)."""

    def __init__(self, credential: AsyncTokenCredential, *, owned: bool) -> None:
        self._credential = credential
        self._owned = owned

    async def __call__(self) -> str:
        return (await self._credential.get_token(DATABASE_SCOPE)).token

    async def aclose(self) -> None:
        if self._owned:
            await self._credential.close()


def database_password(
    *, client_id: str | None, credential: AsyncTokenCredential | None = None
) -> TokenPassword:
    """Tokens from ``credential``, else from the Azure credential this password source owns."""
    if credential is not None:
        return TokenPassword(credential, owned=False)
    from chatbackend.providers.clients import azure_credential

    return TokenPassword(azure_credential(client_id), owned=True)


def redis_credential_provider(
    *, client_id: str | None, credential: TokenCredential | None = None
) -> EntraIdCredentialsProvider:
    """redis-py's credential provider for Azure Managed Redis: the user name is the token's
    ``oid`` claim (the identity's object id). ``redis-entraid`` renews the token at 70% of its
    life and sends ``AUTH`` on every pooled connection with it.

    Its token manager calls the credential synchronously, so this is azure-identity's sync
    credential; it answers from its cache except at renewal.
    """
    from redis.auth.token_manager import RetryPolicy, TokenManagerConfig
    from redis_entraid.cred_provider import EntraIdCredentialsProvider
    from redis_entraid.identity_provider import DefaultAzureCredentialProvider

    config = TokenManagerConfig(
        expiration_refresh_ratio=0.7,
        lower_refresh_bound_millis=0,
        token_request_execution_timeout_in_ms=100,
        # A failed renewal ends the renewals (until a new connection asks for a token): retry
        # for a while first, without blocking the loop (the async path sleeps with asyncio).
        retry_policy=RetryPolicy(max_attempts=10, delay_in_ms=1000),
    )
    identity = DefaultAzureCredentialProvider(
        credential or _sync_azure_credential(client_id),
        (REDIS_SCOPE,),
    )
    provider = EntraIdCredentialsProvider(identity, config)
    provider.on_error(_renewal_failed)
    return provider


async def _renewal_failed(error: Exception) -> None:
    # The class name only: a credential's error text can carry request details.
    logger.warning("Redis token renewal failed (%s)", type(error).__name__)


def _sync_azure_credential(client_id: str | None) -> TokenCredential:
    """The same choice as ``providers.clients.azure_credential``, with the sync classes."""
    from azure.identity import (
        AzureCliCredential,
        AzureDeveloperCliCredential,
        ChainedTokenCredential,
        ManagedIdentityCredential,
    )

    if client_id:
        return ManagedIdentityCredential(client_id=client_id)
    return ChainedTokenCredential(AzureDeveloperCliCredential(), AzureCliCredential())
