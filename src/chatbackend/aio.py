"""Small async helpers shared by the service and the encoders."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio


async def aclose(iterator: AsyncIterator[Any]) -> None:
    """Close an async generator even while the calling task is being cancelled.

    A client disconnect arrives as a cancellation; without the shield the close itself would be
    cancelled and the upstream connection left open until garbage collection.
    """
    close = getattr(iterator, "aclose", None)
    if close is not None:
        with anyio.CancelScope(shield=True):
            await close()
