"""Microsoft Entra sign-in to the data stores, against the real servers: the token a (fake)
Azure credential issues is the PostgreSQL password of each new connection and the Redis ``AUTH``
password, and a wrong token is refused, so nothing else could have let the connection in."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import pytest
import redis
from azure.core.credentials import AccessToken
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from chatbackend.access.ratelimit import LimitStore, Quota, RateLimiter
from chatbackend.app import create_app
from chatbackend.entra import DATABASE_SCOPE, REDIS_SCOPE
from chatbackend.settings import SettingsError, load_settings
from chatbackend.store import open_configured_database
from tests.conftest import OPENAI_KEY
from tests.databases import Postgres

pytestmark = pytest.mark.anyio

# An Azure identity's name, as the Bicep creates it (hyphens included).
ROLE = "id-api-entratest"


class FakeAsyncCredential:
    """An ``AsyncTokenCredential`` whose next token is ``token``; records every request."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.requests: list[tuple[str, ...]] = []
        self.closed = False

    async def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        self.requests.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)

    async def close(self) -> None:
        self.closed = True

    async def __aenter__(self) -> FakeAsyncCredential:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()


class FakeSyncCredential:
    """A sync ``TokenCredential`` issuing JWTs (redis-entraid reads ``oid`` and ``exp``)."""

    def __init__(self, oid: str, secret: str, lifetime: float = 3600) -> None:
        self.oid = oid
        self.secret = secret
        self.lifetime = lifetime
        self.requests: list[tuple[str, ...]] = []
        self.issued: list[str] = []

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        self.requests.append(scopes)
        expires = int(time.time() + self.lifetime)
        claims = {"oid": self.oid, "exp": expires, "nonce": len(self.issued)}
        token = jwt.encode(claims, self.secret, algorithm="HS256")
        self.issued.append(token)
        return AccessToken(token, expires)

    def close(self) -> None:
        pass


@pytest.fixture
def entra_database(postgres: Postgres) -> str:
    """A database owned by ``ROLE``, which signs in with its password only; its URL, no password."""
    name = f"entra_{uuid.uuid4().hex[:12]}"
    postgres.sql(
        f"DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') "
        f'THEN CREATE ROLE "{ROLE}" LOGIN; END IF; END$$'
    )
    postgres.require_password(ROLE)
    postgres.sql(f'CREATE DATABASE {name} OWNER "{ROLE}"')
    # Azure allow-lists pgvector; creating it needs the server's administrator here.
    postgres.sql("CREATE EXTENSION IF NOT EXISTS vector", database=name)
    return f"postgresql+asyncpg://{ROLE}@/{name}?host={postgres.socket_dir}&port={postgres.port}"


def set_password(postgres: Postgres, password: str) -> None:
    postgres.sql(f"ALTER ROLE \"{ROLE}\" PASSWORD '{password}'")


def entra_settings(**overrides: Any) -> Any:
    return load_settings(
        chat_provider="openai", openai_api_key=OPENAI_KEY, database_entra_auth=True, **overrides
    )


async def test_each_new_postgres_connection_signs_in_with_a_fresh_token(
    postgres: Postgres, entra_database: str
) -> None:
    set_password(postgres, "token-one")
    credential = FakeAsyncCredential("token-one")
    database = await open_configured_database(
        entra_settings(database_url=entra_database), credential=credential
    )
    try:
        assert credential.requests  # the migration connected with it
        assert set(credential.requests) == {(DATABASE_SCOPE,)}
        # The token is rotated: a new connection must sign in with the new one.
        set_password(postgres, "token-two")
        credential.token = "token-two"
        before = len(credential.requests)
        async with database.engine.connect() as held, database.engine.connect() as fresh:
            assert (await fresh.scalar(text("SELECT current_user"))) == ROLE
            assert (await held.scalar(text("SELECT 1"))) == 1
        assert len(credential.requests) > before
        # A token the server does not take is refused: the password really is the token.
        credential.token = "not-the-token"
        await database.engine.dispose()
        with pytest.raises(DBAPIError, match="password authentication failed"):
            async with database.engine.connect():
                pass
    finally:
        await database.aclose()
    assert not credential.closed  # the caller's credential stays the caller's


async def test_the_app_keeps_conversations_in_postgres_with_entra_tokens(
    postgres: Postgres, entra_database: str
) -> None:
    set_password(postgres, "app-token")
    credential = FakeAsyncCredential("app-token")
    app = create_app(entra_settings(database_url=entra_database), credential=credential)
    with TestClient(app) as client:
        created = client.post("/conversations", json={"title": "signed in with a token"})
        assert created.status_code == 201
        assert client.get(f"/conversations/{created.json()['id']}").status_code == 200
    assert credential.requests and set(credential.requests) == {(DATABASE_SCOPE,)}
    name = make_url(entra_database).database
    assert name is not None
    assert postgres.sql("SELECT count(*) FROM conversations", database=name) == "1"


def test_entra_auth_needs_a_postgres_url_naming_the_role_without_a_password() -> None:
    with pytest.raises(SettingsError, match="DATABASE_ENTRA_AUTH needs a postgresql"):
        entra_settings(database_url="sqlite+aiosqlite:///x.db")
    with pytest.raises(SettingsError, match="holds no password"):
        entra_settings(database_url="postgresql://role:secret@db.example/app")
    with pytest.raises(SettingsError, match="REDIS_ENTRA_AUTH needs REDIS_URL"):
        load_settings(chat_provider="openai", openai_api_key=OPENAI_KEY, redis_entra_auth=True)


def test_an_empty_redis_url_means_in_memory() -> None:
    settings = load_settings(chat_provider="openai", openai_api_key=OPENAI_KEY, redis_url="")
    assert settings.redis_url is None


def acl_user(url: str, name: str, password: str) -> None:
    with redis.Redis.from_url(url) as admin:
        admin.execute_command(
            "ACL", "SETUSER", name, "on", "resetpass", f">{password}", "~*", "+@all"
        )


async def test_redis_signs_in_as_the_token_object_id_and_renews_it(redis_url: str) -> None:
    oid = str(uuid.uuid4())
    credential = FakeSyncCredential(oid, secret="s" * 32, lifetime=3)
    first = credential.get_token(REDIS_SCOPE).token
    credential.requests.clear()
    acl_user(redis_url, oid, first)
    settings = load_settings(
        chat_provider="openai",
        openai_api_key=OPENAI_KEY,
        redis_url=redis_url,
        redis_entra_auth=True,
    )
    store = LimitStore.from_settings(settings, credential=credential)
    try:
        # Every token issued from here on is accepted, as Entra's would be.
        credential.get_token = _also_allowed(credential, redis_url)  # type: ignore[method-assign]
        limiter = RateLimiter(store.storage, on_storage_error="closed")
        decision = await limiter.admit("caller", Quota(requests_per_minute=5))
        assert decision.admitted and decision.window is not None
        assert decision.window.remaining == 4
        assert store.client is not None
        assert await store.client.acl_whoami() == oid
        assert set(credential.requests) == {(REDIS_SCOPE,)}
        auths = _auth_calls(redis_url)
        # At 70% of the token's 3 s, redis-entraid fetches a new one and re-sends AUTH on the
        # pooled connections.
        deadline = time.monotonic() + 10
        while _auth_calls(redis_url) == auths and time.monotonic() < deadline:
            await _sleep(0.1)
        assert _auth_calls(redis_url) > auths
        assert (await limiter.admit("caller", Quota(requests_per_minute=5))).window.remaining == 3  # type: ignore[union-attr]
    finally:
        await store.aclose()


async def test_redis_refuses_a_token_it_does_not_know(redis_url: str) -> None:
    oid = str(uuid.uuid4())
    acl_user(redis_url, oid, "the-real-token")
    settings = load_settings(
        chat_provider="openai",
        openai_api_key=OPENAI_KEY,
        redis_url=redis_url,
        redis_entra_auth=True,
    )
    store = LimitStore.from_settings(settings, credential=FakeSyncCredential(oid, secret="s" * 32))
    try:
        assert store.client is not None
        with pytest.raises(redis.AuthenticationError):
            await store.client.ping()
    finally:
        await store.aclose()


def _also_allowed(credential: FakeSyncCredential, url: str) -> Any:
    issue = credential.get_token

    def get_token(*scopes: str, **kwargs: Any) -> AccessToken:
        token = issue(*scopes, **kwargs)
        with redis.Redis.from_url(url) as admin:
            admin.execute_command("ACL", "SETUSER", credential.oid, f">{token.token}")
        return token

    return get_token


def _auth_calls(url: str) -> int:
    with redis.Redis.from_url(url) as admin:
        stats: dict[str, Any] = admin.info("commandstats")
    # The first sign-in is part of HELLO; a renewal sends AUTH on the open connections.
    return int(stats.get("cmdstat_auth", {}).get("calls", 0))


async def _sleep(seconds: float) -> None:
    import anyio

    await anyio.sleep(seconds)
