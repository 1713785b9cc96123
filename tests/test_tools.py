"""Tools: schemas derived from signatures, the two built-in tools, and the runner's error rules."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import zoneinfo
from dataclasses import dataclass
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, Field

from chatbackend.providers.base import ToolDefinition
from chatbackend.settings import load_settings
from chatbackend.tools import (
    ToolError,
    ToolRegistry,
    ToolResult,
    ToolRunner,
    builtin_registry,
    tool,
)
from chatbackend.tools.builtin import calculate, get_current_time
from chatbackend.tools.calculator import CalculationError, evaluate

pytestmark = pytest.mark.anyio


@dataclass(frozen=True)
class Call:
    id: str
    name: str
    arguments: str


class Units(BaseModel):
    system: Literal["metric", "imperial"] = "metric"


@tool
async def get_weather(
    city: Annotated[str, Field(max_length=50, description="the city")],
    days: int = 1,
    units: Units | None = None,
) -> dict[str, object]:
    """Get the weather forecast for a city.

    The model never sees this second paragraph.

    Args:
        days: how many days ahead,
            counted from today.
        city: overridden by the Field's own description.
    """
    return {"city": city, "days": days, "units": (units or Units()).system}


def test_schema_comes_from_the_signature_and_the_docstring() -> None:
    assert get_weather.name == "get_weather"
    assert get_weather.definition == ToolDefinition(
        name="get_weather",
        description="Get the weather forecast for a city.",
        parameters={
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 50, "description": "the city"},
                "days": {
                    "type": "integer",
                    "default": 1,
                    "description": "how many days ahead, counted from today.",
                },
                "units": {
                    "anyOf": [{"$ref": "#/$defs/Units"}, {"type": "null"}],
                    "default": None,
                },
            },
            "required": ["city"],
            "additionalProperties": False,
            "$defs": {
                "Units": {
                    "type": "object",
                    "properties": {
                        "system": {
                            "type": "string",
                            "enum": ["metric", "imperial"],
                            "default": "metric",
                        }
                    },
                }
            },
        },
    )


def test_a_property_named_title_keeps_its_schema() -> None:
    @tool
    async def rename(title: str) -> str:
        """Rename the document."""
        return title

    assert rename.parameters["properties"] == {"title": {"type": "string"}}


def test_tool_name_can_be_given() -> None:
    @tool(name="weather-now")
    async def weather(city: str) -> str:
        """Weather now."""
        return city

    assert weather.name == "weather-now"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def f(x: int) -> int:\n    '''Doc.'''\n    return x", "must be an async function"),
        ("async def f(x) -> int:\n    '''Doc.'''\n    return 1", "needs a type hint"),
        ("async def f(*x: int) -> int:\n    '''Doc.'''\n    return 1", "no schema"),
        ("async def f(x: int) -> int:\n    return x", "needs a docstring"),
    ],
)
def test_tools_that_cannot_have_a_schema_are_refused(source: str, message: str) -> None:
    namespace: dict[str, object] = {}
    exec(source, namespace)  # noqa: S102 - builds a test function
    with pytest.raises((TypeError, ValueError), match=message):
        tool(namespace["f"])  # type: ignore[call-overload]


async def test_run_validates_and_serializes() -> None:
    result = await get_weather.run('{"city": "Oslo", "days": 2, "units": {"system": "imperial"}}')
    assert json.loads(result) == {"city": "Oslo", "days": 2, "units": "imperial"}


def test_registry_select_keeps_order_and_refuses_unknown_names() -> None:
    registry = builtin_registry()
    assert registry.names == ("get_current_time", "calculate", "search_documents")
    assert registry.select(["calculate"]).names == ("calculate",)
    with pytest.raises(KeyError, match="nope"):
        registry.select(["calculate", "nope"])
    with pytest.raises(ValueError, match="two tools"):
        ToolRegistry([calculate, calculate])


# -- the built-in tools --------------------------------------------------------------------------
async def test_current_time_in_a_zone() -> None:
    result = json.loads(await get_current_time.run('{"timezone": "Asia/Tokyo"}'))
    now = dt.datetime.fromisoformat(result["datetime"])
    assert now.utcoffset() == dt.timedelta(hours=9)
    assert abs((now - dt.datetime.now(dt.UTC)).total_seconds()) < 5
    assert result["timezone"] == "Asia/Tokyo"
    assert result["utc_offset"] == "+0900"
    assert result["weekday"] == now.strftime("%A")


async def test_current_time_defaults_to_utc() -> None:
    result = json.loads(await get_current_time.run("{}"))
    assert result["utc_offset"] == "+0000"


def test_time_zones_need_no_system_database() -> None:
    # The production image (python:slim) may lack /usr/share/zoneinfo: the tzdata package answers.
    zoneinfo.reset_tzpath(to=[])
    try:
        paris = zoneinfo.ZoneInfo.no_cache("Europe/Paris")
        assert paris.utcoffset(dt.datetime(2026, 1, 15)) == dt.timedelta(hours=1)
    finally:
        zoneinfo.reset_tzpath()


@pytest.mark.parametrize("zone", ["Mars/Olympus", "../../etc/passwd", "", "x" * 65])
async def test_unknown_time_zones_are_invalid_arguments(zone: str) -> None:
    runner = ToolRunner(builtin_registry(), timeout=1)
    result = await runner.run(Call("c1", "get_current_time", json.dumps({"timezone": zone})))
    assert result.error is not None
    assert result.error.code == "invalid_arguments"
    assert result.error.message.startswith("invalid arguments: timezone:")


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("2 + 2", 4),
        ("(17 * 3) / 4", 12.75),
        ("2 ** 10", 1024),
        ("-3 ** 2", -9),
        ("7 // 2 + 7 % 2", 4),
        ("sqrt(2) ** 2", 2.0000000000000004),
        ("round(pi, 3)", 3.142),
        ("max(1, 5, 3) - min(4, 2)", 3),
        ("10 / 4", 2.5),
        ("1e3 * 2", 2000),
        ("2 ** -1", 0.5),
        ("abs(-7.5)", 7.5),
    ],
)
def test_calculator_values(expression: str, value: float) -> None:
    result = evaluate(expression)
    assert result == value
    assert type(result) is type(value)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("__import__('os').system('id')", "unsupported element"),
        ("().__class__", "unsupported element"),
        ("x + 1", "unsupported element: name 'x'"),
        ("'a' * 3", "unsupported element: str constant"),
        ("True + 1", "booleans"),
        ("[1, 2]", "unsupported element: List"),
        ("lambda: 1", "unsupported element: Lambda"),
        ("sqrt(x=4)", "unsupported element: function call"),
        ("1 +", "not valid arithmetic"),
        ("1 / 0", "division by zero"),
        ("0 ** -1", "division by zero"),
        ("5 % 0", "division by zero"),
        ("9 ** 9 ** 9", "too large"),
        ("10 ** 101", "too large"),
        ("2 ** 400", "too large"),
        ("1e200", "too large"),
        ("exp(1000)", "too large"),
        ("(-8) ** 0.5", "fractional power"),
        ("sqrt(-1)", "math error"),
        ("log(0)", "math error"),
        ("min()", "math error"),
        ("1" + "+1" * 60, "more than 100 parts"),
        ("(" * 25 + "1" + ")" * 25 + " + " + "-" * 25 + "1", "nested deeper"),
        ("1" * 201, "longer than 200"),
    ],
)
def test_calculator_refuses(expression: str, message: str) -> None:
    with pytest.raises(CalculationError, match=message):
        evaluate(expression)


def test_calculation_errors_are_tool_errors() -> None:
    assert issubclass(CalculationError, ToolError)


# -- the runner: every failure becomes a result ---------------------------------------------------
@tool
async def explode(reason: str) -> str:
    """Raise."""
    if reason == "tool":
        raise ToolError("the service is down for maintenance")
    raise RuntimeError(f"secret path /srv/{reason}")


@tool
async def sleepy(seconds: float) -> str:
    """Sleep."""
    await asyncio.sleep(seconds)
    return "awake"


@tool
async def own_timeout() -> str:
    """Raise the tool's own timeout."""
    raise TimeoutError


RUNNER = ToolRunner(
    ToolRegistry([calculate, explode, sleepy, own_timeout, get_weather]), timeout=0.2
)


@pytest.mark.parametrize(
    ("call", "code", "message"),
    [
        (Call("1", "nope", "{}"), "unknown_tool", "there is no tool named 'nope'; the tools are:"),
        (
            Call("2", "calculate", "{not json"),
            "invalid_arguments",
            "invalid arguments: Invalid JSON",
        ),
        (
            Call("3", "calculate", '{"expression": 5}'),
            "invalid_arguments",
            "invalid arguments: expression: Input",
        ),
        (
            Call("4", "calculate", '{"expr": "1"}'),
            "invalid_arguments",
            "invalid arguments: expression: Field",
        ),
        (Call("5", "calculate", "[1]"), "invalid_arguments", "invalid arguments: Input should be"),
        (Call("6", "calculate", '{"expression": "1/0"}'), "tool_error", "division by zero"),
        (Call("7", "explode", '{"reason": "tool"}'), "tool_error", "the service is down"),
        (Call("8", "explode", '{"reason": "x"}'), "tool_failed", "the tool failed"),
        (Call("9", "sleepy", '{"seconds": 5}'), "tool_timeout", "the tool did not finish in 0.2 s"),
        (Call("10", "own_timeout", ""), "tool_failed", "the tool failed"),
    ],
)
async def test_failures_become_results(call: Call, code: str, message: str) -> None:
    result = await RUNNER.run(call)
    assert (result.id, result.name, result.content) == (call.id, call.name, None)
    assert result.error is not None
    assert result.error.code == code
    assert result.error.message.startswith(message)
    assert json.loads(result.for_model) == {"error": result.error.message}


async def test_a_crashing_tool_logs_its_type_not_its_text(caplog: pytest.LogCaptureFixture) -> None:
    await RUNNER.run(Call("1", "explode", '{"reason": "hunter2"}'))
    assert "tool explode raised RuntimeError" in caplog.text
    assert "hunter2" not in caplog.text


async def test_empty_arguments_mean_no_arguments() -> None:
    result = await RUNNER.run(Call("1", "nope-not", ""))
    assert result.error is not None and result.error.code == "unknown_tool"
    result = await ToolRunner(builtin_registry(), timeout=1).run(Call("1", "get_current_time", ""))
    assert result.error is None and result.content is not None


async def test_calls_run_concurrently_and_keep_their_order() -> None:
    calls = [
        Call("a", "sleepy", '{"seconds": 0.15}'),
        Call("b", "calculate", '{"expression": "6 * 7"}'),
        Call("c", "sleepy", '{"seconds": 0.15}'),
    ]
    loop = asyncio.get_running_loop()
    started = loop.time()
    results = await RUNNER.run_all(calls)
    assert loop.time() - started < 0.28  # two 0.15 s sleeps side by side, not one after the other
    assert results == [
        ToolResult("a", "sleepy", content="awake"),
        ToolResult("b", "calculate", content="42"),
        ToolResult("c", "sleepy", content="awake"),
    ]


async def test_a_narrowed_registry_hides_the_other_tools() -> None:
    narrowed = RUNNER.registry.select(["sleepy"])
    result = await RUNNER.run(Call("1", "calculate", '{"expression": "1"}'), registry=narrowed)
    assert result.error is not None
    assert result.error.message == "there is no tool named 'calculate'; the tools are: sleepy"


async def test_cancelling_the_run_cancels_every_tool() -> None:
    cancelled: list[str] = []

    @tool
    async def wait(name: str) -> str:
        """Wait forever."""
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(name)
            raise
        return name

    runner = ToolRunner(ToolRegistry([wait]), timeout=30)
    task = asyncio.create_task(
        runner.run_all([Call("1", "wait", '{"name": "a"}'), Call("2", "wait", '{"name": "b"}')])
    )
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(cancelled) == ["a", "b"]


class Recorder:
    def __init__(self) -> None:
        self.ended: list[tuple[str, ToolResult | None]] = []

    def start(self, call: Call) -> Recorder.Trace:
        return Recorder.Trace(self, call.id)

    @dataclass
    class Trace:
        recorder: Recorder
        call_id: str

        def end(self, result: ToolResult | None) -> None:
            self.recorder.ended.append((self.call_id, result))


async def test_the_tracer_sees_every_run_end() -> None:
    recorder = Recorder()
    runner = ToolRunner(ToolRegistry([calculate, sleepy]), timeout=5, tracer=recorder)
    await runner.run(Call("1", "calculate", '{"expression": "1+1"}'))
    task = asyncio.create_task(runner.run(Call("2", "sleepy", '{"seconds": 10}')))
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert recorder.ended == [("1", ToolResult("1", "calculate", content="2")), ("2", None)]


# -- settings -------------------------------------------------------------------------------------
def test_tool_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(chat_provider="openai", openai_api_key="k")
    assert (settings.chat_tools, settings.chat_tool_timeout, settings.chat_max_tool_rounds) == (
        None,
        10.0,
        5,
    )
    monkeypatch.setenv("CHAT_TOOLS", " calculate , get_current_time,")
    monkeypatch.setenv("CHAT_TOOL_TIMEOUT", "2.5")
    monkeypatch.setenv("CHAT_MAX_TOOL_ROUNDS", "2")
    settings = load_settings(chat_provider="openai", openai_api_key="k")
    assert settings.chat_tools == ["calculate", "get_current_time"]
    assert (settings.chat_tool_timeout, settings.chat_max_tool_rounds) == (2.5, 2)
    monkeypatch.setenv("CHAT_TOOLS", "")
    assert load_settings(chat_provider="openai", openai_api_key="k").chat_tools == []
