"""The lease keeper on a real database: held leases are renewed, released and over-age ones not."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from chatbackend import errors
from chatbackend.conversations.leases import LeaseKeeper
from chatbackend.conversations.repository import ConversationRepository
from chatbackend.store import open_database

pytestmark = pytest.mark.anyio
LEASE = 0.6


async def test_held_leases_are_renewed_until_released_or_too_old(database_url: str) -> None:
    database = await open_database(database_url)
    repository = ConversationRepository(database)
    keeper = LeaseKeeper(repository, lease=LEASE, longest_turn=2.5 * LEASE)
    try:
        turns = []
        for _ in range(3):
            conversation = await repository.create(None, title=None, metadata={})
            turns.append(
                await repository.begin_turn(
                    None,
                    conversation.id,
                    content="hi",
                    system_prompt=None,
                    lease=keeper.lease,
                    check=lambda _: None,
                )
            )
        held, released, untracked = turns
        keeper.hold(held.token)
        keeper.hold(released.token)
        keeper.release(released.token)
        await asyncio.sleep(2 * LEASE)
        # Renewed: still busy past its first lease; the others' leases ran out.
        assert await _busy(repository, held.conversation.id)
        assert not await _busy(repository, released.conversation.id)
        assert not await _busy(repository, untracked.conversation.id)
        # Past ``longest_turn`` the keeper lets the lease run out too.
        await asyncio.sleep(2 * LEASE)
        assert not await _busy(repository, held.conversation.id)
        assert await repository.finish_turn(held, None)
    finally:
        await keeper.aclose()
        await database.aclose()


async def _busy(repository: ConversationRepository, conversation_id: uuid.UUID) -> bool:
    """Whether a new turn would be refused now (a lease is held and not expired)."""
    try:
        turn = await repository.begin_turn(
            None,
            conversation_id,
            content="probe",
            system_prompt=None,
            lease=timedelta(seconds=0),
            check=_refuse,
        )
    except errors.ConversationBusy:
        return True
    except _Probe:
        return False
    raise AssertionError(f"the probe stored a turn: {turn}")


class _Probe(Exception):
    """Raised by the probe's check, so the probe turn rolls back and stores nothing."""


def _refuse(_: object) -> None:
    raise _Probe()
