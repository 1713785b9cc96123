"""The chat page: ``GET /`` and its static files under ``/ui/``, with a strict CSP.

The files live in ``chatbackend/web`` (shipped as package data); the protocol client, marked and
DOMPurify are vendored copies of their npm builds (``make web-vendor``), so nothing is fetched
from anywhere but this origin.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

WEB_DIR = Path(str(files("chatbackend") / "web"))
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


class PageFeatures(BaseModel):
    """What the page may use on this server."""

    conversations: bool


@router.get("/")
async def page() -> FileResponse:
    return FileResponse(WEB_DIR / "index.html", media_type="text/html", headers=PAGE_HEADERS)


@router.get("/ui/config.json")
async def page_features(request: Request) -> PageFeatures:
    """Lets the page skip the conversation list on a server that keeps no conversations."""
    paths = {getattr(route, "path", None) for route in request.app.router.routes}
    return PageFeatures(conversations="/conversations" in paths)


class _PageFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(PAGE_HEADERS)
        return response


def add_page(app: FastAPI) -> None:
    """Serve the page; call after every other router, so ``/ui/config.json`` sees them all."""
    app.include_router(router)
    app.mount("/ui", _PageFiles(directory=WEB_DIR), name="ui")
