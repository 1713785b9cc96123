"""HTTP for batches: NDJSON lines as items finish, or one JSON body in item order.

The response runs the batch itself, so a client that goes away cancels every item at once (the
same disconnect watch as ``/chat``); items that already failed are results, never the status.
"""

from __future__ import annotations

import asyncio

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from chatbackend.batch.models import BatchItem
from chatbackend.batch.service import BatchRunner, Result
from chatbackend.encoders import NDJSON_MEDIA_TYPE
from chatbackend.streaming import DisconnectWatch

JSON_MEDIA_TYPE = "application/json"


class BatchStream(Response):
    def __init__(self, runner: BatchRunner, items: list[BatchItem], *, ndjson: bool) -> None:
        self.status_code = 200
        self.media_type = NDJSON_MEDIA_TYPE if ndjson else JSON_MEDIA_TYPE
        self.background = None
        self.init_headers({"Cache-Control": "no-store"})
        self._runner = runner
        self._items = items
        self._ndjson = ndjson

    async def __call__(self, _scope: Scope, receive: Receive, send: Send) -> None:
        watch = DisconnectWatch(receive)
        try:
            if self._ndjson:
                await self._stream(send)
            else:
                await self._whole(send)
        except asyncio.CancelledError:
            if not watch.consume():
                raise
        except OSError:
            pass  # the client is gone while we sent (ASGI 2.4 servers)
        finally:
            await watch.stop()

    async def _stream(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})

        async def line(_: int, result: Result) -> None:
            body = orjson.dumps(result) + b"\n"
            await send({"type": "http.response.body", "body": body, "more_body": True})

        await self._runner.run(self._items, line)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _whole(self, send: Send) -> None:
        results: list[Result] = [{} for _ in self._items]

        async def keep(index: int, result: Result) -> None:
            results[index] = result

        await self._runner.run(self._items, keep)
        body = orjson.dumps({"items": results})
        headers = [*self.raw_headers, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})


def batch_response(request: Request, runner: BatchRunner, items: list[BatchItem]) -> BatchStream:
    """NDJSON when the client accepts ``application/x-ndjson``, else one JSON body."""
    ndjson = NDJSON_MEDIA_TYPE in request.headers.get("accept", "")
    return BatchStream(runner, items, ndjson=ndjson)
