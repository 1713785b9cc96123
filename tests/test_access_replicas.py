"""Two server processes on one Redis: a caller's limits hold across both."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx2
import pytest

from chatbackend.access.keys import NewKey
from loadtests.fake_upstream import FakeUpstream
from tests.databases import Postgres
from tests.processes import server_processes
from tests.test_api_keys import add_key, revoke

REQUEST = {"messages": [{"role": "user", "content": "Hi"}]}
LIMIT = 10


def replica_env(upstream: FakeUpstream, redis_url: str, **extra: str) -> dict[str, str]:
    return {
        "CHAT_PROVIDER": "compatible",
        "CHAT_BASE_URL": upstream.base_url,
        "CHAT_MODEL": "fake-model",
        "REDIS_URL": redis_url,
        **extra,
    }


@pytest.fixture
def two_replicas(fake_upstream: FakeUpstream, redis_url: str) -> Iterator[list[str]]:
    env = replica_env(fake_upstream, redis_url, RATE_LIMIT_REQUESTS_PER_MINUTE=str(LIMIT))
    with server_processes(env, 2) as urls:
        yield urls


def test_the_request_limit_holds_across_two_processes(two_replicas: list[str]) -> None:
    def call(index: int) -> int:
        url = two_replicas[index % 2]
        return httpx2.post(f"{url}/chat", json=REQUEST, timeout=30).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(call, range(3 * LIMIT)))
    assert statuses.count(200) == LIMIT
    assert statuses.count(429) == 2 * LIMIT


@pytest.fixture
def shared_database(postgres: Postgres) -> Iterator[str]:
    """One PostgreSQL database both replicas use, as they would in Azure."""
    with postgres.fresh_database() as url:
        yield url


def test_a_keys_limit_holds_and_a_revoked_key_is_refused_across_two_processes(
    fake_upstream: FakeUpstream, redis_url: str, shared_database: str
) -> None:
    limited = add_key(shared_database, "limited", requests_per_minute=LIMIT)
    other = add_key(shared_database, "other")
    env = replica_env(
        fake_upstream,
        redis_url,
        AUTH_MODE="api-key",
        DATABASE_URL=shared_database,
        RATE_LIMIT_REQUESTS_PER_MINUTE="1000",
    )
    with server_processes(env, 2) as urls:

        def call(index: int, made: NewKey = limited) -> int:
            headers = {"authorization": f"Bearer {made.key}"}
            url = urls[index % 2]
            return httpx2.post(f"{url}/chat", json=REQUEST, headers=headers, timeout=30).status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(call, range(3 * LIMIT)))
        before = [call(index, other) for index in range(2)]
        assert revoke(shared_database, other.record.id)
        after = [call(index, other) for index in range(2)]
    assert statuses.count(200) == LIMIT
    assert statuses.count(429) == 2 * LIMIT
    assert before == [200, 200]
    assert after == [401, 401]
