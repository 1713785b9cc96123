"""``POST /batch``: many ``/chat`` requests in one; NDJSON as items finish, or one JSON body."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from chatbackend.batch.models import BatchRequest
from chatbackend.batch.response import batch_response
from chatbackend.dependencies import BatchRunnerDep
from chatbackend.routes.openapi import BATCH_RESPONSES

router = APIRouter()


@router.post("/batch", response_class=Response, responses=BATCH_RESPONSES)
async def batch(body: BatchRequest, runner: BatchRunnerDep, request: Request) -> Response:
    """Answer up to 100 requests, `BATCH_CONCURRENCY` at a time; a failed item does not fail
    the batch. With `Accept: application/x-ndjson` each item's result is one line, sent as it
    finishes; otherwise one JSON object holds them all, in the order of the items."""
    runner.check(body.items)
    return batch_response(request, runner, body.items)
