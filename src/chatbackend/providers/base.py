"""The one small interface every provider implements: a generation request in, typed deltas out.

Providers translate their upstream's failures into ``chatbackend.errors`` and know nothing about
HTTP on our side; the service decides retries and deadlines, the encoders decide the bytes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from chatbackend.protocol import Role, Usage

AuthMode = Literal["api-key", "managed-identity", "developer-credential", "token", "none"]


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str


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

    def is_ready(self) -> bool:
        """Whether the provider can serve (configured, model loaded) without a paid call."""
        ...

    async def aclose(self) -> None:
        """Release clients, credentials and models."""
        ...
