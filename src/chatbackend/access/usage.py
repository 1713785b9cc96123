"""Counting an answer's tokens against its caller: an ``on_finish`` hook per answer."""

from __future__ import annotations

from chatbackend.access.service import Access, Identity
from chatbackend.chat import Hook, Outcome


class TokenMeter:
    """``answer.on_finish(meter)``: adds the answer's total tokens to the caller's window."""

    __slots__ = ("_access", "_identity")

    def __init__(self, access: Access, identity: Identity | None) -> None:
        self._access = access
        self._identity = identity

    async def __call__(self, outcome: Outcome) -> None:
        usage = outcome.usage
        if usage is None or self._identity is None:
            return
        await self._access.spend_tokens(self._identity, usage.total_tokens)


def meter_for(access: Access, identity: object) -> Hook:
    return TokenMeter(access, identity if isinstance(identity, Identity) else None)
