"""The chat page: ``GET /`` and its static files under ``/ui/``, with a strict CSP.

The files live in ``chatbackend/web`` (shipped as package data); the protocol client, marked and
DOMPurify are vendored copies of their npm builds (``make web-vendor``), so nothing is fetched
from anywhere but this origin.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from pydantic import BaseModel
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from chatbackend.dependencies import OptionalDocumentsDep

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


def page_paths() -> frozenset[str]:
    """Every path the page is served from: open without an API key (the page asks for one)."""
    files = (p.relative_to(WEB_DIR).as_posix() for p in WEB_DIR.rglob("*") if p.is_file())
    return frozenset(("/", "/ui/config.json", *(f"/ui/{name}" for name in files)))


class PageFeatures(BaseModel):
    """What the page may use on this server."""

    conversations: bool
    # Documents and grounded answers (issue 15): the page offers "Answer from my documents".
    documents: bool


@router.get("/")
async def page() -> FileResponse:
    return FileResponse(WEB_DIR / "index.html", media_type="text/html", headers=PAGE_HEADERS)


class _PageFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(PAGE_HEADERS)
        return response


def add_page(app: FastAPI, *, conversations: bool) -> None:
    """Serve the page; ``conversations``: this app has the conversation API (issue 12)."""

    async def page_features(documents: OptionalDocumentsDep) -> PageFeatures:
        """Lets the page skip what this server does not offer (set up in the lifespan)."""
        return PageFeatures(conversations=conversations, documents=documents is not None)

    app.include_router(router)
    app.add_api_route("/ui/config.json", page_features, methods=["GET"], include_in_schema=False)
    app.mount("/ui", _PageFiles(directory=WEB_DIR), name="ui")
