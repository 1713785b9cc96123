"""Tool-call streams as OpenAI and Azure OpenAI send them, byte for byte (``upstream_streams/``).

The files follow recorded streams of the real services (the openai SDK's own test recordings and
Azure's chunk layout: a ``prompt_filter_results`` chunk first, keys sorted, a
``content_filter_results`` object and an ``obfuscation`` field on every chunk); the ids, tools
and arguments are this project's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.upstream import chunk, usage_chunk

STREAMS = Path(__file__).parent / "upstream_streams"


def stream_bytes(name: str) -> bytes:
    return (STREAMS / f"{name}.sse").read_bytes()


def frames(name: str, *, size: int | None = None) -> list[bytes]:
    """The stream's events, one per network read, or the bytes cut every ``size`` bytes."""
    data = stream_bytes(name)
    if size is not None:
        return [data[at : at + size] for at in range(0, len(data), size)]
    return [event + b"\n\n" for event in data.split(b"\n\n") if event]


def tool_call_chunks(*calls: tuple[str, str, str], prompt: int = 40) -> list[dict[str, Any]]:
    """An OpenAI stream asking for ``calls`` (id, name, arguments), in ``tests.upstream``'s
    chunk layout: each call opened by one chunk, its arguments in a second one."""
    chunks = [chunk(role="assistant")]
    chunks[0]["choices"][0]["delta"]["content"] = None
    for index, (call_id, name, arguments) in enumerate(calls):
        opening = {"index": index, "id": call_id, "type": "function"}
        opening["function"] = {"name": name, "arguments": ""}
        chunks.append(_with_delta({"tool_calls": [opening]}))
        piece = {"index": index, "function": {"arguments": arguments}}
        chunks.append(_with_delta({"tool_calls": [piece]}))
    chunks.append(chunk(finish_reason="tool_calls"))
    chunks.append(usage_chunk(prompt, 10 * len(calls)))
    return chunks


def _with_delta(delta: dict[str, Any]) -> dict[str, Any]:
    result = chunk()
    result["choices"][0]["delta"] = delta
    return result
