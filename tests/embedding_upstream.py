"""A fake ``POST /embeddings`` at the HTTP transport: real JSON through the real SDK.

Vectors are hashed bags of words (each word adds 1 to a dimension chosen by its hash, then the
vector is normalised), so texts that share words are near each other: enough for a search to
find the right chunk, and deterministic. Other paths go to an optional chat ``Upstream``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx2

from tests.upstream import Upstream

Failure = Callable[[httpx2.Request], httpx2.Response | None]


def bag_of_words(text: str, dimensions: int) -> list[float]:
    vector = [0.0] * dimensions
    for word in re.findall(r"\w+", text.lower()):
        vector[int(hashlib.md5(word.encode()).hexdigest(), 16) % dimensions] += 1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


@dataclass
class EmbeddingUpstream:
    dimensions: int = 64
    chat: Upstream | None = None
    # Replies to send before the real ones (e.g. a 429, a 500), used in order.
    failures: list[httpx2.Response] = field(default_factory=list)
    requests: list[httpx2.Request] = field(default_factory=list)
    inputs: list[list[str]] = field(default_factory=list)

    async def __call__(self, request: httpx2.Request) -> httpx2.Response:
        if not request.url.path.endswith("/embeddings"):
            assert self.chat is not None, f"unexpected request to {request.url}"
            return await self.chat(request)
        await request.aread()
        self.requests.append(request)
        if self.failures:
            return self.failures.pop(0)
        body: dict[str, Any] = json.loads(request.content)
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        self.inputs.append(texts)
        data = [
            {"object": "embedding", "index": i, "embedding": bag_of_words(t, self.dimensions)}
            for i, t in enumerate(texts)
        ]
        usage = {"prompt_tokens": len(texts), "total_tokens": len(texts)}
        return httpx2.Response(
            200, json={"object": "list", "data": data, "model": body["model"], "usage": usage}
        )

    @property
    def transport(self) -> httpx2.MockTransport:
        return httpx2.MockTransport(self)

    def last_json(self) -> dict[str, Any]:
        return json.loads(self.requests[-1].content)  # type: ignore[no-any-return]
