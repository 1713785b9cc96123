"""The ``Embedder`` protocol, and the batching content-hash cache every embedder sits behind."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol

Vector = list[float]


class Embedder(Protocol):
    """Turns texts into unit vectors of ``dimensions`` floats; ``model`` names what made them."""

    model: str
    dimensions: int

    async def load(self) -> None:
        """Make ready (load a model); ``count_tokens`` may be used after it."""

    async def embed(self, texts: Sequence[str]) -> list[Vector]: ...

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` as this embedder counts them (chunk sizes are measured in these)."""
        ...

    async def aclose(self) -> None: ...


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class CachedEmbedder:
    """Sends only texts it has not embedded before, ``batch_size`` at a time.

    The cache is keyed by the SHA-256 of the text and bounded (least recently used out), so a
    chunk uploaded twice, or a query asked again, is embedded once.
    """

    def __init__(self, inner: Embedder, *, batch_size: int, cache_size: int) -> None:
        self.inner = inner
        self.model = inner.model
        self.dimensions = inner.dimensions
        self._batch_size = batch_size
        self._cache_size = cache_size
        self._cache: OrderedDict[str, Vector] = OrderedDict()
        self.embedded = 0  # texts sent to the inner embedder, for tests and operators

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        keys = [content_hash(text) for text in texts]
        missing = list(dict.fromkeys(k for k in keys if k not in self._cache))
        by_key = dict(zip(keys, texts, strict=True))
        fresh: dict[str, Vector] = {}
        for start in range(0, len(missing), self._batch_size):
            batch = missing[start : start + self._batch_size]
            vectors = await self.inner.embed([by_key[k] for k in batch])
            fresh.update(zip(batch, vectors, strict=True))
            self.embedded += len(batch)
        result = [fresh[k] if k in fresh else self._cache[k] for k in keys]
        for key, vector in zip(keys, result, strict=True):
            self._remember(key, vector)
        return result

    def _remember(self, key: str, vector: Vector) -> None:
        self._cache[key] = vector
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    async def load(self) -> None:
        await self.inner.load()

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    async def aclose(self) -> None:
        await self.inner.aclose()
