"""The response cache: complete answers to deterministic requests, in memory or in Redis.

A miss puts an ``on_finish`` hook on the answer; the hook stores the answer's text deltas, as they
came, and its ``Finish`` when it ended complete, so a hit replays the same lines. Nothing wraps the
stream. Entries are per caller: a hit would otherwise tell one API key what another one asked.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import orjson
from cachetools import TTLCache

from chatbackend.access.caller import Caller
from chatbackend.cache.keys import cache_key, provider_identity
from chatbackend.chat import Answer, Outcome
from chatbackend.providers.base import Finish, Provider, Usage
from chatbackend.settings import Settings

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger("chatbackend.cache")

REDIS_PREFIX = "chatbackend:cache:"
# Finish reasons of an answer the model ended on its own; content_filter, tool_calls and unknown
# ones are not replayed.
CACHEABLE_FINISH = frozenset({"stop", "length"})
_WARNING_INTERVAL_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """A stored answer: its text deltas in order and how it ended."""

    parts: tuple[str, ...]
    finish: Finish

    @property
    def outcome(self) -> Outcome:
        return Outcome("complete", "".join(self.parts), self.finish, None, streamed=True)

    def dumps(self) -> bytes:
        finish = self.finish
        usage = finish.usage.as_dict() if finish.usage is not None else None
        return orjson.dumps(
            {
                "parts": self.parts,
                "reason": finish.finish_reason,
                "usage": usage,
                "model": finish.model,
            }
        )

    @classmethod
    def loads(cls, data: bytes | str) -> CachedAnswer:
        raw = orjson.loads(data)
        usage = Usage(**raw["usage"]) if raw["usage"] is not None else None
        finish = Finish(finish_reason=raw["reason"], usage=usage, model=raw["model"])
        return cls(tuple(raw["parts"]), finish)


class Backend(Protocol):
    async def get(self, key: str) -> CachedAnswer | None: ...

    async def put(self, key: str, entry: CachedAnswer) -> None: ...


class MemoryBackend:
    """This process's memory: at most ``max_entries``, least recently used out first."""

    def __init__(self, *, ttl: float, max_entries: int) -> None:
        self._entries: TTLCache[str, CachedAnswer] = TTLCache(
            maxsize=max_entries, ttl=ttl, timer=time.monotonic
        )

    async def get(self, key: str) -> CachedAnswer | None:
        return self._entries.get(key)

    async def put(self, key: str, entry: CachedAnswer) -> None:
        self._entries[key] = entry


class RedisBackend:
    """Redis (``REDIS_URL``), shared by every worker and replica; Redis expires the entries.

    An unreachable Redis is a miss and a store that did not happen, logged at most every 30 s.
    """

    def __init__(self, client: Redis, *, ttl: float) -> None:
        self._client = client
        self._ttl_ms = max(1, math.ceil(ttl * 1000))
        self._warned_at = -math.inf

    async def get(self, key: str) -> CachedAnswer | None:
        from redis.exceptions import RedisError

        try:
            data = await self._client.get(REDIS_PREFIX + key)
            return None if data is None else CachedAnswer.loads(data)
        except (RedisError, OSError) as exc:
            self._warn(exc)
        except (orjson.JSONDecodeError, KeyError, TypeError):
            logger.warning("a cached answer could not be read: treated as a miss")
        return None

    async def put(self, key: str, entry: CachedAnswer) -> None:
        from redis.exceptions import RedisError

        try:
            await self._client.set(REDIS_PREFIX + key, entry.dumps(), px=self._ttl_ms)
        except (RedisError, OSError) as exc:
            self._warn(exc)

    def _warn(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at >= _WARNING_INTERVAL_SECONDS:
            self._warned_at = now
            # The class name only: a connection error's text can carry the URL and its password.
            logger.warning("response cache unreachable (%s): uncached", type(exc).__name__)


class ResponseCache:
    """Looks answers up before they open and stores them when they complete."""

    def __init__(self, backend: Backend, provider: Provider) -> None:
        self.backend = backend
        self._provider = provider_identity(provider)

    async def consult(self, answer: Answer, caller: Caller) -> CachedAnswer | None:
        """The cached answer to ``answer``'s request; on a miss, the answer will be stored when
        it completes. Requests that are not deterministic are never looked up nor stored."""
        key = cache_key(caller.key_id or "", self._provider, answer.request)
        if key is None:
            return None
        entry = await self.backend.get(key)
        if entry is None:
            answer.on_finish(_Remember(self.backend, key, answer))
        return entry


class _Remember:
    """The ``on_finish`` hook that stores a complete answer."""

    __slots__ = ("_answer", "_backend", "_key")

    def __init__(self, backend: Backend, key: str, answer: Answer) -> None:
        self._backend = backend
        self._key = key
        self._answer = answer

    async def __call__(self, outcome: Outcome) -> None:
        finish = outcome.finish
        if outcome.ending != "complete" or finish is None or outcome.tools:
            return
        if finish.finish_reason not in CACHEABLE_FINISH:
            return
        await self._backend.put(self._key, CachedAnswer(tuple(self._answer.parts), finish))


def build_cache(
    settings: Settings, provider: Provider, redis: Redis | None
) -> ResponseCache | None:
    """``None`` unless ``CHAT_CACHE_TTL_SECONDS`` is set; Redis when the app has a client."""
    ttl = settings.chat_cache_ttl_seconds
    if ttl is None:
        return None
    backend: Backend
    if redis is not None:
        backend = RedisBackend(redis, ttl=ttl)
    else:
        backend = MemoryBackend(ttl=ttl, max_entries=settings.chat_cache_max_entries)
    return ResponseCache(backend, provider)
