"""The access service: a presented key in, the caller and its quota out; the caller's windows."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from chatbackend import errors
from chatbackend.access.caller import ANONYMOUS, Caller
from chatbackend.access.ratelimit import LimitStore, Quota, RateLimiter, Window
from chatbackend.settings import Settings

logger = logging.getLogger("chatbackend.access")

CHALLENGE = 'Bearer realm="chatbackend"'


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated caller with the limits that apply to it."""

    caller: Caller
    quota: Quota

    @property
    def bucket(self) -> str:
        """The name its rate-limit windows are kept under."""
        return f"key:{self.caller.key_id}" if self.caller.key_id else "anonymous"


class KeyChecker(Protocol):
    """Finds the caller a presented key belongs to (``Unauthorized`` when none)."""

    async def check(self, presented: str, defaults: Quota) -> Identity: ...

    async def aclose(self) -> None: ...


class Access:
    """Authentication (when a ``KeyChecker`` is given) and rate limiting, for the middleware."""

    challenge = CHALLENGE

    def __init__(
        self,
        *,
        limiter: RateLimiter,
        defaults: Quota,
        store: LimitStore,
        keys: KeyChecker | None = None,
    ) -> None:
        self.limiter = limiter
        self.defaults = defaults
        self.store = store
        self.keys = keys

    async def authenticate(self, presented: str | None) -> Identity:
        if self.keys is None:
            return Identity(ANONYMOUS, self.defaults)
        if presented is None:
            raise errors.Unauthorized()
        return await self.keys.check(presented, self.defaults)

    async def admit(self, identity: Identity) -> Window | None:
        """The window for the response headers; ``CallerRateLimited`` when one is spent."""
        if identity.quota.unlimited:
            return None
        decision = await self.limiter.admit(identity.bucket, identity.quota)
        if not decision.admitted:
            assert decision.window is not None
            raise RateLimitRefused(decision.window)
        return decision.window

    async def spend_tokens(self, identity: Identity, tokens: int) -> None:
        await self.limiter.spend_tokens(identity.bucket, identity.quota, tokens)

    async def aclose(self) -> None:
        try:
            if self.keys is not None:
                await self.keys.aclose()
        finally:
            await self.store.aclose()


class RateLimitRefused(errors.CallerRateLimited):
    """``429`` with the spent window, whose headers go on the refusal too."""

    def __init__(self, window: Window) -> None:
        super().__init__(retry_after=window.reset)
        self.window = window


def build_access(
    settings: Settings, store: LimitStore, *, keys: KeyChecker | None = None
) -> Access:
    """The limiter on ``store`` (which it then owns); ``keys`` checks API keys
    (``AUTH_MODE=api-key``)."""
    limiter = RateLimiter(
        store.storage, on_storage_error=settings.rate_limit_on_storage_error, redis=store.client
    )
    defaults = Quota(
        requests_per_minute=settings.rate_limit_requests_per_minute,
        tokens_per_minute=settings.rate_limit_tokens_per_minute,
    )
    if settings.auth_mode == "api-key" and keys is None:
        raise ValueError("AUTH_MODE=api-key needs the key store")
    if settings.auth_mode == "none":
        logger.warning("AUTH_MODE=none: every caller is admitted without a key")
    return Access(limiter=limiter, defaults=defaults, store=store, keys=keys)
