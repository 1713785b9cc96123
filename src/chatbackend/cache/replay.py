"""A cached answer on the wire: the bytes the original answer was sent as, for a hit."""

from __future__ import annotations

from pydantic import JsonValue
from starlette.requests import Request
from starlette.responses import Response

from chatbackend.cache.store import CachedAnswer
from chatbackend.chat import Answer
from chatbackend.encoders import encoding_for, final_event, first_event
from chatbackend.protocol import ChatResponse
from chatbackend.streaming import chat_response

CACHE_HEADER = "X-Cache"
HIT = "hit"
MISS = "miss"


def replay_stream(
    request: Request, entry: CachedAnswer, answer: Answer, *, session_state: JsonValue
) -> Response:
    """``/chat/stream`` from the cache: the same lines (NDJSON or SSE) as the stored answer's.

    ``answer`` (never opened) brings this request's own first- and final-line context."""
    encoding = encoding_for(request.headers.get("accept", ""))
    body = [encoding.encode(first_event(answer.context_first))]
    body += [encoding.text(part) for part in entry.parts]
    body.append(encoding.encode(final_event(entry.finish, answer.context_final, session_state)))
    return Response(
        b"".join(body),
        media_type=encoding.media_type,
        headers={"Cache-Control": "no-store", CACHE_HEADER: HIT},
    )


def replay_whole(entry: CachedAnswer, answer: Answer, *, session_state: JsonValue) -> ChatResponse:
    """``/chat`` from the cache."""
    return chat_response(entry.outcome, answer.context_final, session_state=session_state)
