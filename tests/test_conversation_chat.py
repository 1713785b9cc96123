"""Chat turns on stored conversations through the real fake upstream and a real uvicorn server,
on SQLite and PostgreSQL: what is stored, when, and the one-turn-at-a-time lease."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2
import pytest
from sqlalchemy import event

from chatbackend.app import create_app
from chatbackend.context.budget import PER_MESSAGE_TOKENS
from chatbackend.context.tokens import tiktoken_count
from chatbackend.settings import load_settings
from loadtests.fake_upstream import FakeUpstream
from tests.databases import stored_conversation
from tests.servers import serve, serve_with_state

TURN: dict[str, Any] = {"messages": [{"role": "user", "content": "Tell me a story"}]}
ANSWER = "The quick brown fox jumps"


@pytest.fixture
def backend(fake_upstream: FakeUpstream, database_url: str) -> Callable[..., Any]:
    fake_upstream.configure(tokens=5)

    def start(**overrides: Any) -> Any:
        settings = load_settings(
            chat_provider="compatible",
            chat_base_url=fake_upstream.base_url,
            chat_model="fake-model",
            chat_retry_backoff_seconds=0.01,
            database_url=database_url,
            **overrides,
        )
        return serve(create_app(settings))

    return start


@pytest.fixture
def url(backend: Callable[..., Any]) -> Iterator[str]:
    with backend() as base_url:
        yield base_url


def _lines(response: httpx2.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.text.splitlines()]


def _new(url: str) -> str:
    return str(httpx2.post(f"{url}/conversations", json={}).json()["id"])


def _messages(url: str, conversation_id: str) -> list[dict[str, Any]]:
    return list(httpx2.get(f"{url}/conversations/{conversation_id}").json()["messages"])


def test_a_streamed_turn_stores_both_messages(url: str) -> None:
    conversation_id = _new(url)
    lines = _lines(httpx2.post(f"{url}/conversations/{conversation_id}/chat/stream", json=TURN))
    assert "".join(line["delta"].get("content", "") for line in lines) == ANSWER
    context = lines[-1]["context"]
    assert context["conversation_id"] == conversation_id
    stored = _messages(url, conversation_id)
    assert [(m["role"], m["content"]) for m in stored] == [
        ("user", "Tell me a story"),
        ("assistant", ANSWER),
    ]
    answer = stored[1]
    assert answer["id"] == context["message_id"]
    assert (answer["finish_reason"], answer["model"]) == ("stop", "fake-model")
    assert answer["usage"] == context["usage"]
    assert "finish_reason" not in stored[0] and "usage" not in stored[0]


def test_the_json_route_stores_the_turn_and_sends_the_history(
    url: str, fake_upstream: FakeUpstream
) -> None:
    conversation_id = _new(url)
    first = httpx2.post(f"{url}/conversations/{conversation_id}/chat", json=TURN).json()
    assert first["message"]["content"] == ANSWER
    assert first["context"]["conversation_id"] == conversation_id
    second = {
        "messages": [
            {"role": "system", "content": "Answer in French."},
            {"role": "user", "content": "And then?"},
        ]
    }
    httpx2.post(f"{url}/conversations/{conversation_id}/chat", json=second).raise_for_status()
    stored = _messages(url, conversation_id)
    assert [m["role"] for m in stored] == ["user", "assistant", "user", "assistant"]
    assert stored[3]["id"] != first["context"]["message_id"] == stored[1]["id"]
    sent = fake_upstream.snapshot()
    assert sent["completed"] == 2


def test_sse_turn_carries_the_ids_in_the_final_event(url: str) -> None:
    conversation_id = _new(url)
    text = httpx2.post(
        f"{url}/conversations/{conversation_id}/chat/stream",
        json=TURN,
        headers={"accept": "text/event-stream"},
    ).text
    assert f'"conversation_id":"{conversation_id}"' in text and '"message_id"' in text


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "assistant", "content": "x"}],
        [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
        [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}],
    ],
)
def test_only_a_new_turn_is_accepted(url: str, messages: list[dict[str, str]]) -> None:
    conversation_id = _new(url)
    response = httpx2.post(
        f"{url}/conversations/{conversation_id}/chat", json={"messages": messages}
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"
    assert _messages(url, conversation_id) == []


def test_a_message_longer_than_the_budget_is_refused_and_not_stored(
    backend: Callable[..., Any],
) -> None:
    with backend(chat_context_tokens=300) as url:
        conversation_id = _new(url)
        long_turn = {"messages": [{"role": "user", "content": "word " * 400}]}
        response = httpx2.post(f"{url}/conversations/{conversation_id}/chat", json=long_turn)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "context_too_long"
        assert _messages(url, conversation_id) == []


def test_an_upstream_failure_keeps_the_user_message_only(
    url: str, fake_upstream: FakeUpstream
) -> None:
    conversation_id = _new(url)
    fake_upstream.configure(fault="content_filter")
    response = httpx2.post(f"{url}/conversations/{conversation_id}/chat", json=TURN)
    assert response.json()["error"]["code"] == "content_filter"
    assert [m["role"] for m in _messages(url, conversation_id)] == ["user"]
    fake_upstream.configure(fault="none")
    # The lease was given back: the next turn is served, and sequence numbers continue.
    httpx2.post(f"{url}/conversations/{conversation_id}/chat", json=TURN).raise_for_status()
    assert [m["role"] for m in _messages(url, conversation_id)] == ["user", "user", "assistant"]


def test_a_disconnect_stores_the_partial_answer_once(url: str, fake_upstream: FakeUpstream) -> None:
    conversation_id = _new(url)
    fake_upstream.configure(itl=0.05, tokens=400)
    with httpx2.Client(base_url=url, timeout=10) as client:
        with client.stream("POST", f"/conversations/{conversation_id}/chat/stream", json=TURN) as r:
            lines = r.iter_lines()
            received = [json.loads(next(lines)) for _ in range(4)]
    sent = "".join(line["delta"].get("content", "") for line in received)
    deadline = time.monotonic() + 10
    while len(stored := _messages(url, conversation_id)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [m["role"] for m in stored] == ["user", "assistant"]
    partial = stored[1]
    assert partial["finish_reason"] == "cancelled"
    assert partial["content"].startswith(sent) and len(partial["content"]) < 400 * 4
    time.sleep(0.3)
    assert len(_messages(url, conversation_id)) == 2


def test_twenty_concurrent_turns_on_one_conversation_one_wins(
    url: str, fake_upstream: FakeUpstream
) -> None:
    conversation_id = _new(url)
    fake_upstream.configure(ttft=4, tokens=5)

    def turn(_: int) -> int:
        response = httpx2.post(
            f"{url}/conversations/{conversation_id}/chat/stream", json=TURN, timeout=30
        )
        if response.status_code == 409:
            assert response.json()["error"]["code"] == "conversation_busy"
        return response.status_code

    with ThreadPoolExecutor(20) as pool:
        statuses = sorted(pool.map(turn, range(20)))
    assert statuses == [200] + [409] * 19
    stored = _messages(url, conversation_id)
    assert [(m["role"], m["content"]) for m in stored] == [
        ("user", "Tell me a story"),
        ("assistant", ANSWER),
    ]


def test_fifty_concurrent_turns_on_fifty_conversations_lose_nothing(
    url: str, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.configure(ttft=0.05, itl=0.01, tokens=5)
    ids = [_new(url) for _ in range(50)]

    def turn(conversation_id: str) -> int:
        path = f"{url}/conversations/{conversation_id}/chat/stream"
        return httpx2.post(path, json=TURN, timeout=60).status_code

    with ThreadPoolExecutor(50) as pool:
        assert set(pool.map(turn, ids)) == {200}
    for conversation_id in ids:
        stored = _messages(url, conversation_id)
        assert [(m["role"], m["content"]) for m in stored] == [
            ("user", "Tell me a story"),
            ("assistant", ANSWER),
        ]


def _words(count: int) -> str:
    return " ".join(["hello"] * count)  # one o200k token and one fake-upstream word per word


def test_a_system_prompt_that_does_not_fit_beside_the_message_stores_nothing(
    backend: Callable[..., Any], database_url: str
) -> None:
    """The new message fits alone, not with the new system prompt: 400, nothing stored, and the
    conversation keeps its old system prompt."""
    with backend(chat_context_tokens=300) as url:  # budget 225: 300 minus a quarter
        conversation_id = _new(url)
        too_long = {
            "messages": [
                {"role": "system", "content": _words(150)},
                {"role": "user", "content": _words(100)},
            ]
        }
        response = httpx2.post(f"{url}/conversations/{conversation_id}/chat", json=too_long)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "context_too_long"
        stored = stored_conversation(database_url, conversation_id)
        assert stored.messages == [] and stored.message_count == 0
        assert stored.busy_until is None
        # The refused system prompt was not kept: the message alone is served now.
        alone = {"messages": [{"role": "user", "content": _words(100)}]}
        httpx2.post(f"{url}/conversations/{conversation_id}/chat", json=alone).raise_for_status()
        assert stored_conversation(database_url, conversation_id).roles == ["user", "assistant"]


def test_a_stored_system_prompt_that_leaves_no_room_refuses_and_stores_nothing(
    backend: Callable[..., Any], database_url: str
) -> None:
    with backend(chat_context_tokens=300) as url:
        conversation_id = _new(url)
        first = {
            "messages": [
                {"role": "system", "content": _words(150)},
                {"role": "user", "content": "Hi"},
            ]
        }
        httpx2.post(f"{url}/conversations/{conversation_id}/chat", json=first).raise_for_status()
        long_turn = {"messages": [{"role": "user", "content": _words(100)}]}
        response = httpx2.post(f"{url}/conversations/{conversation_id}/chat", json=long_turn)
        assert response.json()["error"]["code"] == "context_too_long"
        stored = stored_conversation(database_url, conversation_id)
        stored.assert_whole()
        assert stored.roles == ["user", "assistant"]


def test_a_rate_limited_turn_stores_nothing(backend: Callable[..., Any], database_url: str) -> None:
    with backend(rate_limit_requests_per_minute=2) as url:
        conversation_id = _new(url)  # request 1 of the minute
        turn = f"{url}/conversations/{conversation_id}/chat/stream"
        assert httpx2.post(turn, json=TURN).status_code == 200  # request 2
        refused = httpx2.post(turn, json=TURN)
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "rate_limited"
    stored = stored_conversation(database_url, conversation_id)
    stored.assert_whole()
    assert stored.roles == ["user", "assistant"]


@pytest.mark.parametrize("route", ["chat", "chat/stream"])
def test_an_overloaded_turn_stores_nothing(
    backend: Callable[..., Any], fake_upstream: FakeUpstream, database_url: str, route: str
) -> None:
    """Every stream slot is taken: the turn is refused 503 before its user message is written,
    and the conversation is free for the next turn once a slot is."""
    with backend(chat_max_streams=1) as url:
        busy_id, refused_id = _new(url), _new(url)
        fake_upstream.queue(ttft=1.5, tokens=5)
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(
                httpx2.post, f"{url}/conversations/{busy_id}/chat/stream", json=TURN, timeout=30
            )
            deadline = time.monotonic() + 10
            while stored_conversation(database_url, busy_id).message_count == 0:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            refused = httpx2.post(f"{url}/conversations/{refused_id}/{route}", json=TURN)
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["code"] == "overloaded"
            assert refused.headers["retry-after"]
            stored = stored_conversation(database_url, refused_id)
            assert stored.messages == [] and stored.message_count == 0
            assert stored.busy_until is None
            assert first.result().status_code == 200
        # The refused turn held nothing: the slot and the conversation serve the next turn.
        httpx2.post(f"{url}/conversations/{refused_id}/{route}", json=TURN).raise_for_status()
    stored = stored_conversation(database_url, refused_id)
    stored.assert_whole()
    assert stored.roles == ["user", "assistant"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"messages": [{"role": "user", "content": "x" * 101}]}, 422),
        ({**TURN, "context": {"overrides": {"x": 1}}}, 422),
        ({"messages": []}, 422),
        ("{not json", 400),
    ],
)
def test_an_invalid_turn_stores_nothing(
    backend: Callable[..., Any], database_url: str, body: object, status: int
) -> None:
    with backend(chat_max_message_chars=100) as url:
        conversation_id = _new(url)
        path = f"{url}/conversations/{conversation_id}/chat/stream"
        if isinstance(body, str):
            headers = {"content-type": "application/json"}
            response = httpx2.post(path, content=body, headers=headers)
        else:
            response = httpx2.post(path, json=body)
        assert response.status_code == status, response.text
        # Nothing stored, and the conversation is free for the next turn.
        stored = stored_conversation(database_url, conversation_id)
        assert stored.messages == [] and stored.busy_until is None
        assert httpx2.post(path, json=TURN).status_code == 200


def test_a_refused_busy_turn_leaves_no_row(
    url: str, fake_upstream: FakeUpstream, database_url: str
) -> None:
    conversation_id = _new(url)
    fake_upstream.configure(ttft=2, tokens=5)
    path = f"{url}/conversations/{conversation_id}/chat/stream"
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(httpx2.post, path, json=TURN, timeout=30)
        deadline = time.monotonic() + 10
        while stored_conversation(database_url, conversation_id).message_count == 0:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        busy = httpx2.post(path, json={"messages": [{"role": "user", "content": "Me too"}]})
        assert busy.status_code == 409
        assert stored_conversation(database_url, conversation_id).messages == [
            (1, "user", "Tell me a story", None)
        ]
        assert first.result().status_code == 200
    stored = stored_conversation(database_url, conversation_id)
    stored.assert_whole()
    assert stored.roles == ["user", "assistant"]


def test_the_history_sent_is_the_newest_whole_turns_within_budget(
    backend: Callable[..., Any],
) -> None:
    """Eight stored turns of 60 + 5 words; the budget has room for three of them beside the
    system prompt and the new message. The fake upstream counts the words it is sent."""
    turn_tokens = (60 + PER_MESSAGE_TOKENS) + (5 + PER_MESSAGE_TOKENS)
    system, new = "Be brief.", "And now?"
    fixed = tiktoken_count(system) + tiktoken_count(new) + 2 * PER_MESSAGE_TOKENS
    budget = fixed + 4 * turn_tokens - 1
    max_tokens = 20
    with backend(chat_context_tokens=budget + max_tokens) as url:
        conversation_id = _new(url)
        path = f"{url}/conversations/{conversation_id}/chat"
        first = {
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": _words(60)},
            ]
        }
        httpx2.post(path, json=first).raise_for_status()
        for _ in range(7):
            turn = {"messages": [{"role": "user", "content": _words(60)}]}
            httpx2.post(path, json=turn).raise_for_status()
        last = {
            "messages": [{"role": "user", "content": new}],
            "context": {"overrides": {"max_tokens": max_tokens}},
        }
        answer = httpx2.post(path, json=last).json()
    words_sent = answer["context"]["usage"]["prompt_tokens"]
    assert words_sent == len(system.split()) + 3 * (60 + 5) + len(new.split())


@pytest.mark.parametrize("route", ["chat", "chat/stream"])
@pytest.mark.parametrize("bad_id", ["not-a-uuid", "12345", "unknown", "deleted"])
def test_bad_ids_on_the_chat_routes_are_not_found(url: str, route: str, bad_id: str) -> None:
    if bad_id == "unknown":
        bad_id = str(uuid.uuid4())
    elif bad_id == "deleted":
        bad_id = _new(url)
        httpx2.delete(f"{url}/conversations/{bad_id}").raise_for_status()
    response = httpx2.post(f"{url}/conversations/{bad_id}/{route}", json=TURN)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_the_chat_routes_document_their_error_shapes(url: str) -> None:
    paths = httpx2.get(f"{url}/openapi.json").json()["paths"]
    for route in ("chat", "chat/stream"):
        responses = paths[f"/conversations/{{conversation_id}}/{route}"]["post"]["responses"]
        assert {"400", "404", "409", "422", "429"} <= set(responses)
        for status in ("404", "409", "422"):
            schema = responses[status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorResponse"}


def test_a_turn_costs_few_statements(fake_upstream: FakeUpstream, database_url: str) -> None:
    """The per-turn database path, as the driver runs it. SQLite: take the lease (UPDATE ...
    RETURNING), write the user message (INSERT), read the history back as far as the budget goes
    (SELECT, one page for a short conversation); then give the lease back and store the answer
    (UPDATE ... RETURNING, INSERT): two transactions. PostgreSQL: the lease and the user message
    are one statement, then the history; the answer and the release are one more. No statement
    reads the conversation row on its own."""
    fake_upstream.configure(tokens=5)
    settings = load_settings(
        chat_provider="compatible",
        chat_base_url=fake_upstream.base_url,
        chat_model="fake-model",
        database_url=database_url,
    )
    statements: list[str] = []
    traced: set[int] = set()

    def note(query: str) -> None:
        statement = query.lstrip().split(None, 1)[0].upper()
        if statement in ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "BEGIN", "COMMIT"):
            statements.append(statement)

    def trace(dbapi_connection: Any, *_: Any) -> None:
        driver = dbapi_connection.driver_connection
        if id(driver) in traced:
            return
        traced.add(id(driver))
        if hasattr(driver, "sqlite"):
            driver.sqlite.set_trace_callback(note)
        else:
            driver.add_query_logger(lambda record: note(record.query))

    with serve_with_state(create_app(settings)) as (url, state):
        conversation_id = _new(url)
        path = f"{url}/conversations/{conversation_id}/chat/stream"
        httpx2.post(path, json=TURN).raise_for_status()  # the next turn has a history to read
        engine = state["database"].engine.sync_engine
        event.listen(engine, "checkout", trace)
        try:
            httpx2.post(path, json=TURN).raise_for_status()
        finally:
            event.remove(engine, "checkout", trace)
    if database_url.startswith("sqlite"):
        assert statements == [
            *("BEGIN", "UPDATE", "INSERT", "SELECT", "COMMIT"),
            *("BEGIN", "UPDATE", "INSERT", "COMMIT"),
        ]
    else:
        assert [s for s in statements if s not in ("BEGIN", "COMMIT")] == [
            *("WITH", "SELECT"),
            "WITH",
        ]
