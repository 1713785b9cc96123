"""The leases of the turns this process has in flight, kept alive while their answers stream.

A turn's lease (``busy_token``, ``busy_until`` on its conversation) is taken for ``lease``
seconds. While the answer streams, one task per process renews every lease it holds with one
UPDATE every ``lease / 3`` seconds; the answer's completion hook gives the lease back. When the
process dies (``kill -9``, a lost replica), the renewals stop and the conversation takes turns
again ``lease`` seconds later at most. No lease is renewed past its turn's response deadline
(plus the lease), so a turn whose hook never ran cannot keep its conversation busy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import timedelta

from chatbackend.conversations.repository import ConversationRepository

logger = logging.getLogger("chatbackend.conversations")


class LeaseKeeper:
    def __init__(
        self, repository: ConversationRepository, *, lease: float, longest_turn: float
    ) -> None:
        self.lease = timedelta(seconds=lease)
        self._repository = repository
        self._interval = lease / 3
        self._longest_turn = longest_turn
        # token -> the monotonic time after which it is no longer renewed
        self._held: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    def hold(self, token: str) -> None:
        """Keep ``token``'s lease alive until ``release`` (or the turn's deadline)."""
        self._held[token] = time.monotonic() + self._longest_turn
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._renew_forever(), name="conversation-leases")

    def release(self, token: str) -> None:
        self._held.pop(token, None)

    async def _renew_forever(self) -> None:
        while self._held:
            await asyncio.sleep(self._interval)
            now = time.monotonic()
            for token in [t for t, until in self._held.items() if until < now]:
                del self._held[token]
            if not self._held:
                break
            try:
                await self._repository.renew_leases(list(self._held), self.lease)
            except Exception:
                # The leases run out unless the next renewal gets through; a turn whose lease
                # another turn then takes is not stored (its hook logs that).
                logger.warning("could not renew the leases of %d turns", len(self._held))

    async def aclose(self) -> None:
        task, self._task = self._task, None
        self._held.clear()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
