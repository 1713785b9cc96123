"""Function calling: tools the model can call, run by the server.

A tool is one typed async function::

    @tool
    async def get_weather(city: Annotated[str, Field(max_length=100)]) -> dict[str, float]:
        \"\"\"Get the current weather in a city.\"\"\"

Its JSON schema comes from the signature, its description from the docstring.
"""

from chatbackend.providers.base import ToolFailure, ToolResult
from chatbackend.tools.builtin import BUILTIN_TOOLS, builtin_registry, configured_runner
from chatbackend.tools.registry import InvalidArguments, Tool, ToolError, ToolRegistry, tool
from chatbackend.tools.runner import ToolRunner, ToolTrace, ToolTracer

__all__ = [
    "BUILTIN_TOOLS",
    "InvalidArguments",
    "Tool",
    "ToolError",
    "ToolFailure",
    "ToolRegistry",
    "ToolResult",
    "ToolRunner",
    "ToolTrace",
    "ToolTracer",
    "builtin_registry",
    "configured_runner",
    "tool",
]
