"""Requests and tokens per minute per caller, in memory and in a real Redis.

Tokens are counted from the usage each answer reports when it ends; the headers tell the tighter
window on every response that went through the limiter; a store that cannot be reached admits with
a warning or refuses with 503, as the setting says.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from typing import Any

import pytest

from tests.conftest import ClientFactory, openai_settings
from tests.redis_server import redis_server
from tests.servers import free_port
from tests.upstream import Upstream, chunks_reply, error_reply, openai_stream

REQUEST = {"messages": [{"role": "user", "content": "Hi"}]}
# openai_stream("Hello") reports 25 prompt tokens and 1 completion token.
ANSWER_TOKENS = 26


def _upstream() -> Upstream:
    return Upstream([chunks_reply(openai_stream("Hello"))])


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings for each rate-limit store: in memory, and a real ``redis-server``."""
    if request.param == "memory":
        return {}
    return {"redis_url": request.getfixturevalue("redis_url")}


def _window(response: Any) -> tuple[int, int, int]:
    headers = response.headers
    return (
        int(headers["ratelimit-limit"]),
        int(headers["ratelimit-remaining"]),
        int(headers["ratelimit-reset"]),
    )


def test_requests_past_the_limit_get_429_with_the_headers(
    client_for: ClientFactory, store: dict[str, Any]
) -> None:
    settings = openai_settings(rate_limit_requests_per_minute=2, **store)
    with client_for(_upstream(), settings) as client:
        first = client.post("/chat", json=REQUEST)
        second = client.post("/chat/stream", json=REQUEST)
        refused = client.post("/chat", json=REQUEST)
    assert first.status_code == second.status_code == 200
    assert _window(first)[:2] == (2, 1)
    assert _window(second)[:2] == (2, 0)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    limit, remaining, reset = _window(refused)
    assert (limit, remaining) == (2, 0)
    assert 1 <= reset <= 60
    assert int(refused.headers["retry-after"]) == reset


def test_tokens_are_counted_from_each_answers_usage(
    client_for: ClientFactory, store: dict[str, Any]
) -> None:
    settings = openai_settings(rate_limit_tokens_per_minute=60, **store)
    with client_for(_upstream(), settings) as client:
        answers = [client.post("/chat", json=REQUEST) for _ in range(3)]
        refused = client.post("/chat/stream", json=REQUEST)
    assert [a.status_code for a in answers] == [200, 200, 200]
    # Admitted while the window has budget left: the third answer takes it past the limit.
    assert [_window(a)[1] for a in answers] == [60, 60 - ANSWER_TOKENS, 60 - 2 * ANSWER_TOKENS]
    assert refused.status_code == 429
    assert _window(refused)[:2] == (60, 0)
    assert "retry-after" in refused.headers


def test_an_answer_that_failed_costs_no_tokens(client_for: ClientFactory) -> None:
    upstream = Upstream([error_reply(500, {"error": {"message": "boom"}})])
    settings = openai_settings(rate_limit_tokens_per_minute=100)
    with client_for(upstream, settings) as client:
        failed = client.post("/chat", json=REQUEST)
        after = client.post("/chat", json=REQUEST)
    assert failed.status_code == 502
    assert _window(after)[:2] == (100, 100)


def test_the_tighter_window_is_the_one_in_the_headers(client_for: ClientFactory) -> None:
    settings = openai_settings(rate_limit_requests_per_minute=100, rate_limit_tokens_per_minute=60)
    with client_for(_upstream(), settings) as client:
        first = client.post("/chat", json=REQUEST)
        second = client.post("/chat", json=REQUEST)
    assert _window(first)[:2] == (100, 99)  # 99/100 left beats 60/60
    assert _window(second)[:2] == (60, 60 - ANSWER_TOKENS)


def test_every_response_carries_the_headers_health_none(client_for: ClientFactory) -> None:
    settings = openai_settings(rate_limit_requests_per_minute=1000)
    with client_for(_upstream(), settings) as client:
        invalid = client.post("/chat", json={"messages": []})
        unknown = client.get("/nowhere")
        health = [client.get("/health/live"), client.get("/health/ready")]
    assert invalid.status_code == 422
    assert unknown.status_code == 404
    assert _window(invalid)[:2] == (1000, 999)
    assert _window(unknown)[:2] == (1000, 998)
    assert all(h.status_code == 200 and "ratelimit-limit" not in h.headers for h in health)


def test_without_limits_nothing_is_counted_or_added(client_for: ClientFactory) -> None:
    with client_for(_upstream()) as client:
        response = client.post("/chat", json=REQUEST)
    assert response.status_code == 200
    assert "ratelimit-limit" not in response.headers


def _unreachable_redis() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


def test_unreachable_redis_fails_open_with_a_warning(
    client_for: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    url = _unreachable_redis()
    settings = openai_settings(
        rate_limit_requests_per_minute=1, redis_url=url, rate_limit_on_storage_error="open"
    )
    caplog.set_level(logging.WARNING, "chatbackend.access")
    with client_for(_upstream(), settings) as client:
        responses = [client.post("/chat", json=REQUEST) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert all("ratelimit-limit" not in r.headers for r in responses)
    warnings = [r.getMessage() for r in caplog.records if "store unreachable" in r.getMessage()]
    assert warnings == ["rate limit store unreachable (ConnectionError): admitting without a limit"]
    assert url not in caplog.text


def test_unreachable_redis_fails_closed_with_503(client_for: ClientFactory) -> None:
    settings = openai_settings(
        rate_limit_requests_per_minute=1,
        redis_url=_unreachable_redis(),
        rate_limit_on_storage_error="closed",
    )
    upstream = _upstream()
    with client_for(upstream, settings) as client:
        refused = client.post("/chat/stream", json=REQUEST)
        health = client.get("/health/ready")
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "rate_limit_unavailable"
    assert refused.headers["retry-after"] == "1"
    assert health.status_code == 200
    assert upstream.requests == []


def test_redis_lost_while_serving_fails_closed(
    client_for: ClientFactory, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with ExitStack() as redis:
        url = redis.enter_context(redis_server(tmp_path_factory.mktemp("redis")))
        settings = openai_settings(
            rate_limit_requests_per_minute=10, redis_url=url, rate_limit_on_storage_error="closed"
        )
        with client_for(_upstream(), settings) as client:
            before = client.post("/chat", json=REQUEST)
            redis.close()  # stops redis-server while the app keeps serving
            after = client.post("/chat", json=REQUEST)
    assert before.status_code == 200
    assert after.status_code == 503
    assert after.json()["error"]["code"] == "rate_limit_unavailable"


def test_a_unix_socket_redis_url_works(
    client_for: ClientFactory, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with redis_server(tmp_path_factory.mktemp("redis"), unix_socket=True) as url:
        settings = openai_settings(rate_limit_requests_per_minute=1, redis_url=url)
        with client_for(_upstream(), settings) as client:
            admitted = client.post("/chat", json=REQUEST)
            refused = client.post("/chat", json=REQUEST)
    assert url.startswith("unix://")
    assert (admitted.status_code, refused.status_code) == (200, 429)
