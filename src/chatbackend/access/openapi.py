"""The access rules in the OpenAPI document: the key schemes, and 401/429 where they apply."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from chatbackend.settings import Settings

_ERROR = {"$ref": "#/components/schemas/ErrorResponse"}
SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "An API key"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "api-key", "description": "An API key"},
}


def document_access(app: FastAPI, settings: Settings, open_paths: frozenset[str]) -> None:
    """Replace ``app.openapi`` with one that adds what the access middleware may answer."""
    limited = (
        settings.rate_limit_requests_per_minute is not None
        or settings.rate_limit_tokens_per_minute is not None
    )
    keys = settings.auth_mode == "api-key"
    fail_closed = limited and settings.rate_limit_on_storage_error == "closed"

    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            if keys:
                schema.setdefault("components", {})["securitySchemes"] = SCHEMES
            for path, operations in schema.get("paths", {}).items():
                if path not in open_paths:
                    for operation in operations.values():
                        _add(operation, keys=keys, limited=limited, fail_closed=fail_closed)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _add(operation: dict[str, Any], *, keys: bool, limited: bool, fail_closed: bool) -> None:
    responses = operation.setdefault("responses", {})
    content = {"application/json": {"schema": _ERROR}}
    if keys:
        operation["security"] = [{"bearer": []}, {"apiKey": []}]
        responses["401"] = {
            "description": "Missing, unknown or revoked API key",
            "content": content,
        }
    if limited:
        responses["429"] = {
            "description": "Over the caller's or the provider's rate limit; see Retry-After",
            "content": content,
        }
    if fail_closed:
        unavailable = "the rate limit store cannot be reached (rate_limit_unavailable)"
        if "503" in responses:
            responses["503"]["description"] += f"; or {unavailable}"
        else:
            responses["503"] = {"description": unavailable.capitalize(), "content": content}
