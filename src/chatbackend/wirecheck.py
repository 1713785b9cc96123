"""Checks that a request's strings and free-form JSON can be sent on, as pydantic validators.

Python's JSON parser turns ``"\\ud800"`` into a one-character string that no UTF-8 encoder will
write: left in, it fails later, inside the SDK or the response encoder, after the upstream call.
Free-form JSON (``sessionState`` is echoed back) is also kept to what the encoders on the way out
can write and every client reads alike: bounded nesting, finite numbers and integers within
±(2**53 - 1).
"""

from __future__ import annotations

import math
import re

from pydantic_core import PydanticCustomError

MAX_JSON_DEPTH = 64
# JSON's interoperable integers (RFC 7493): every double holds them exactly, so a JSON Schema
# validator, a browser and Python agree on each of them.
MAX_SAFE_INTEGER = 2**53 - 1
_INT_RANGE = range(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER + 1)
_OUT_OF_RANGE = f"is an integer outside the range JSON carries exactly (±{MAX_SAFE_INTEGER})"
FREE_JSON_NAME = "FreeJson"
FREE_JSON_REF = {"$ref": f"#/components/schemas/{FREE_JSON_NAME}"}
# What the models' JSON schemas say in its place (pydantic resolves a ``$ref`` it did not make):
# the OpenAPI document replaces it with ``FREE_JSON_REF`` (``routes.openapi``).
FREE_JSON_MARK = {"x-chatbackend-free-json": True}
# What ``check_json`` takes, as the OpenAPI document states it (all but the depth). A number with
# no fraction is an integer to JSON Schema, ``1e30`` included.
FREE_JSON_SCHEMA = {
    "description": f"Any JSON value, nested at most {MAX_JSON_DEPTH} levels, its strings valid "
    f"Unicode and its integers within ±{MAX_SAFE_INTEGER}",
    "anyOf": [
        {"type": "integer", "minimum": -MAX_SAFE_INTEGER, "maximum": MAX_SAFE_INTEGER},
        {"type": "number", "not": {"type": "integer"}},
        {"type": ["string", "boolean", "null"]},
        {"type": "array", "items": FREE_JSON_REF},
        {"type": "object", "additionalProperties": FREE_JSON_REF},
    ],
}
# Keys are named in error messages only when they look like identifiers: a key may be any text.
_SHOWN_KEY = re.compile(r"[A-Za-z0-9_\-]{1,40}")


def integral(value: object) -> object:
    """A float without a fraction as the integer it is; anything else unchanged."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def check_text(value: str) -> str:
    """``value`` unchanged, or a validation error if it holds a lone surrogate."""
    if not value.isascii() and _has_surrogate(value):
        raise PydanticCustomError("lone_surrogate", "is not valid Unicode: it has a lone surrogate")
    return value


def check_json(value: object) -> object:
    """``value`` unchanged, or a validation error naming the first place that cannot be sent.

    Meant to run before pydantic's own ``JsonValue`` validation, which recurses (and reports
    every level of a deep nesting): anything that is not JSON is left for it to refuse.
    """
    problem = _first_problem(value)
    if problem is not None:
        where, what = problem
        at = f" at {where}" if where else ""
        raise PydanticCustomError("unsendable_json", "{what}{at}", {"what": what, "at": at})
    return value


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _first_problem(value: object) -> tuple[str, str] | None:
    # Iterative: the parser accepts nesting far deeper than Python's recursion limit.
    pending: list[tuple[object, str, int]] = [(value, "", 1)]  # depth: the containers around it
    while pending:
        item, path, depth = pending.pop()
        if depth > MAX_JSON_DEPTH and isinstance(item, list | dict):
            return "", f"is nested deeper than {MAX_JSON_DEPTH} levels"
        if isinstance(item, str):
            if not item.isascii() and _has_surrogate(item):
                return path, "is not valid Unicode: it has a lone surrogate"
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, float):
            if not math.isfinite(item):
                return path, "is not a finite number"
            if item.is_integer() and abs(item) > MAX_SAFE_INTEGER:
                return path, _OUT_OF_RANGE
        elif isinstance(item, int):
            if item not in _INT_RANGE:
                return path, _OUT_OF_RANGE
        elif isinstance(item, list):
            pending.extend(
                (v, f"{path}[{i}]", depth + 1) for i, v in reversed(list(enumerate(item)))
            )
        elif isinstance(item, dict):
            for key in reversed(list(item)):
                if isinstance(key, str) and not key.isascii() and _has_surrogate(key):
                    return path, "has a key that is not valid Unicode (a lone surrogate)"
                pending.append((item[key], f"{path}.{shown_key(str(key))}", depth + 1))
    return None


def shown_key(key: str) -> str:
    """``key`` as an error message may name it: itself if it looks like an identifier."""
    return key if _SHOWN_KEY.fullmatch(key) else "<key>"
