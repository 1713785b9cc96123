"""Tool-call streams as OpenAI and Azure OpenAI send them, byte for byte (``upstream_streams/``).

The files follow recorded streams of the real services (the openai SDK's own test recordings and
Azure's chunk layout: a ``prompt_filter_results`` chunk first, keys sorted, a
``content_filter_results`` object and an ``obfuscation`` field on every chunk); the ids, tools
and arguments are this project's.
"""

from __future__ import annotations

from pathlib import Path

STREAMS = Path(__file__).parent / "upstream_streams"


def stream_bytes(name: str) -> bytes:
    return (STREAMS / f"{name}.sse").read_bytes()


def frames(name: str, *, size: int | None = None) -> list[bytes]:
    """The stream's events, one per network read, or the bytes cut every ``size`` bytes."""
    data = stream_bytes(name)
    if size is not None:
        return [data[at : at + size] for at in range(0, len(data), size)]
    return [event + b"\n\n" for event in data.split(b"\n\n") if event]
