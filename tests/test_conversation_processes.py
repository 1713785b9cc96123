"""Conversations across real server processes: two processes on one PostgreSQL take one turn at
a time, and a server killed with SIGKILL mid-answer leaves a database the next server serves."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2

from loadtests.fake_upstream import FakeUpstream
from tests.databases import Postgres, sqlite_integrity, stored_conversation
from tests.processes import server_process, server_processes

TURN: dict[str, Any] = {"messages": [{"role": "user", "content": "Tell me a story"}]}
ANSWER = "The quick brown fox jumps"
LEASE_SECONDS = 2.0


def server_env(upstream: FakeUpstream, database_url: str, **extra: str) -> dict[str, str]:
    return {
        "CHAT_PROVIDER": "compatible",
        "CHAT_BASE_URL": upstream.base_url,
        "CHAT_MODEL": "fake-model",
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def _new(url: str) -> str:
    return str(httpx2.post(f"{url}/conversations", json={}, timeout=30).json()["id"])


def test_twenty_turns_over_two_processes_on_one_postgres_one_wins(
    fake_upstream: FakeUpstream, postgres: Postgres
) -> None:
    # The first answer is still waiting for its first token while the other 19 arrive.
    fake_upstream.configure(ttft=4, tokens=5)
    with (
        postgres.fresh_database() as database_url,
        server_processes(server_env(fake_upstream, database_url), 2) as urls,
    ):
        conversation_id = _new(urls[0])

        def turn(index: int) -> int:
            path = f"{urls[index % 2]}/conversations/{conversation_id}/chat/stream"
            response = httpx2.post(path, json=TURN, timeout=30)
            if response.status_code == 409:
                assert response.json()["error"]["code"] == "conversation_busy"
            return response.status_code

        with ThreadPoolExecutor(20) as pool:
            statuses = list(pool.map(turn, range(20)))
        assert sorted(statuses) == [200] + [409] * 19
        stored = stored_conversation(database_url, conversation_id)
        stored.assert_whole()
        assert stored.messages == [
            (1, "user", "Tell me a story", None),
            (2, "assistant", ANSWER, "stop"),
        ]
        # Both processes serve the stored conversation alike.
        for url in urls:
            messages = httpx2.get(f"{url}/conversations/{conversation_id}").json()["messages"]
            assert [m["role"] for m in messages] == ["user", "assistant"]


def test_kill_9_mid_stream_leaves_the_user_message_and_the_next_server_serves(
    fake_upstream: FakeUpstream, database_url: str
) -> None:
    fake_upstream.configure(itl=0.05, tokens=400)  # 20 s of answer: it is streaming when killed
    env = server_env(fake_upstream, database_url, CONVERSATION_LEASE_SECONDS=str(LEASE_SECONDS))
    with server_process(env) as first:
        conversation_id = _new(first.url)
        path = f"/conversations/{conversation_id}/chat/stream"
        with httpx2.Client(base_url=first.url, timeout=30) as client:
            with client.stream("POST", path, json=TURN) as response:
                lines = response.iter_lines()
                received = [json.loads(next(lines)) for _ in range(5)]
                first.process.kill()
                first.process.wait(10)
                killed_at = datetime.now(UTC)
    assert any(line["delta"].get("content") for line in received)

    stored = stored_conversation(database_url, conversation_id)
    assert stored.messages == [(1, "user", "Tell me a story", None)]
    assert stored.message_count == 1
    # The dead server's lease is at most one lease long from its death (it was being renewed).
    assert stored.busy_until is not None
    assert (stored.busy_until - killed_at).total_seconds() <= LEASE_SECONDS + 0.5
    if database_url.startswith("sqlite"):
        assert sqlite_integrity(database_url) == "ok"

    with server_process(env) as second:
        detail = httpx2.get(f"{second.url}/conversations/{conversation_id}", timeout=30)
        assert detail.status_code == 200
        assert [m["content"] for m in detail.json()["messages"]] == ["Tell me a story"]
        fake_upstream.configure(itl=0, tokens=5)
        # Busy (409) while the dead server's lease runs, then served: within one lease of the
        # kill, however long this server took to start.
        statuses = []
        deadline = time.monotonic() + LEASE_SECONDS + 5
        while time.monotonic() < deadline:
            response = httpx2.post(f"{second.url}{path}", json=TURN, timeout=30)
            statuses.append(response.status_code)
            if response.status_code != 409:
                break
            assert datetime.now(UTC) < stored.busy_until + timedelta(seconds=1)
            time.sleep(0.1)
        assert statuses[-1] == 200, statuses
        messages = httpx2.get(f"{second.url}/conversations/{conversation_id}").json()["messages"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "Tell me a story"),
        ("user", "Tell me a story"),
        ("assistant", ANSWER),
    ]
    stored_conversation(database_url, conversation_id).assert_whole()
    if database_url.startswith("sqlite"):
        assert sqlite_integrity(database_url) == "ok"


def test_a_long_answer_keeps_its_lease_past_the_lease_time(
    fake_upstream: FakeUpstream, database_url: str
) -> None:
    """The lease is renewed while the answer streams: a second turn is busy all along."""
    lease = LEASE_SECONDS
    fake_upstream.configure(itl=0.05, tokens=int(3 * lease / 0.05))
    env = server_env(fake_upstream, database_url, CONVERSATION_LEASE_SECONDS=str(lease))
    with server_process(env) as server:
        conversation_id = _new(server.url)
        path = f"{server.url}/conversations/{conversation_id}/chat/stream"
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(httpx2.post, path, json=TURN, timeout=60)
            time.sleep(lease * 2)
            assert not first.done()
            busy = httpx2.post(path, json=TURN, timeout=30)
            assert busy.status_code == 409
            assert first.result().status_code == 200
        assert httpx2.post(path, json=TURN, timeout=60).status_code == 200
    stored = stored_conversation(database_url, conversation_id)
    stored.assert_whole()
    assert stored.roles == ["user", "assistant", "user", "assistant"]
