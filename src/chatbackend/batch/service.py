"""Batches: many ``/chat`` requests in one, answered a few at a time, each on its own.

Every item takes the ``/chat`` path (the response cache, retrieval, ``Answer`` with its deadlines,
retries, fallbacks and tools, the token meter) and is one request for the caller's rate limits.
At most ``BATCH_CONCURRENCY`` items run at once per caller, across all of the caller's batches in
this worker process. A failed item is a result like any other; cancelling the batch (the client
went away) cancels every item, and each closes its upstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from chatbackend import errors
from chatbackend.access.caller import Caller
from chatbackend.access.service import Access, Identity
from chatbackend.batch.models import BatchItem
from chatbackend.cache import ResponseCache
from chatbackend.cache.replay import replay_whole
from chatbackend.chat import ChatService, Hook
from chatbackend.protocol import ChatResponse
from chatbackend.retrieval.grounding import answer_for
from chatbackend.retrieval.service import DocumentService
from chatbackend.streaming import read_whole, whole_response

logger = logging.getLogger("chatbackend.batch")

Result = dict[str, Any]
OnResult = Callable[[int, Result], Awaitable[None]]


class CallerSlots:
    """At most ``limit`` batch items at once per caller (rate-limit bucket), in this process."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._semaphores: dict[str, asyncio.Semaphore] = {}
        self._users: Counter[str] = Counter()

    @contextlib.asynccontextmanager
    async def hold(self, bucket: str) -> AsyncIterator[None]:
        semaphore = self._semaphores.get(bucket)
        if semaphore is None:
            semaphore = self._semaphores[bucket] = asyncio.Semaphore(self.limit)
        self._users[bucket] += 1
        try:
            async with semaphore:
                yield
        finally:
            self._users[bucket] -= 1
            if not self._users[bucket]:
                del self._users[bucket], self._semaphores[bucket]


class BatchRunner:
    """Runs one caller's batch; built per request by the dependency."""

    def __init__(
        self,
        *,
        service: ChatService,
        documents: DocumentService | None,
        cache: ResponseCache | None,
        access: Access,
        identity: Identity | None,
        caller: Caller,
        meter: Hook,
        slots: CallerSlots,
    ) -> None:
        self._service = service
        self._documents = documents
        self._cache = cache
        self._access = access
        self._identity = identity
        self._caller = caller
        self._meter = meter
        self._slots = slots
        self._bucket = identity.bucket if identity is not None else "anonymous"

    def check(self, items: Sequence[BatchItem]) -> None:
        """Refuse the whole batch (422, naming the item) for what ``/chat`` would refuse."""
        for index, item in enumerate(items):
            try:
                self._service.prepare(item.chat_request())
            except errors.InvalidRequest as exc:
                raise errors.InvalidRequest(f"items[{index}].{exc.message}") from None

    async def run(self, items: Sequence[BatchItem], on_result: OnResult) -> None:
        """Answer every item; ``on_result(index, result)`` as each one finishes."""
        tasks: list[asyncio.Future[Result]] = [
            asyncio.ensure_future(self._item(item)) for item in items
        ]
        index_of = {task: index for index, task in enumerate(tasks)}
        try:
            pending: set[asyncio.Future[Result]] = set(tasks)
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in sorted(done, key=index_of.__getitem__):
                    await on_result(index_of[task], task.result())
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _item(self, item: BatchItem) -> Result:
        async with self._slots.hold(self._bucket):
            try:
                response = await self._answer(item)
            except errors.ChatError as exc:
                return {"id": item.id, **exc.body()}
            except Exception:
                logger.exception("a batch item failed")
                return {"id": item.id, **errors.ChatError().body()}
        return {"id": item.id, **response.model_dump(mode="json", exclude={"sessionState"})}

    async def _answer(self, item: BatchItem) -> ChatResponse:
        if self._identity is not None:
            await self._access.admit(self._identity)
        request = item.chat_request()
        answer = await answer_for(self._service, self._documents, self._caller, request, whole=True)
        answer.on_finish(self._meter)
        if self._cache is not None:
            entry = await self._cache.consult(answer, self._caller)
            if entry is not None:
                return replay_whole(entry, answer, session_state=None)
        await read_whole(answer)
        return whole_response(answer, session_state=None)
