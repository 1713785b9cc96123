"""Keyset-pagination cursors: a position ``(time, id)`` as ``<microseconds since 1970>.<id hex>``.

Every string that matches ``PATTERN`` is a position (the page after it may be empty), so the
OpenAPI document states exactly which cursors the API takes, and any other string is refused by
validation before a route runs. 17 digits reach beyond the year 5000.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

PATTERN = r"^[0-9]{1,17}\.[0-9a-f]{32}$"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def encode(when: datetime, key: uuid.UUID) -> str:
    return f"{(when - _EPOCH) // _MICROSECOND}.{key.hex}"


def decode(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The position in a cursor that matches ``PATTERN`` (``ValueError`` for any other)."""
    micros, _, key = cursor.partition(".")
    if not (micros.isdigit() and len(micros) <= 17 and len(key) == 32):
        raise ValueError("not a cursor")
    return _EPOCH + int(micros) * _MICROSECOND, uuid.UUID(hex=key)
