"""The one small interface every provider implements, and the domain types it speaks.

A generation request goes in, typed deltas come out. ``Usage``, ``Role`` and the ``Delta`` union
are the package's own types, not wire models: every consumer matches deltas exhaustively
(``match`` with ``assert_never``), so a new kind of delta is a type error until each one handles it.

Providers translate their upstream's failures into ``chatbackend.errors`` and know nothing about
HTTP on our side; the service decides retries and deadlines, the encoders decide the bytes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

AuthMode = Literal["api-key", "managed-identity", "developer-credential", "token", "none"]
Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens one model call (or, summed, one answer) consumed."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
        )

    def as_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool the model asked for: ``arguments`` is the complete JSON text of its arguments."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str
    # An assistant message that asked for tools, and the id a ``tool`` message answers.
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


@dataclass(frozen=True, slots=True)
class GenerationOptions:
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    stop: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    messages: Sequence[Message]
    options: GenerationOptions = GenerationOptions()


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the assistant's answer."""

    content: str


@dataclass(frozen=True, slots=True)
class Finish:
    """The end of an answer: why it ended, what it cost, which model wrote it."""

    finish_reason: str | None
    usage: Usage | None
    model: str


Delta = TextDelta | Finish


class Provider(Protocol):
    """A chat model: ``stream`` yields ``TextDelta``s and ends with one ``Finish``."""

    name: str
    model: str
    auth_mode: AuthMode

    def stream(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        """Generate an answer. Closing the iterator early must release the upstream at once."""
        ...

    async def ready(self) -> str | None:
        """``None`` when the provider can serve (configured, credential able to produce a token,
        model loaded), else why not; never makes a paid call."""
        ...

    async def aclose(self) -> None:
        """Release clients, credentials and models."""
        ...
