"""Which requests may be cached, and the key of one: a hash of all that changes the answer.

A request is deterministic when it sets ``temperature: 0`` or a ``seed``; nothing else is ever
cached. The key covers the caller, the provider (every member of a fallback chain, with its
server), the messages as sent upstream (system prompt and retrieved sources included), every
generation option, the tools offered and the tool choice.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from chatbackend.providers.base import GenerationRequest, Provider
from chatbackend.providers.fallback import FallbackChain

# Bump when the material or the stored entry changes shape: old entries are then never read.
KEY_VERSION = 1


def deterministic(request: GenerationRequest) -> bool:
    options = request.options
    return options.seed is not None or options.temperature == 0


def provider_identity(provider: Provider) -> list[list[Any]]:
    members = provider.members if isinstance(provider, FallbackChain) else [provider]
    return [[m.name, m.model, getattr(m, "server", None)] for m in members]


def cache_key(scope: str, provider: list[list[Any]], request: GenerationRequest) -> str | None:
    """The entry's key for ``request`` from caller ``scope``; ``None`` when it is not cacheable."""
    if not deterministic(request):
        return None
    options = request.options
    material = [
        KEY_VERSION,
        scope,
        provider,
        [
            [m.role, m.content, [[c.id, c.name, c.arguments] for c in m.tool_calls], m.tool_call_id]
            for m in request.messages
        ],
        [options.temperature, options.top_p, options.max_tokens, options.seed, list(options.stop)],
        [[t.name, t.description, dict(t.parameters)] for t in request.tools],
        request.tool_choice,
    ]
    encoded = orjson.dumps(material, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.sha256(encoded).hexdigest()
