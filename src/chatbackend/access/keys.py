"""API keys: made here, stored only as hashes, checked in constant time.

A key is ``cbk_<id>_<secret>``: the id (public, 16 hex digits) finds the record, the secret (32
random bytes, URL-safe base64) proves possession. The record keeps only SHA-256 of the whole key.
A plain fast hash is the right choice for a random 256-bit secret: slow password hashes (bcrypt,
scrypt, Argon2) exist to make guessing *low-entropy* passwords expensive; nobody can guess 2**256
values, however cheap each try is. The comparison is ``hmac.compare_digest``, so how long it takes
says nothing about how much of a guessed key was right.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from chatbackend import errors
from chatbackend.access.caller import Caller
from chatbackend.access.ratelimit import Quota
from chatbackend.access.service import Identity

logger = logging.getLogger("chatbackend.access")

PREFIX = "cbk_"
_KEY = re.compile(r"cbk_(?P<id>[0-9a-f]{16})_[A-Za-z0-9_-]{43}")
# ``last_used_at`` is written at most this often per key and process: not one write per request.
TOUCH_INTERVAL_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What is stored about a key (never the key itself)."""

    id: str
    name: str
    key_hash: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key as created: ``key`` is shown once and then exists only with its owner."""

    key: str
    record: KeyRecord


class KeyRepository(Protocol):
    async def get(self, key_id: str) -> KeyRecord | None: ...

    async def touch(self, key_id: str) -> None:
        """Set the key's ``last_used_at`` to now."""
        ...

    async def add(self, record: KeyRecord) -> None: ...

    async def all(self) -> list[KeyRecord]:
        """Every key, oldest first."""
        ...

    async def revoke(self, key_id: str) -> bool:
        """Mark the key revoked; ``False`` when there is no such key."""
        ...

    async def aclose(self) -> None: ...


def new_key(
    name: str,
    *,
    created_at: datetime,
    requests_per_minute: int | None = None,
    tokens_per_minute: int | None = None,
) -> NewKey:
    key_id = secrets.token_hex(8)
    key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    record = KeyRecord(
        id=key_id,
        name=name,
        key_hash=hash_key(key),
        created_at=created_at,
        requests_per_minute=requests_per_minute,
        tokens_per_minute=tokens_per_minute,
    )
    return NewKey(key=key, record=record)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_id_of(presented: str) -> str | None:
    """The id part of a well-formed key, else ``None``."""
    match = _KEY.fullmatch(presented)
    return match.group("id") if match else None


class DatabaseKeys:
    """Checks presented keys against the stored records; every check reads the record, so a key
    created or revoked on one replica is seen by every other at once."""

    def __init__(self, repository: KeyRepository) -> None:
        self.repository = repository
        self._touched: dict[str, float] = {}

    async def check(self, presented: str, defaults: Quota) -> Identity:
        key_id = key_id_of(presented)
        record = await self.repository.get(key_id) if key_id is not None else None
        # Always one comparison, also for an unknown id, against a hash that cannot match.
        stored = record.key_hash if record is not None else "0" * 64
        if not hmac.compare_digest(stored, hash_key(presented)) or record is None:
            raise errors.Unauthorized()
        if record.revoked_at is not None:
            raise errors.Unauthorized("This API key has been revoked.")
        await self._touch(record.id)
        quota = Quota(
            requests_per_minute=record.requests_per_minute or defaults.requests_per_minute,
            tokens_per_minute=record.tokens_per_minute or defaults.tokens_per_minute,
        )
        return Identity(Caller(record.id), quota)

    async def _touch(self, key_id: str) -> None:
        now = time.monotonic()
        if now - self._touched.get(key_id, -TOUCH_INTERVAL_SECONDS) >= TOUCH_INTERVAL_SECONDS:
            self._touched[key_id] = now
            await self.repository.touch(key_id)

    async def aclose(self) -> None:
        await self.repository.aclose()
