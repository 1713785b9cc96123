"""Bicep files read with pycep-parser, and pycep's expression trees written back as short text.

pycep turns ``registry.properties.loginServer`` into nested operator dictionaries; ``expr``
renders them as ``registry.properties.loginServer`` again, so snapshots and assertions read like
the Bicep they check. pycep does not keep literals and identifiers apart: ``'Basic'`` and
``name`` both come back as plain strings.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from pycep import BicepParser

INFRA = Path(__file__).resolve().parents[1] / "infra"
_BINARY = {
    "equals": "==",
    "not_equals": "!=",
    "greater_than": ">",
    "greater_than_or_equals": ">=",
    "less_than": "<",
    "less_than_or_equals": "<=",
    "and": "&&",
    "or": "||",
    "coalesce": "??",
}


@cache
def parse(relative: str) -> dict[str, Any]:
    """The pycep JSON of ``infra/<relative>``."""
    return dict(BicepParser().parse(file_path=INFRA / relative))


def bicep_files() -> list[str]:
    return sorted(str(path.relative_to(INFRA)) for path in INFRA.rglob("*.bicep"))


def body(declaration: dict[str, Any]) -> dict[str, Any]:
    """A resource's or module's properties, unwrapped from pycep's ``if (...)`` envelope."""
    config: dict[str, Any] = declaration["config"]
    return config["config"] if "condition" in config else config


def condition(declaration: dict[str, Any]) -> str | None:
    config = declaration["config"]
    return expr(config["condition"]) if "condition" in config else None


def expr(node: Any) -> str:
    """One expression tree as Bicep-like text."""
    if isinstance(node, dict):
        if set(node) == {"operator"}:
            return _operator(node["operator"])
        if set(node) == {"function"}:
            return _function(node["function"])
        items = ", ".join(f"{key.strip(chr(39))}: {expr(value)}" for key, value in node.items())
        return "{" + items + "}"
    if isinstance(node, list):
        return "[" + ", ".join(expr(item) for item in node) + "]"
    if isinstance(node, bool):
        return str(node).lower()
    return str(node)


def plain(node: Any) -> Any:
    """A literal tree (objects, arrays, scalars) with each expression in it rendered by ``expr``."""
    if isinstance(node, dict) and not ({"operator"} == set(node) or {"function"} == set(node)):
        return {key.strip("'"): plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [plain(item) for item in node]
    if isinstance(node, dict):
        return expr(node)
    return node


def _operator(operator: dict[str, Any]) -> str:
    kind, operands = operator["type"], list(operator["operands"].values())
    if kind == "property_accessor":
        return f"{expr(operands[0])}.{expr(operands[1])}"
    if kind == "index_accessor":
        return f"{expr(operands[0])}[{expr(operands[1])}]"
    if kind == "conditional":
        return f"{expr(operands[0])} ? {expr(operands[1])} : {expr(operands[2])}"
    if kind == "not":
        return f"!{expr(operands[0])}"
    if kind in _BINARY:
        return f"{expr(operands[0])} {_BINARY[kind]} {expr(operands[1])}"
    return f"{kind}({', '.join(expr(operand) for operand in operands)})"


def _function(function: dict[str, Any]) -> str:
    parameters = function.get("parameters") or {}
    arguments = [expr(value) for value in parameters.values() if value is not None]
    return f"{function['type']}({', '.join(arguments)})"
