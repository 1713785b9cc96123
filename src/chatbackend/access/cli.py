"""``python -m chatbackend keys create --name NAME | list | revoke ID``: manage API keys.

The keys live in the database (``DATABASE_URL``), so every replica sees a new or revoked key at
once. ``create`` prints the new key once, on its own line; nothing can show it again.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime

from chatbackend.access.keys import KeyRecord, KeyRepository, new_key

OpenRepository = Callable[[], AbstractAsyncContextManager[KeyRepository]]


def parser() -> argparse.ArgumentParser:
    keys = argparse.ArgumentParser(prog="chatbackend keys", description=__doc__)
    commands = keys.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", required=True)
    create.add_argument("--requests-per-minute", type=_positive, default=None)
    create.add_argument("--tokens-per-minute", type=_positive, default=None)
    commands.add_parser("list", help="list the keys (never the keys themselves)")
    revoke = commands.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("id")
    return keys


def run(argv: list[str], open_repository: OpenRepository) -> int:
    args = parser().parse_args(argv)
    return asyncio.run(_COMMANDS[args.command](args, open_repository))


async def _create(args: argparse.Namespace, open_repository: OpenRepository) -> int:
    created = new_key(
        args.name,
        created_at=datetime.now(UTC),
        requests_per_minute=args.requests_per_minute,
        tokens_per_minute=args.tokens_per_minute,
    )
    async with open_repository() as repository:
        await repository.add(created.record)
    _out(f"created key {created.record.id} ({created.record.name}); it is shown only once:")
    _out(created.key)
    return 0


async def _list(_: argparse.Namespace, open_repository: OpenRepository) -> int:
    async with open_repository() as repository:
        records = await repository.all()
    _out("id\tname\tcreated\tlast_used\trevoked\trequests/min\ttokens/min")
    for record in records:
        _out("\t".join(_row(record)))
    return 0


async def _revoke(args: argparse.Namespace, open_repository: OpenRepository) -> int:
    async with open_repository() as repository:
        found = await repository.revoke(args.id)
    if not found:
        print(f"chatbackend keys: no key with id {args.id}", file=sys.stderr)  # noqa: T201
        return 1
    _out(f"revoked key {args.id}")
    return 0


Command = Callable[[argparse.Namespace, OpenRepository], Coroutine[None, None, int]]
_COMMANDS: dict[str, Command] = {
    "create": _create,
    "list": _list,
    "revoke": _revoke,
}


def _row(record: KeyRecord) -> list[str]:
    def when(value: datetime | None) -> str:
        return value.isoformat(timespec="seconds") if value is not None else "-"

    return [
        record.id,
        record.name,
        when(record.created_at),
        when(record.last_used_at),
        when(record.revoked_at),
        str(record.requests_per_minute or "default"),
        str(record.tokens_per_minute or "default"),
    ]


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _out(line: str) -> None:
    print(line)  # noqa: T201 - the command's output
