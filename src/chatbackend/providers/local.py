"""Placeholder until the embedded model lands (issue 3)."""

from __future__ import annotations

from chatbackend.providers.base import Provider
from chatbackend.settings import Settings


async def build_local_provider(settings: Settings) -> Provider:
    raise NotImplementedError(settings.provider)
