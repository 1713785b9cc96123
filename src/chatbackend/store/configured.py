"""The database ``Settings`` name, signed in as ``DATABASE_ENTRA_AUTH`` says: what the server,
``keys`` and ``ingest`` all open."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatbackend.settings import Settings
from chatbackend.store.database import Database, open_database

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential


async def open_configured_database(
    settings: Settings,
    *,
    credential: AsyncTokenCredential | None = None,
    pool_size: int | None = None,
) -> Database:
    """``DATABASE_URL``, migrated; with ``DATABASE_ENTRA_AUTH`` each new connection's password is
    an Entra token from ``credential`` (else the Azure credential of ``AZURE_CLIENT_ID``, owned
    and closed by the database)."""
    url = settings.database_url.get_secret_value()
    size = pool_size or settings.database_pool_size
    if not settings.database_entra_auth:
        return await open_database(url, pool_size=size)
    from chatbackend.entra import database_password

    password = database_password(client_id=settings.azure_client_id, credential=credential)
    return await open_database(url, pool_size=size, password=password, on_close=password.aclose)
