"""Running the tool calls of one model turn: concurrently, each under a timeout, never raising.

Whatever goes wrong with a call (an unknown tool, arguments that do not fit, a tool that raises
or runs too long) becomes a ``ToolResult`` with an ``error``, which is sent back to the model as
the call's result: the model can correct itself, and the client's answer goes on. Only
cancellation (a client that went away) propagates, and it cancels every call still running.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from typing import Protocol

from chatbackend.providers.base import ToolFailure, ToolFailureCode, ToolResult
from chatbackend.tools.context import ToolContext, current_tool_context
from chatbackend.tools.registry import InvalidArguments, ToolError, ToolRegistry

logger = logging.getLogger("chatbackend.tools")


class Call(Protocol):
    """A tool call the model made (``providers.base.ToolCall``)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def arguments(self) -> str: ...


class ToolTrace(Protocol):
    def end(self, result: ToolResult | None) -> None:
        """The call ended with ``result``, or was cancelled (``None``)."""


class ToolTracer(Protocol):
    """Telemetry for tool runs (``execute_tool`` spans); absent when telemetry is off."""

    def start(self, call: Call) -> ToolTrace: ...


class ToolRunner:
    """Runs calls against ``registry`` with ``timeout`` seconds per call."""

    def __init__(
        self, registry: ToolRegistry, *, timeout: float, tracer: ToolTracer | None = None
    ) -> None:
        self.registry = registry
        self.timeout = timeout
        self.tracer = tracer

    async def run_all(
        self, calls: Sequence[Call], *, names: Sequence[str] | None = None
    ) -> list[ToolResult]:
        """Every call's result, in the order of ``calls``; the calls run concurrently.

        ``names`` narrows the tools for this request (``context.overrides.tools``); the tools
        that ask for it get the request's ``ToolContext`` (``tools.context``).
        """
        registry = self.registry.select(names) if names is not None else None
        context = current_tool_context()
        if len(calls) == 1:
            return [await self.run(calls[0], registry=registry, context=context)]
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(self.run(call, registry=registry, context=context))
                for call in calls
            ]
        return [task.result() for task in tasks]

    async def run(
        self,
        call: Call,
        *,
        registry: ToolRegistry | None = None,
        context: ToolContext | None = None,
    ) -> ToolResult:
        trace = self.tracer.start(call) if self.tracer is not None else None
        result: ToolResult | None = None
        try:
            result = await self._run(call, registry or self.registry, context)
            return result
        finally:
            if trace is not None:
                trace.end(result)

    def without(self, names: Iterable[str]) -> ToolRunner:
        """This runner less the named tools."""
        return ToolRunner(self.registry.without(names), timeout=self.timeout, tracer=self.tracer)

    async def _run(
        self, call: Call, registry: ToolRegistry, context: ToolContext | None
    ) -> ToolResult:
        tool = registry.get(call.name)
        if tool is None:
            known = ", ".join(registry.names) or "none"
            message = f"there is no tool named {call.name!r}; the tools are: {known}"
            return _failed(call, "unknown_tool", message)
        try:
            async with asyncio.timeout(self.timeout) as deadline:
                content = await tool.run(call.arguments, context=context)
        except InvalidArguments as exc:
            return _failed(call, "invalid_arguments", f"invalid arguments: {exc}")
        except ToolError as exc:
            return _failed(call, "tool_error", str(exc))
        except TimeoutError:
            if not deadline.expired():
                return self._crashed(call, TimeoutError())
            return _failed(call, "tool_timeout", f"the tool did not finish in {self.timeout:g} s")
        except Exception as exc:
            return self._crashed(call, exc)
        return ToolResult(id=call.id, name=call.name, content=content)

    def _crashed(self, call: Call, exc: Exception) -> ToolResult:
        # Its text may hold anything (paths, the arguments): logged by type, not sent anywhere.
        logger.warning("tool %s raised %s", call.name, type(exc).__name__)
        return _failed(call, "tool_failed", "the tool failed")


def _failed(call: Call, code: ToolFailureCode, message: str) -> ToolResult:
    return ToolResult(id=call.id, name=call.name, error=ToolFailure(code, message))
