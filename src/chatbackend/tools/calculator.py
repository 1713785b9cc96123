"""Arithmetic for the ``calculate`` tool: parsed with ``ast`` and walked, never ``eval``'d.

Only numbers, ``+ - * / // % **``, parentheses, a few ``math`` functions and constants are
understood. Every bound is checked before the work is done: the expression's length and node
count, its nesting depth, the size of a power, and the magnitude of every intermediate result, so
no input can make the worker spin or allocate a huge integer.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Final

from chatbackend.tools.registry import ToolError

Number = int | float
MAX_LENGTH: Final = 200
MAX_NODES: Final = 100
MAX_DEPTH: Final = 20
MAX_MAGNITUDE: Final = 1e100

_BINARY: Final[dict[type[ast.operator], Callable[[Number, Number], Number]]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: Final[dict[type[ast.unaryop], Callable[[Number], Number]]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
_FUNCTIONS: Final[dict[str, Callable[..., Number]]] = {
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "sqrt": math.sqrt,
    "exp": math.exp,
    "log": math.log,
    "log10": math.log10,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "floor": math.floor,
    "ceil": math.ceil,
}
_CONSTANTS: Final[dict[str, float]] = {"pi": math.pi, "e": math.e, "tau": math.tau}


class CalculationError(ToolError):
    """The expression is not arithmetic we evaluate, or its value is out of bounds."""


def evaluate(expression: str) -> Number:
    """The value of ``expression``, e.g. ``"(2 + 3) * 7 / 2"`` -> ``17.5``."""
    if len(expression) > MAX_LENGTH:
        raise CalculationError(f"the expression is longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        raise CalculationError("the expression is not valid arithmetic") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise CalculationError(f"the expression has more than {MAX_NODES} parts")
    try:
        value = _value(tree.body, depth=0)
    except ZeroDivisionError:
        raise CalculationError("division by zero") from None
    except OverflowError:
        raise CalculationError("the result is too large") from None
    except (ValueError, TypeError) as exc:
        raise CalculationError(f"math error: {exc}") from None
    return _int_if_whole(value)


def _value(node: ast.expr, *, depth: int) -> Number:
    if depth > MAX_DEPTH:
        raise CalculationError(f"the expression is nested deeper than {MAX_DEPTH} levels")
    match node:
        case ast.Constant(value=bool()):
            raise CalculationError("booleans are not numbers here")
        case ast.Constant(value=int() | float() as number):
            return _bounded(number)
        case ast.Name(id=name) if name in _CONSTANTS:
            return _CONSTANTS[name]
        case ast.UnaryOp(op=op, operand=operand) if type(op) in _UNARY:
            return _UNARY[type(op)](_value(operand, depth=depth + 1))
        case ast.BinOp(left=left, op=op, right=right) if type(op) in _BINARY:
            a, b = _value(left, depth=depth + 1), _value(right, depth=depth + 1)
            if isinstance(op, ast.Pow):
                _check_power(a, b)
            return _bounded(_BINARY[type(op)](a, b))
        case ast.Call(func=ast.Name(id=name), args=args, keywords=[]) if name in _FUNCTIONS:
            values = [_value(arg, depth=depth + 1) for arg in args]
            return _bounded(_FUNCTIONS[name](*values))
    raise CalculationError(f"unsupported element: {_describe(node)}")


def _check_power(base: Number, exponent: Number) -> None:
    """Refuse a power whose result would exceed the bound, before computing it."""
    if abs(base) > 1 and exponent > 0 and exponent * math.log10(abs(base)) > 100:
        raise CalculationError("the result is too large")
    if base == 0 and exponent < 0:
        raise ZeroDivisionError
    if base < 0 and not float(exponent).is_integer():
        raise CalculationError("a negative number to a fractional power is not a real number")


def _bounded(value: Number) -> Number:
    if isinstance(value, complex) or not math.isfinite(value) or abs(value) > MAX_MAGNITUDE:
        raise CalculationError("the result is too large or not a real number")
    return value


def _int_if_whole(value: Number) -> Number:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _describe(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return f"name {node.id!r}"
    if isinstance(node, ast.Call):
        return "function call"
    if isinstance(node, ast.Constant):
        return f"{type(node.value).__name__} constant"
    return type(node).__name__
