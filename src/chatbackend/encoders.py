"""The wire encodings of a chat stream: plain functions from one protocol event to bytes.

Encoders know nothing of providers or answers: ``streaming.AnswerStream`` builds the events
(``first_event``, a text delta, ``final_event`` or an error body) and picks the ``Encoding``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import JsonValue

from chatbackend.providers.base import Finish

Event = dict[str, Any]

NDJSON_MEDIA_TYPE = "application/x-ndjson"
SSE_MEDIA_TYPE = "text/event-stream"
SSE_KEEPALIVE = b": keep-alive\n\n"


def dumps(event: Event) -> bytes:
    """Compact UTF-8 JSON (orjson: a tenth of the json module's cost on these small objects)."""
    return orjson.dumps(event)


def first_event(context: dict[str, Any]) -> Event:
    """The line that opens every answer; ``context`` (sources, say) rides on it when present."""
    if context:
        return {"delta": {"role": "assistant"}, "context": context}
    return {"delta": {"role": "assistant"}}


def finish_context(finish: Finish) -> dict[str, Any]:
    """The protocol ``context`` of a finished answer."""
    return {
        "finish_reason": finish.finish_reason,
        "usage": finish.usage.as_dict() if finish.usage else None,
        "model": finish.model,
    }


def final_event(finish: Finish, extra: dict[str, Any], session_state: JsonValue) -> Event:
    context = finish_context(finish)
    if extra:
        context.update(extra)
    return {"delta": {}, "context": context, "sessionState": session_state}


def ndjson_line(event: Event) -> bytes:
    return orjson.dumps(event) + b"\n"


def ndjson_text(content: str) -> bytes:
    """``ndjson_line({"delta": {"content": content}})``, without building the dicts."""
    return b'{"delta":{"content":' + orjson.dumps(content) + b"}}\n"


def sse_frame(event: Event) -> bytes:
    return b"data: " + orjson.dumps(event) + b"\n\n"


def sse_text(content: str) -> bytes:
    return b'data: {"delta":{"content":' + orjson.dumps(content) + b"}}\n\n"


def sse_error(event: Event) -> bytes:
    return b"event: error\ndata: " + orjson.dumps(event) + b"\n\n"


@dataclass(frozen=True, slots=True)
class Encoding:
    """How one stream's events become bytes; ``keepalive`` is ``None`` where there is none."""

    media_type: str
    encode: Callable[[Event], bytes]
    text: Callable[[str], bytes]
    error: Callable[[Event], bytes]
    keepalive: bytes | None


NDJSON = Encoding(NDJSON_MEDIA_TYPE, ndjson_line, ndjson_text, ndjson_line, None)
SSE = Encoding(SSE_MEDIA_TYPE, sse_frame, sse_text, sse_error, SSE_KEEPALIVE)


def encoding_for(accept: str) -> Encoding:
    """SSE when the client accepts ``text/event-stream``, else NDJSON."""
    return SSE if SSE_MEDIA_TYPE in accept else NDJSON
