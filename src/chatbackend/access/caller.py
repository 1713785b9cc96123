"""The caller of a request. The API-key middleware puts a ``Caller`` in the ASGI scope under
``chatbackend.caller``; without it (keys off) every request is the anonymous caller, whose data
is the rows with no owner."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

SCOPE_KEY = "chatbackend.caller"


@dataclass(frozen=True)
class Caller:
    key_id: str | None


ANONYMOUS = Caller(None)


async def get_caller(request: Request) -> Caller:
    caller = request.scope.get(SCOPE_KEY)
    return caller if isinstance(caller, Caller) else ANONYMOUS
