"""Settings in, one ready embedder out (built once in the lifespan, closed on shutdown)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx2

from chatbackend.retrieval.embedder import CachedEmbedder, Embedder
from chatbackend.settings import Settings

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential


def build_embedder(
    settings: Settings,
    *,
    transport: httpx2.AsyncBaseTransport | None = None,
    credential: AsyncTokenCredential | None = None,
) -> CachedEmbedder:
    kind = settings.embedder
    if kind == "embedded":
        from chatbackend.retrieval.embedded import EmbeddedEmbedder

        inner: Embedder = EmbeddedEmbedder(
            cache_dir=settings.model_cache_dir, threads=settings.embedding_threads
        )
        batch = min(settings.embedding_batch_size, 16)
    else:
        from chatbackend.retrieval.remote import build_remote_embedder

        inner = build_remote_embedder(settings, kind, transport=transport, credential=credential)
        batch = settings.embedding_batch_size
    return CachedEmbedder(inner, batch_size=batch, cache_size=settings.embedding_cache_size)
