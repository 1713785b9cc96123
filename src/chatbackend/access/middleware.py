"""The access middleware: who is calling, whether they may, and the ``RateLimit-*`` headers.

A pure ASGI middleware, so a refused request is answered before its body is read and the headers
reach streamed responses too. It finds the ``Access`` the lifespan built in the request's state,
puts the caller in ``scope["chatbackend.caller"]`` for the routes, and adds the caller's tighter
rate-limit window to every response it lets through. Tokens are counted by each answer's
``on_finish`` hook (``chatbackend.access.usage``), when the answer ends.
"""

from __future__ import annotations

from typing import cast

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatbackend import errors
from chatbackend.access.caller import SCOPE_KEY
from chatbackend.access.service import Access, RateLimitRefused
from chatbackend.requestlog import note_error

STATE_KEY = "access"
# The caller with its quota, for the token meter (``chatbackend.access.usage``).
IDENTITY_KEY = "chatbackend.identity"


class AccessControl:
    def __init__(self, app: ASGIApp, *, open_paths: frozenset[str]) -> None:
        self.app = app
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        access = cast(Access, scope["state"][STATE_KEY])
        try:
            identity = await access.authenticate(_presented_key(scope))
            window = await access.admit(identity)
        except errors.ChatError as exc:
            await _refuse(exc, scope, receive, send, challenge=access.challenge)
            return
        scope[SCOPE_KEY] = identity.caller
        scope[IDENTITY_KEY] = identity
        extra = window.headers() if window is not None else []

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start" and extra:
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _presented_key(scope: Scope) -> str | None:
    """The key from ``Authorization: Bearer <key>`` or ``api-key: <key>``, if either is sent."""
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for name, value in headers:
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
        elif name == b"api-key" and value.strip():
            return value.decode("latin-1").strip()
    return None


async def _refuse(
    exc: errors.ChatError, scope: Scope, receive: Receive, send: Send, *, challenge: str
) -> None:
    note_error(exc.code)
    headers: dict[str, str] = {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(exc.retry_after + 0.499)))
    if isinstance(exc, errors.Unauthorized):
        headers["WWW-Authenticate"] = challenge
    if isinstance(exc, RateLimitRefused):
        headers.update((name.decode(), value.decode()) for name, value in exc.window.headers())
    response = JSONResponse(errors.error_body(exc.code, exc.message), exc.status, headers=headers)
    await response(scope, receive, send)
