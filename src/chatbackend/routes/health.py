"""Liveness and readiness probes: no paid call, no authentication."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from chatbackend import errors
from chatbackend.dependencies import ServiceDep
from chatbackend.protocol import ErrorResponse
from chatbackend.providers.fallback import FallbackChain
from chatbackend.streaming import error_response

router = APIRouter()


@router.get("/health/live")
async def live() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/health/ready", responses={503: {"model": ErrorResponse}})
async def ready(service: ServiceDep) -> JSONResponse:
    """The provider is configured, its credential can produce a token and (for the embedded
    model) the model is loaded; the answer is cached for a few seconds, and no paid call is made."""
    provider = service.provider
    problem = await service.readiness()
    if problem is not None:
        return error_response(errors.NotReady(f"provider {provider.name} is not ready: {problem}"))
    body: dict[str, Any] = {"status": "ready", "provider": provider.name, "model": provider.model}
    if isinstance(provider, FallbackChain):
        body["providers"] = await provider.states()
    return JSONResponse(body)
