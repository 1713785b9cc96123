"""HTTP routes, one module per resource; ``routers`` lists them, the hottest first.

The app includes each one directly: FastAPI resolves included routers lazily on every request,
one level of nesting at a time, and ``/chat/stream`` should match at the first level it tries.
"""

from __future__ import annotations

from chatbackend.routes import batch, chat, documents, health

routers = (chat.router, batch.router, health.router, documents.router)

__all__ = ["routers"]
