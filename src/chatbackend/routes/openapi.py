"""The documented error responses and stream examples shared by the routes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI

from chatbackend.batch.models import BatchResponse
from chatbackend.encoders import NDJSON_MEDIA_TYPE, SSE_MEDIA_TYPE
from chatbackend.protocol import ErrorResponse
from chatbackend.wirecheck import FREE_JSON_MARK, FREE_JSON_NAME, FREE_JSON_REF, FREE_JSON_SCHEMA

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
ERROR_SCHEMA_REF = "#/components/schemas/ErrorResponse"
# What the HTTP server answers for any request before the app sees it (``httpprotocol``).
SERVER_ERRORS = {
    408: "The request's headers and body did not arrive within HTTP_READ_TIMEOUT (request_timeout)",
    414: "The URL is longer than HTTP_MAX_HEADER_LINE_BYTES (uri_too_long)",
    431: "A header line, all headers or their number is over its limit (headers_too_large)",
}
# What any request with a body may get before its route runs (``limits``, ``app``).
BODY_ERRORS = {
    400: "The body does not parse as JSON (invalid_json)",
    413: "The request body is larger than CHAT_MAX_BODY_BYTES (body_too_large)",
    415: "The body is not sent with Content-Type: application/json (unsupported_media_type)",
}


def complete_document(app: FastAPI, *, tool_names: Sequence[str]) -> None:
    """Replace ``app.openapi`` with one that adds what the routes cannot say themselves: the
    errors every operation may get before its route runs, and the tools this server offers (the
    only names ``context.overrides.tools`` accepts)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.setdefault("ErrorResponse", _error_schema(components))
            components[FREE_JSON_NAME] = FREE_JSON_SCHEMA
            _refer_to_free_json(schema)
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    _add_errors(operation)
            if "Overrides" in components:
                _name_tools(components["Overrides"], tool_names)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _refer_to_free_json(node: object) -> None:
    """Replace every ``FREE_JSON_MARK`` in the document with a reference to its schema."""
    pending = [node]
    while pending:
        item = pending.pop()
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        for child in children:
            if child == FREE_JSON_MARK:
                child.clear()
                child.update(FREE_JSON_REF)
            elif isinstance(child, dict | list):
                pending.append(child)


def _name_tools(overrides: dict[str, Any], names: Sequence[str]) -> None:
    for variant in overrides.get("properties", {}).get("tools", {}).get("anyOf", []):
        if variant.get("type") == "array":
            if names:
                variant["items"] = {"type": "string", "enum": list(names)}
            else:
                variant["maxItems"] = 0


def _add_errors(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    described = dict(SERVER_ERRORS)
    if "application/json" in operation.get("requestBody", {}).get("content", {}):
        described.update(BODY_ERRORS)
    for status, description in described.items():
        responses.setdefault(
            str(status),
            {
                "description": description,
                "content": {"application/json": {"schema": {"$ref": ERROR_SCHEMA_REF}}},
            },
        )


def _error_schema(components: dict[str, Any]) -> dict[str, Any]:
    schema = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(schema.pop("$defs", {}))
    return schema
