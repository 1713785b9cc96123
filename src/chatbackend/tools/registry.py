"""Tools the model may call: one typed async function each, its JSON schema derived by pydantic.

``@tool`` reads the function's signature (``Annotated[..., Field(...)]`` constraints included) into
a pydantic model that both produces the ``parameters`` schema sent upstream and validates the
arguments the model sends back; the description is the docstring's first paragraph, and each
parameter's description comes from its ``Field`` or from the docstring's ``Args:`` section. A
parameter typed ``ToolContext`` is not the model's to fill: the runner passes the request's.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, overload

import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic.fields import FieldInfo

from chatbackend.providers.base import ToolDefinition
from chatbackend.tools.context import ToolContext

ToolFunction = Callable[..., Awaitable[object]]
JsonSchema = dict[str, Any]
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ARG_LINE = re.compile(r"^\s*(\w+)\s*(?:\([^)]*\))?\s*:\s*(.+)$")


class ToolError(Exception):
    """Raised by a tool with a message meant for the model (``"unknown time zone 'X'"``)."""


class InvalidArguments(Exception):
    """The model's arguments are not JSON, or do not fit the tool's signature."""


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the model may call, with the schema of its arguments."""

    name: str
    description: str
    parameters: JsonSchema
    function: ToolFunction
    arguments: type[BaseModel]
    # The parameter typed ``ToolContext``, if the function takes one: passed by the runner.
    context_parameter: str | None = None

    @property
    def definition(self) -> ToolDefinition:
        """What the model is told about the tool."""
        return ToolDefinition(self.name, self.description, self.parameters)

    async def run(self, arguments: str, *, context: ToolContext | None = None) -> str:
        """Validate ``arguments`` (JSON text), call the function, return its result as text.

        Raises ``InvalidArguments`` for arguments that do not fit, ``ToolError`` when the tool
        needs the request's ``context`` and there is none; whatever the function raises is
        passed on.
        """
        try:
            parsed = self.arguments.model_validate_json(arguments.strip() or "{}")
        except ValidationError as exc:
            raise InvalidArguments(_describe(exc)) from None
        values = {name: getattr(parsed, name) for name in type(parsed).model_fields}
        if self.context_parameter is not None:
            if context is None:
                raise ToolError(f"{self.name} is not available outside a request")
            values[self.context_parameter] = context
        result = await self.function(**values)
        return result if isinstance(result, str) else pydantic_core.to_json(result).decode()


@overload
def tool(function: ToolFunction, /) -> Tool: ...
@overload
def tool(*, name: str | None = None) -> Callable[[ToolFunction], Tool]: ...
def tool(
    function: ToolFunction | None = None, /, *, name: str | None = None
) -> Tool | Callable[[ToolFunction], Tool]:
    """Make a ``Tool`` of an async function: ``@tool`` or ``@tool(name="other_name")``."""

    def make(function: ToolFunction) -> Tool:
        return build_tool(function, name=name)

    return make(function) if function is not None else make


def build_tool(function: ToolFunction, *, name: str | None = None) -> Tool:
    if not inspect.iscoroutinefunction(function):
        raise TypeError(f"tool {function.__qualname__} must be an async function")
    tool_name = name or function.__name__
    if not _NAME.match(tool_name):
        raise ValueError(f"tool name {tool_name!r} must match {_NAME.pattern}")
    summary, documented = _parse_docstring(inspect.getdoc(function) or "")
    if not summary:
        raise ValueError(f"tool {tool_name} needs a docstring: it is the model's description")
    hints = typing.get_type_hints(function, include_extras=True)
    context = next((n for n, h in hints.items() if h is ToolContext and n != "return"), None)
    model = _arguments_model(function, tool_name, documented, hints, skip=context)
    return Tool(
        name=tool_name,
        description=summary,
        parameters=_without_titles(model.model_json_schema()),
        function=function,
        arguments=model,
        context_parameter=context,
    )


def _arguments_model(
    function: ToolFunction,
    tool_name: str,
    documented: dict[str, str],
    hints: dict[str, Any],
    *,
    skip: str | None,
) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind not in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
            raise TypeError(f"tool {tool_name}: *args and **kwargs have no schema")
        if parameter.name not in hints:
            raise TypeError(f"tool {tool_name}: parameter {parameter.name} needs a type hint")
        if parameter.name == skip:
            continue
        default = ... if parameter.default is parameter.empty else parameter.default
        description = documented.get(parameter.name)
        if _has_description(hints[parameter.name]):
            description = None
        field = Field(default, description=description) if description else default
        fields[parameter.name] = (hints[parameter.name], field)
    config = ConfigDict(extra="forbid")
    return create_model(f"{tool_name}_arguments", __config__=config, **fields)


def _has_description(hint: object) -> bool:
    """Whether an ``Annotated`` hint already carries a ``Field(description=...)``."""
    if typing.get_origin(hint) is not typing.Annotated:
        return False
    return any(isinstance(m, FieldInfo) and m.description for m in typing.get_args(hint)[1:])


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The first paragraph, and the entries of a Google-style ``Args:`` section."""
    summary = " ".join(doc.split("\n\n")[0].split())
    documented: dict[str, list[str]] = {}
    lines = iter(doc.splitlines())
    for line in lines:
        if line.strip() in ("Args:", "Arguments:", "Parameters:"):
            break
    current: list[str] = []
    indent = None
    for line in lines:
        if not line.strip() or not line[0].isspace():
            break
        depth = len(line) - len(line.lstrip())
        indent = depth if indent is None else indent
        if depth == indent and (match := _ARG_LINE.match(line)):
            current = documented.setdefault(match.group(1), [])
            current.append(match.group(2).strip())
        elif depth > indent:
            current.append(line.strip())
    return summary, {name: " ".join(parts) for name, parts in documented.items()}


def _without_titles(schema: JsonSchema) -> JsonSchema:
    """pydantic's schema without its ``title`` keys: tokens the model reads for nothing."""
    cleaned: JsonSchema = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key in ("properties", "$defs") and isinstance(value, dict):
            cleaned[key] = {name: _without_titles(sub) for name, sub in value.items()}
        elif isinstance(value, dict):
            cleaned[key] = _without_titles(value)
        elif isinstance(value, list):
            cleaned[key] = [_without_titles(v) if isinstance(v, dict) else v for v in value]
        else:
            cleaned[key] = value
    return cleaned


def _describe(exc: ValidationError) -> str:
    """The validation errors in a line the model can act on; the input values are left out."""
    problems = exc.errors(include_url=False, include_input=False)
    parts = []
    for problem in problems[:3]:
        location = ".".join(str(part) for part in problem["loc"])
        parts.append(f"{location}: {problem['msg']}" if location else problem["msg"])
    return "; ".join(parts)


class ToolRegistry:
    """The tools the server offers, by name."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for item in tools:
            if item.name in self._tools:
                raise ValueError(f"two tools are named {item.name}")
            self._tools[item.name] = item
        self._definitions = tuple(t.definition for t in self._tools.values())

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._tools)

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    @property
    def definitions(self) -> tuple[ToolDefinition, ...]:
        """What the model is told about every tool, built once."""
        return self._definitions

    def without(self, names: Iterable[str]) -> ToolRegistry:
        """This registry less the named tools (names it does not hold are ignored)."""
        unwanted = set(names)
        return ToolRegistry(t for t in self._tools.values() if t.name not in unwanted)

    def select(self, names: Iterable[str]) -> ToolRegistry:
        """The named subset, in this registry's order; an unknown name raises ``KeyError``."""
        wanted = set(names)
        if unknown := sorted(wanted - self._tools.keys()):
            raise KeyError(", ".join(unknown))
        return ToolRegistry(t for t in self._tools.values() if t.name in wanted)
