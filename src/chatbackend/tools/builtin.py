"""The tools that ship with the server."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from chatbackend.settings import Settings, SettingsError
from chatbackend.tools import calculator
from chatbackend.tools.documents import search_documents
from chatbackend.tools.registry import Tool, ToolRegistry, tool
from chatbackend.tools.runner import ToolRunner, ToolTracer


def _known_zone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError("unknown time zone; use an IANA name such as Europe/Paris") from None
    return name


TimeZoneName = Annotated[
    str,
    Field(min_length=1, max_length=64, examples=["Europe/Paris", "America/New_York", "UTC"]),
    AfterValidator(_known_zone),
]


@tool
async def get_current_time(timezone: TimeZoneName = "UTC") -> dict[str, Any]:
    """Get the current date and time in a time zone.

    Args:
        timezone: IANA time zone name, for example Europe/Paris or America/New_York.
    """
    now = dt.datetime.now(zoneinfo.ZoneInfo(timezone))
    return {
        "timezone": timezone,
        "datetime": now.isoformat(timespec="seconds"),
        "weekday": now.strftime("%A"),
        "utc_offset": now.strftime("%z"),
    }


@tool
async def calculate(
    expression: Annotated[str, Field(min_length=1, max_length=calculator.MAX_LENGTH)],
) -> int | float:
    """Evaluate an arithmetic expression exactly, instead of doing the arithmetic yourself.

    Args:
        expression: numbers with + - * / // % ** and parentheses, the functions abs, round,
            min, max, sqrt, exp, log, log10, sin, cos, tan, floor, ceil and the constants pi,
            e, tau; for example (17 * 3) / 4 or sqrt(2) ** 2.
    """
    return calculator.evaluate(expression)


# ``search_documents`` is offered only when retrieval is on (see ``tools.documents``).
BUILTIN_TOOLS: tuple[Tool, ...] = (get_current_time, calculate, search_documents)


def builtin_registry() -> ToolRegistry:
    """Every tool that ships with the server (``CHAT_TOOLS`` selects among them)."""
    return ToolRegistry(BUILTIN_TOOLS)


def configured_runner(
    settings: Settings, tools: ToolRegistry | None = None, *, tracer: ToolTracer | None = None
) -> ToolRunner:
    """The runner of the tools ``CHAT_TOOLS`` enables among ``tools`` (the built-in ones)."""
    registry = tools if tools is not None else builtin_registry()
    if settings.chat_tools is not None:
        try:
            registry = registry.select(settings.chat_tools)
        except KeyError as exc:
            known = ", ".join(registry.names)
            raise SettingsError(
                f"invalid configuration: CHAT_TOOLS: unknown tool {exc.args[0]}; the tools are: "
                f"{known}"
            ) from None
    return ToolRunner(registry, timeout=settings.chat_tool_timeout, tracer=tracer)
