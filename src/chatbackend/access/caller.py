"""The caller a request is served for, as the access middleware found it."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import Scope

SCOPE_KEY = "chatbackend.caller"


@dataclass(frozen=True, slots=True)
class Caller:
    """``key_id`` is the API key's id; ``None`` when authentication is off (``AUTH_MODE=none``)."""

    key_id: str | None = None


ANONYMOUS = Caller()


def caller_of(scope: Scope) -> Caller:
    """The caller the access middleware put in ``scope`` (anonymous when it put none)."""
    caller = scope.get(SCOPE_KEY)
    return caller if isinstance(caller, Caller) else ANONYMOUS
