"""The response cache for deterministic requests (``CHAT_CACHE_TTL_SECONDS``)."""

from chatbackend.cache.store import CachedAnswer, ResponseCache, build_cache

__all__ = ["CachedAnswer", "ResponseCache", "build_cache"]
