"""A turn reads a stored conversation's history newest first, a page at a time, only as far as
its context budget goes; on SQLite and PostgreSQL, with the rows written straight to the tables
(a long conversation without hundreds of turns through the server)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx2
import pytest
from sqlalchemy import insert, select

from chatbackend.app import create_app
from chatbackend.context.budget import PER_MESSAGE_TOKENS
from chatbackend.context.tokens import tiktoken_count
from chatbackend.conversations.domain import HistoryPage
from chatbackend.conversations.repository import ConversationRepository
from chatbackend.conversations.turnsql import FIRST_HISTORY_PAGE
from chatbackend.settings import load_settings
from chatbackend.store import Database, open_database
from chatbackend.store.models import ConversationRow, MessageRow
from chatbackend.store.types import utcnow
from loadtests.fake_upstream import FakeUpstream
from tests.databases import stored_conversation
from tests.servers import serve


def _words(count: int, word: str = "hello") -> str:
    return " ".join([word] * count)  # one o200k token and one fake-upstream word per word


async def _seed(
    database: Database,
    turns: int,
    *,
    question: str,
    answer: str,
    counted: tuple[int, str] | None = None,
) -> uuid.UUID:
    """A conversation of ``turns`` stored turns (user ``question``, assistant ``answer``), its
    first turn's messages stored with the token count and tokenizer ``counted``, if given."""
    conversation_id, now = uuid.uuid4(), utcnow()
    conversation = {
        "id": conversation_id,
        "owner_id": None,
        "title": None,
        "meta": {},
        "system_prompt": None,
        "created_at": now,
        "updated_at": now,
        "message_count": 2 * turns,
    }
    messages = [
        {
            "id": uuid.uuid4(),
            "conversation_id": conversation_id,
            "seq": seq,
            "role": "user" if seq % 2 else "assistant",
            "content": question if seq % 2 else answer,
            "created_at": now,
            "token_count": counted[0] if counted and seq <= 2 else None,
            "tokenizer": counted[1] if counted and seq <= 2 else None,
        }
        for seq in range(1, 2 * turns + 1)
    ]
    async with database.session() as session, session.begin():
        await session.execute(insert(ConversationRow), [conversation])
        await session.execute(insert(MessageRow), messages)
    return conversation_id


@pytest.fixture
async def database(database_url: str) -> Any:
    database = await open_database(database_url)
    try:
        yield database
    finally:
        await database.aclose()


def _reader(wanted: int) -> tuple[list[list[str]], Callable[[HistoryPage], bool]]:
    """A ``history`` callback that records each page's contents and wants ``wanted`` messages."""
    pages: list[list[str]] = []

    def take(page: HistoryPage) -> bool:
        pages.append([message.content for _, message, _, _ in page])
        return sum(map(len, pages)) < wanted

    return pages, take


async def _turn(
    repository: ConversationRepository,
    conversation_id: uuid.UUID,
    take: Callable[[HistoryPage], bool],
) -> None:
    await repository.begin_turn(
        None,
        conversation_id,
        content="new",
        system_prompt=None,
        lease=timedelta(seconds=5),
        check=lambda _: None,
        history=take,
    )


@pytest.mark.anyio
async def test_the_history_is_read_newest_first_in_growing_pages(database: Database) -> None:
    repository = ConversationRepository(database)
    turns = 100  # 200 messages: pages of 64 and 128, then the last 8
    conversation_id = await _seed(database, turns, question="q", answer="a")
    pages, take = _reader(wanted=10_000)
    await _turn(repository, conversation_id, take)
    assert [len(page) for page in pages] == [FIRST_HISTORY_PAGE, 2 * FIRST_HISTORY_PAGE, 8]
    read = [content for page in pages for content in page]
    assert read == ["a", "q"] * turns  # every message once, newest first


@pytest.mark.anyio
async def test_a_turn_that_has_enough_reads_no_further_page(database: Database) -> None:
    repository = ConversationRepository(database)
    conversation_id = await _seed(database, 100, question="q", answer="a")
    pages, take = _reader(wanted=10)
    await _turn(repository, conversation_id, take)
    assert [len(page) for page in pages] == [FIRST_HISTORY_PAGE]


@pytest.fixture
def backend(fake_upstream: FakeUpstream, database_url: str) -> Callable[..., Any]:
    fake_upstream.configure(tokens=5)

    def start(**overrides: Any) -> Any:
        settings = load_settings(
            chat_provider="compatible",
            chat_base_url=fake_upstream.base_url,
            chat_model="fake-model",
            chat_system_prompt="",
            database_url=database_url,
            **overrides,
        )
        return serve(create_app(settings))

    return start


@pytest.fixture
def long_conversation(database_url: str) -> Iterator[str]:
    """100 stored turns of 3 + 7 words (200 messages: more than one page of history)."""

    async def seed() -> uuid.UUID:
        database = await open_database(database_url)
        try:
            return await _seed(database, 100, question=_words(3), answer=_words(7, "world"))
        finally:
            await database.aclose()

    yield str(asyncio.run(seed()))


@pytest.mark.parametrize("kept_turns", [15, 40, 100])
def test_a_long_conversation_sends_the_newest_turns_that_fit(
    backend: Callable[..., Any], database_url: str, long_conversation: str, kept_turns: int
) -> None:
    """The budget holds ``kept_turns`` of the 100 stored turns beside the new message: 40 turns
    are 80 messages, more than the first page; 100 is the whole conversation."""
    turn_tokens = (3 + PER_MESSAGE_TOKENS) + (7 + PER_MESSAGE_TOKENS)
    new = _words(2, "now")
    budget = (2 + PER_MESSAGE_TOKENS) + kept_turns * turn_tokens + turn_tokens - 1
    if kept_turns == 100:
        budget = 100_000
    max_tokens = 20
    with backend(chat_context_tokens=budget + max_tokens) as url:
        body = {
            "messages": [{"role": "user", "content": new}],
            "context": {"overrides": {"max_tokens": max_tokens}},
        }
        path = f"{url}/conversations/{long_conversation}/chat"
        answer = httpx2.post(path, json=body).raise_for_status().json()
    assert answer["context"]["usage"]["prompt_tokens"] == kept_turns * (3 + 7) + 2
    stored = stored_conversation(database_url, long_conversation)
    stored.assert_whole()
    assert stored.roles[-2:] == ["user", "assistant"] and len(stored.messages) == 202


def _turn_over_http(url: str, conversation_id: str, **overrides: Any) -> dict[str, Any]:
    body = {"messages": [{"role": "user", "content": "now"}], **overrides}
    path = f"{url}/conversations/{conversation_id}/chat"
    return dict(httpx2.post(path, json=body).raise_for_status().json())


@pytest.mark.parametrize(("tokenizer", "kept"), [("o200k_base", 2), ("local:other-model", 3)])
def test_a_stored_token_count_is_used_when_its_tokenizer_is_the_servers(
    backend: Callable[..., Any], database_url: str, tokenizer: str, kept: int
) -> None:
    """Three stored turns of one word each; the first turn's messages are stored as 10,000
    tokens each. Counted by this server's tokenizer, that count is taken as it is, and the
    turn does not fit; counted by another, the messages are counted again (and fit)."""

    async def seed() -> uuid.UUID:
        database = await open_database(database_url)
        try:
            counted = (10_000, tokenizer)
            return await _seed(database, 3, question="q", answer="a", counted=counted)
        finally:
            await database.aclose()

    conversation_id = str(asyncio.run(seed()))
    with backend(chat_context_tokens=2_000) as url:
        answer = _turn_over_http(url, conversation_id, context={"overrides": {"max_tokens": 20}})
    assert answer["context"]["usage"]["prompt_tokens"] == 2 * kept + 1


def test_stored_messages_carry_their_token_counts(
    backend: Callable[..., Any], database_url: str
) -> None:
    with backend() as url:
        conversation_id = str(httpx2.post(f"{url}/conversations", json={}).json()["id"])
        answer = _turn_over_http(url, conversation_id)
    rows = asyncio.run(_token_columns(database_url, uuid.UUID(conversation_id)))
    content = answer["message"]["content"]
    assert rows == [
        ("user", tiktoken_count("now"), "o200k_base"),
        ("assistant", tiktoken_count(content), "o200k_base"),
    ]


async def _token_columns(url: str, conversation_id: uuid.UUID) -> list[tuple[str, int, str]]:
    database = await open_database(url)
    try:
        async with database.session() as session:
            rows = await session.execute(
                select(MessageRow.role, MessageRow.token_count, MessageRow.tokenizer)
                .where(MessageRow.conversation_id == conversation_id)
                .order_by(MessageRow.seq)
            )
            return [(role, count, tokenizer) for role, count, tokenizer in rows]
    finally:
        await database.aclose()
