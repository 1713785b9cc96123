"""HTTP routes, one module per resource; ``router`` holds them all."""

from __future__ import annotations

from fastapi import APIRouter

from chatbackend.routes import batch, chat, documents, health

router = APIRouter()
router.include_router(chat.router)
router.include_router(batch.router)
router.include_router(health.router)
router.include_router(documents.router)

__all__ = ["router"]
