"""The documented error responses and stream examples shared by the routes."""

from __future__ import annotations

from typing import Any

from chatbackend.batch.models import BatchResponse
from chatbackend.encoders import NDJSON_MEDIA_TYPE, SSE_MEDIA_TYPE
from chatbackend.protocol import ErrorResponse

_NDJSON_EXAMPLE = "\n".join(
    [
        '{"delta":{"role":"assistant"}}',
        '{"delta":{"content":"Paris"}}',
        '{"delta":{"content":"."}}',
        '{"delta":{},"context":{"finish_reason":"stop","usage":{"prompt_tokens":25,'
        '"completion_tokens":2,"total_tokens":27},"model":"gpt-4.1-mini"},"sessionState":null}',
    ]
)
_SSE_EXAMPLE = 'data: {"delta":{"role":"assistant"}}\n\ndata: {"delta":{"content":"Paris."}}\n\n'

Responses = dict[int | str, dict[str, Any]]


def errors(descriptions: dict[int, str]) -> Responses:
    """OpenAPI ``responses`` entries for error statuses, each with the protocol error body."""
    return {
        status: {"model": ErrorResponse, "description": description}
        for status, description in descriptions.items()
    }


CHAT_ERRORS = errors(
    {
        400: "Invalid JSON, or the request was refused (content_filter, upstream_rejected)",
        413: "Request body too large",
        422: "Request failed validation; the message names the field",
        429: "Rate limited upstream; see Retry-After",
        502: "The model provider failed or is misconfigured",
        503: "The server or the embedded model is busy (overloaded); see Retry-After",
        504: "The model provider did not answer in time",
    }
)
STREAM_RESPONSES: Responses = {
    200: {
        "description": "One JSON object per line (NDJSON), or SSE with `Accept: text/event-stream`",
        "content": {
            NDJSON_MEDIA_TYPE: {"schema": {"type": "string"}, "example": _NDJSON_EXAMPLE},
            SSE_MEDIA_TYPE: {"schema": {"type": "string"}, "example": _SSE_EXAMPLE},
        },
    },
    **CHAT_ERRORS,
}


_BATCH_NDJSON_EXAMPLE = "\n".join(
    [
        '{"id":"q2","message":{"role":"assistant","content":"Rome."},"context":{"finish_reason":'
        '"stop","usage":{"prompt_tokens":22,"completion_tokens":2,"total_tokens":24},'
        '"model":"gpt-4.1-mini"}}',
        '{"id":"q1","error":{"code":"upstream_timeout","message":"The model provider did not '
        'answer in time."}}',
    ]
)


def _batch_responses() -> Responses:
    return {
        200: {
            "model": BatchResponse,
            "description": (
                "Every item's result: `{\"items\": [...]}` in the order of the request's items, "
                "or with `Accept: application/x-ndjson` one result per line as each item "
                'finishes. A result is `{"id", "message", "context"}` or '
                '`{"id", "error"}`; a failed item never fails the batch.'
            ),
            "content": {
                NDJSON_MEDIA_TYPE: {
                    "schema": {"type": "string", "description": "one result per line"},
                    "example": _BATCH_NDJSON_EXAMPLE,
                }
            },
        },
        **errors(
            {
                400: "Invalid JSON, or an item names tools the model cannot call",
                413: "Request body too large",
                415: "The body is not JSON",
                422: "The batch or one of its items failed validation; the message names it",
            }
        ),
    }


BATCH_RESPONSES = _batch_responses()
