"""What a tool may know of the request it runs for: the caller, and the app's documents service.

A tool asks for it with a parameter typed ``ToolContext`` (left out of its JSON schema; the
runner passes it). The chat routes bind it per request (``dependencies.bind_tools``) in a
context variable: the answer, its tool rounds and their tasks all run inside the request's task,
so they see it, and no other request does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chatbackend.access.caller import Caller
    from chatbackend.retrieval.service import DocumentService


@dataclass(frozen=True, slots=True)
class ToolContext:
    caller: Caller
    # ``None`` when retrieval is off (no embedder).
    documents: DocumentService | None = None


_current: ContextVar[ToolContext | None] = ContextVar("chatbackend_tool_context", default=None)


def bind_tool_context(context: ToolContext) -> None:
    """Make ``context`` the one of the current task (a request's) and the tasks it starts."""
    _current.set(context)


def current_tool_context() -> ToolContext | None:
    return _current.get()


@contextmanager
def using_tool_context(context: ToolContext) -> Iterator[None]:
    """``context`` for the tools run inside the block (outside a request: tests, scripts)."""
    token = _current.set(context)
    try:
        yield
    finally:
        _current.reset(token)
