"""A fallback chain: several providers behind one, tried in order until one starts answering.

A provider is left for the next one only before its first delta, on a retryable failure (429,
5xx, timeout, connection): once a delta has been passed on, the answer belongs to that provider and
a later failure is the answer's. A provider that failed ``failures`` times within ``window``
seconds is skipped for ``cooldown`` seconds; the counts live in the rate limiter's storage, so with
Redis every worker and replica skips it together.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Literal

import anyio
from limits.aio.storage import Storage
from limits.errors import StorageError

from chatbackend import errors, observed
from chatbackend.aio import aclose
from chatbackend.providers.base import AuthMode, Delta, GenerationRequest, Provider
from chatbackend.requestlog import current_request
from chatbackend.settings import Settings

logger = logging.getLogger("chatbackend.fallback")

ProviderState = Literal["ready", "cooling", "not_ready"]


@dataclass(frozen=True, slots=True)
class CoolDown:
    """``failures`` within ``window`` seconds: skipped for ``cooldown`` seconds."""

    failures: int
    window: int
    cooldown: int

    @classmethod
    def from_settings(cls, settings: Settings) -> CoolDown:
        return cls(
            failures=settings.chat_fallback_failures,
            window=settings.chat_fallback_window_seconds,
            cooldown=settings.chat_fallback_cooldown_seconds,
        )


class ProviderHealth:
    """Failure counts and cool-downs per provider, in memory or in Redis."""

    def __init__(self, storage: Storage, policy: CoolDown) -> None:
        self._storage = storage
        self._policy = policy

    async def cooling(self, label: str) -> bool:
        try:
            return await self._storage.get(f"fallback/cooldown/{label}") > 0
        except StorageError:
            return False  # unknown: try it rather than skip it

    async def failed(self, label: str) -> None:
        failures_key = f"fallback/failures/{label}"
        try:
            failures = await self._storage.incr(failures_key, self._policy.window)
            if failures >= self._policy.failures:
                await self._storage.incr(f"fallback/cooldown/{label}", self._policy.cooldown)
                await self._storage.clear(failures_key)
                logger.warning("provider %s cooling down for %ss", label, self._policy.cooldown)
        except StorageError:
            logger.warning("provider health store unreachable: %s not counted", label)


def _served_by(member: Provider) -> None:
    """The request log and the call's span name the member that answered, not the primary."""
    record = current_request.get()
    if record is not None:
        record.provider = member.name
        record.model = member.model
    observed.served_by(member)


def _falls_through(exc: errors.ChatError) -> bool:
    return exc.retryable or isinstance(exc, errors.UpstreamTimeout)


class FallbackChain:
    """``members`` behind the ``Provider`` interface; the first is the primary.

    ``label`` is what a member is known by in logs, health and the cool-down keys.
    """

    def __init__(
        self,
        members: Sequence[Provider],
        *,
        health: ProviderHealth,
        first_delta_timeout: float,
    ) -> None:
        self.members = list(members)
        primary = self.members[0]
        self.name: str = primary.name
        self.model: str = primary.model
        self.auth_mode: AuthMode = primary.auth_mode
        # Tools are offered only when every member of the chain can call them.
        self.supports_tools: bool = all(member.supports_tools for member in self.members)
        self._health = health
        self._timeout = first_delta_timeout

    @staticmethod
    def label(index: int, member: Provider) -> str:
        return f"{index}:{member.name}:{member.model}"

    async def ready(self) -> str | None:
        """``None`` while at least one member can serve, else why the primary cannot."""
        problems = [await member.ready() for member in self.members]
        return None if None in problems else problems[0]

    async def states(self) -> list[dict[str, str]]:
        """``name``, ``model`` and ``state`` of every member, in the order they are tried."""
        result: list[dict[str, str]] = []
        for index, member in enumerate(self.members):
            state: ProviderState = "ready" if await member.ready() is None else "not_ready"
            if state == "ready" and await self._health.cooling(self.label(index, member)):
                state = "cooling"
            result.append({"name": member.name, "model": member.model, "state": state})
        return result

    async def aclose(self) -> None:
        for member in self.members:
            await member.aclose()

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        candidates = await self._candidates()
        for position, (index, member) in enumerate(candidates):
            last = position == len(candidates) - 1
            deltas = aiter(member.stream(request))
            try:
                with anyio.fail_after(None if last else self._timeout):
                    first = await anext(deltas)
            except TimeoutError:
                failure: errors.ChatError = errors.UpstreamTimeout()
            except errors.ChatError as exc:
                failure = exc
            except BaseException:
                await aclose(deltas)
                raise
            else:
                _served_by(member)
                try:
                    yield first
                    async for delta in deltas:
                        yield delta
                finally:
                    await aclose(deltas)
                return
            await aclose(deltas)
            if not _falls_through(failure):
                raise failure
            await self._health.failed(self.label(index, member))
            if last:
                raise failure
            logger.warning("provider %s failed (%s): trying the next", member.name, failure.code)

    async def _candidates(self) -> list[tuple[int, Provider]]:
        """The members not cooling down; all of them when every one is."""
        indexed = list(enumerate(self.members))
        ready = [(i, m) for i, m in indexed if not await self._health.cooling(self.label(i, m))]
        return ready or indexed
