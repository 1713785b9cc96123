"""Requests and tokens per minute per caller, with the ``limits`` library's fixed windows.

The storage is in memory for one process, or Redis when ``REDIS_URL`` is set, so the windows are
shared by every worker and replica. A request is admitted while both windows have budget left: its
request is counted on admission, its tokens when its answer ends (from the answer's usage), so one
answer may take the token window past its limit and the next request is then refused until the
window resets. Fixed-window counters are one atomic ``INCR`` each in Redis, which is what keeps a
limit exact across processes.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import StorageError

from chatbackend import errors
from chatbackend.settings import Settings

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from redis.asyncio import Redis
    from redis.credentials import CredentialProvider

logger = logging.getLogger("chatbackend.access")

OnStorageError = Literal["open", "closed"]
RATE_LIMIT_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
# How often, at most, a failing store is reported while requests are let through.
_WARNING_INTERVAL_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Quota:
    """A caller's limits per minute; ``None`` means unlimited."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None

    @property
    def unlimited(self) -> bool:
        return self.requests_per_minute is None and self.tokens_per_minute is None


@dataclass(frozen=True, slots=True)
class Window:
    """One limit as the ``RateLimit-*`` headers tell it: ``reset`` is in whole seconds."""

    limit: int
    remaining: int
    reset: int

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(self.remaining).encode()),
            (b"ratelimit-reset", str(self.reset).encode()),
        ]

    def tighter(self, other: Window | None) -> Window:
        """The window closer to running out (by the share of its budget left)."""
        if other is None or self.remaining * other.limit <= other.remaining * self.limit:
            return self
        return other


@dataclass(frozen=True, slots=True)
class Decision:
    admitted: bool
    window: Window | None


class RateLimiter:
    """Admits requests and counts tokens per caller identity.

    With Redis, an admission is one round trip: a script reads the token window, counts the
    request and reads both windows' expiry atomically, on the very keys and with the very
    semantics of ``limits``' fixed windows (which still counts the tokens and serves memory).
    Through ``limits`` alone it took five round trips, each a wait for the event loop.
    """

    def __init__(
        self, storage: Storage, *, on_storage_error: OnStorageError, redis: Redis | None = None
    ) -> None:
        self._storage = storage
        self._windows = FixedWindowRateLimiter(storage)
        self._on_storage_error = on_storage_error
        self._warned_at = -math.inf
        self._script = redis.register_script(_ADMIT_SCRIPT) if redis is not None else None
        self._failures: tuple[type[Exception], ...] = (OSError,)
        if redis is not None:
            # Imported only with Redis configured (see ``LimitStore.redis``).
            from redis.exceptions import RedisError

            self._failures = (RedisError, OSError)
        self._prefix = f"{getattr(storage, 'key_prefix', RedisStorage.PREFIX)}:"

    async def admit(self, identity: str, quota: Quota) -> Decision:
        """Count one request if both windows have budget left.

        The decision carries the window the response headers tell: the spent one when refused,
        else the tighter of the two (none when the quota is unlimited, or when the store failed
        and the setting lets requests through).
        """
        try:
            return await self._admit(identity, quota)
        except StorageError as exc:
            self._storage_failed(exc)
            return Decision(admitted=True, window=None)

    async def spend_tokens(self, identity: str, quota: Quota, tokens: int) -> None:
        """Add an answer's tokens to the caller's token window."""
        if quota.tokens_per_minute is None or tokens <= 0:
            return
        item = _tokens(quota.tokens_per_minute)
        try:
            await self._storage.incr(item.key_for(identity), item.get_expiry(), amount=tokens)
        except StorageError as exc:
            # Too late to refuse anything: the answer has been delivered.
            self._warn(exc, "tokens not counted")

    async def _admit(self, identity: str, quota: Quota) -> Decision:
        if self._script is not None:
            return await self._admit_in_redis(identity, quota)
        tokens: Window | None = None
        if quota.tokens_per_minute is not None:
            tokens = await self._window(_tokens(quota.tokens_per_minute), identity)
            if tokens.remaining <= 0:
                return Decision(admitted=False, window=tokens)
        if quota.requests_per_minute is None:
            return Decision(admitted=True, window=tokens)
        item = _requests(quota.requests_per_minute)
        admitted = await self._windows.hit(item, identity)
        requests = await self._window(item, identity)
        if not admitted:
            return Decision(admitted=False, window=requests)
        return Decision(admitted=True, window=requests.tighter(tokens))

    async def _admit_in_redis(self, identity: str, quota: Quota) -> Decision:
        assert self._script is not None
        token_item = _tokens(quota.tokens_per_minute or 1)
        request_item = _requests(quota.requests_per_minute or 1)
        keys = [
            self._prefix + token_item.key_for(identity),
            self._prefix + request_item.key_for(identity),
        ]
        arguments = [
            quota.tokens_per_minute or 0,
            quota.requests_per_minute or 0,
            request_item.get_expiry(),
        ]
        try:
            reply = await self._script(keys=keys, args=arguments)
        except self._failures as exc:
            raise StorageError(exc) from None
        admitted, used, tokens_ttl, count, requests_ttl = (int(v) for v in reply)
        tokens = requests = None
        if quota.tokens_per_minute is not None:
            tokens = Window(
                limit=quota.tokens_per_minute,
                remaining=max(0, quota.tokens_per_minute - used),
                reset=_reset(tokens_ttl),
            )
            if not admitted:
                return Decision(admitted=False, window=tokens)
        if quota.requests_per_minute is None:
            return Decision(admitted=True, window=tokens)
        requests = Window(
            limit=quota.requests_per_minute,
            remaining=max(0, quota.requests_per_minute - count),
            reset=_reset(requests_ttl),
        )
        if count > quota.requests_per_minute:
            return Decision(admitted=False, window=requests)
        return Decision(admitted=True, window=requests.tighter(tokens))

    async def _window(self, item: RateLimitItem, identity: str) -> Window:
        stats = await self._windows.get_window_stats(item, identity)
        reset = max(1, math.ceil(stats.reset_time - time.time()))
        return Window(limit=item.amount, remaining=stats.remaining, reset=reset)

    def _storage_failed(self, exc: StorageError) -> None:
        if self._on_storage_error == "closed":
            logger.warning("rate limit store unreachable (%s): refusing", _kind(exc))
            raise errors.RateLimitUnavailable(retry_after=1) from None
        self._warn(exc, "admitting without a limit")

    def _warn(self, exc: StorageError, consequence: str) -> None:
        now = time.monotonic()
        if now - self._warned_at >= _WARNING_INTERVAL_SECONDS:
            self._warned_at = now
            logger.warning("rate limit store unreachable (%s): %s", _kind(exc), consequence)


# KEYS: the token window, the request window (``limits``' keys, prefixed as its storage does).
# ARGV: the token limit, the request limit (0: none), the request window's expiry in seconds.
# Returns admitted (0/1), tokens used, the token window's ms to live, requests counted (this one
# included), the request window's ms to live. A request refused for tokens is not counted; the
# count and its expiry are ``limits``' incr_expire script.
_ADMIT_SCRIPT = """
local used, tokens_ttl = 0, -1
if ARGV[1] ~= '0' then
  used = tonumber(redis.call('GET', KEYS[1]) or '0')
  tokens_ttl = redis.call('PTTL', KEYS[1])
  if used >= tonumber(ARGV[1]) then return {0, used, tokens_ttl, 0, -1} end
end
local count, requests_ttl = 0, -1
if ARGV[2] ~= '0' then
  count = redis.call('INCRBY', KEYS[2], 1)
  if count == 1 then redis.call('EXPIRE', KEYS[2], ARGV[3]) end
  requests_ttl = redis.call('PTTL', KEYS[2])
end
return {1, used, tokens_ttl, count, requests_ttl}
"""


def _reset(milliseconds_to_live: int) -> int:
    """Whole seconds until a window resets (1 at least, also for a window not yet opened)."""
    return max(1, math.ceil(max(milliseconds_to_live, 0) / 1000))


def _kind(exc: StorageError) -> str:
    # The class name only: a connection error's text can carry the Redis URL and its password.
    return type(exc.storage_error).__name__


def _requests(amount: int) -> RateLimitItem:
    return RateLimitItemPerMinute(amount, namespace="requests")


def _tokens(amount: int) -> RateLimitItem:
    return RateLimitItemPerMinute(amount, namespace="tokens")


class LimitStore:
    """The storage the windows live in, and the Redis client it owns (if any)."""

    def __init__(self, storage: Storage, client: Redis | None = None) -> None:
        self.storage = storage
        self.client = client

    @classmethod
    def from_settings(
        cls, settings: Settings, *, credential: TokenCredential | None = None
    ) -> LimitStore:
        """Redis when ``REDIS_URL`` is set, else this process's memory. This is the worker's one
        Redis client: the rate limits and the fallback cool-downs both live in its storage.

        With ``REDIS_ENTRA_AUTH`` every connection signs in with an Entra token (``credential``,
        else the Azure credential of ``AZURE_CLIENT_ID``)."""
        if settings.redis_url is None:
            return cls.in_memory()
        provider = None
        if settings.redis_entra_auth:
            from chatbackend.entra import redis_credential_provider

            provider = redis_credential_provider(
                client_id=settings.azure_client_id, credential=credential
            )
        url = settings.redis_url.get_secret_value()
        return cls.redis(url, timeout=settings.redis_timeout_seconds, credential_provider=provider)

    @classmethod
    def in_memory(cls) -> LimitStore:
        return cls(MemoryStorage())

    @classmethod
    def redis(
        cls,
        url: str,
        *,
        timeout: float,
        credential_provider: CredentialProvider | None = None,
    ) -> LimitStore:
        """``redis://``, ``rediss://`` or ``unix://``; one connection pool for every window.
        ``credential_provider`` signs each connection in (in place of the URL's password)."""
        # Imported only when configured: redis-py loads the OpenTelemetry SDK on import.
        from redis.asyncio import Redis

        client = Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            credential_provider=credential_provider,
        )
        from redis.credentials import StreamingCredentialProvider

        if isinstance(credential_provider, StreamingCredentialProvider):
            # redis-py registers the pool for re-AUTH only once a connection is released, by
            # which time the token manager's first renewal has found no listener and stopped
            # renewing for good; registered now, every renewal reaches the pooled connections.
            # (redis-py's annotation says a sync callback; its event listener passes this same
            # coroutine function.)
            credential_provider.on_next(client.connection_pool.re_auth_callback)  # type: ignore[arg-type]
        scheme = "async+redis+" + url if url.startswith("unix://") else "async+" + url
        storage = RedisStorage(
            scheme,
            implementation="redispy",
            wrap_exceptions=True,
            # Documented by ``limits``, though its annotation allows only scalar options.
            connection_pool=client.connection_pool,  # type: ignore[arg-type]
        )
        return cls(storage, client)

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()
