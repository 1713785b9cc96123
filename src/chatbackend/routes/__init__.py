"""HTTP routes, one module per resource; ``router`` holds them all."""

from __future__ import annotations

from fastapi import APIRouter

from chatbackend.routes import chat, health

router = APIRouter()
router.include_router(chat.router)
router.include_router(health.router)

__all__ = ["router"]
