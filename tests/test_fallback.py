"""The provider fallback chain against two real fake upstreams (primary and fallback).

Each retryable fault of the primary before its first byte sends the request to the fallback;
a fault after the first byte never does; a primary that keeps failing is skipped for a cool-down,
and the cool-down is shared through Redis by two server processes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from chatbackend.app import create_app
from chatbackend.requestlog import LOGGER_NAME
from chatbackend.settings import load_settings
from chatbackend.telemetry import start_telemetry
from loadtests.fake_upstream import FakeUpstream
from tests.processes import server_processes
from tests.servers import free_port

REQUEST = {"messages": [{"role": "user", "content": "Hi"}]}


@pytest.fixture
def primary() -> Iterator[FakeUpstream]:
    with FakeUpstream.running_in_thread(tokens=3) as server:
        yield server


@pytest.fixture
def fallback() -> Iterator[FakeUpstream]:
    with FakeUpstream.running_in_thread(tokens=3) as server:
        yield server


def chain_settings(primary_url: str, fallback: FakeUpstream, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "chat_provider": "compatible",
        "chat_base_url": primary_url,
        "chat_model": "primary-model",
        "chat_fallbacks": [
            {"provider": "compatible", "base_url": fallback.base_url, "model": "fallback-model"}
        ],
        "chat_retry_attempts": 1,
        "chat_fallback_timeout": 0.5,
        **overrides,
    }
    return load_settings(**values)


def final_line(response: Any) -> dict[str, Any]:
    lines = [json.loads(line) for line in response.text.splitlines() if line]
    last: dict[str, Any] = lines[-1]
    return last


@pytest.mark.parametrize("fault", ["rate_limit", "server_error", "hang"])
def test_a_retryable_fault_before_the_first_byte_falls_back(
    primary: FakeUpstream, fallback: FakeUpstream, fault: str
) -> None:
    primary.queue(fault=fault, retry_after=30, hang=5)
    with TestClient(create_app(chain_settings(primary.base_url, fallback))) as client:
        response = client.post("/chat/stream", json=REQUEST)
    assert response.status_code == 200
    assert final_line(response)["context"]["model"] == "fallback-model"
    assert primary.snapshot()["faults"] == {fault: 1}
    assert fallback.snapshot()["requests"] == 1


def test_an_unreachable_primary_falls_back(fallback: FakeUpstream) -> None:
    unreachable = f"http://127.0.0.1:{free_port()}/v1"
    with TestClient(create_app(chain_settings(unreachable, fallback))) as client:
        response = client.post("/chat", json=REQUEST)
    assert response.status_code == 200
    assert response.json()["context"]["model"] == "fallback-model"


def test_a_healthy_primary_serves_and_the_fallback_is_not_called(
    primary: FakeUpstream, fallback: FakeUpstream
) -> None:
    with TestClient(create_app(chain_settings(primary.base_url, fallback))) as client:
        response = client.post("/chat", json=REQUEST)
    assert response.json()["context"]["model"] == "primary-model"
    assert fallback.snapshot()["requests"] == 0


def test_a_fault_after_the_first_byte_never_falls_back(
    primary: FakeUpstream, fallback: FakeUpstream
) -> None:
    primary.queue(fault="drop", drop_after=1)
    with TestClient(create_app(chain_settings(primary.base_url, fallback))) as client:
        response = client.post("/chat/stream", json=REQUEST)
    assert response.status_code == 200
    assert final_line(response)["error"]["code"] == "upstream_incomplete"
    assert fallback.snapshot()["requests"] == 0


def test_a_request_the_upstream_rejects_is_not_sent_elsewhere(
    primary: FakeUpstream, fallback: FakeUpstream
) -> None:
    primary.queue(fault="content_filter")
    with TestClient(create_app(chain_settings(primary.base_url, fallback))) as client:
        response = client.post("/chat", json=REQUEST)
    assert response.status_code == 400
    assert fallback.snapshot()["requests"] == 0


def test_a_failing_primary_cools_down_and_health_says_so(
    primary: FakeUpstream, fallback: FakeUpstream
) -> None:
    primary.configure(fault="server_error")
    settings = chain_settings(primary.base_url, fallback, chat_fallback_failures=2)
    with TestClient(create_app(settings)) as client:
        before = client.get("/health/ready").json()
        for _ in range(4):
            assert client.post("/chat", json=REQUEST).status_code == 200
        after = client.get("/health/ready").json()
    assert primary.snapshot()["requests"] == 2  # then skipped while it cools down
    assert fallback.snapshot()["requests"] == 4
    assert [p["state"] for p in before["providers"]] == ["ready", "ready"]
    assert after["providers"] == [
        {"name": "compatible", "model": "primary-model", "state": "cooling"},
        {"name": "compatible", "model": "fallback-model", "state": "ready"},
    ]


def test_the_cool_down_is_shared_by_two_processes_through_redis(
    primary: FakeUpstream, fallback: FakeUpstream, redis_url: str
) -> None:
    primary.configure(fault="server_error")
    fallbacks = [
        {"provider": "compatible", "base_url": fallback.base_url, "model": "fallback-model"}
    ]
    env = {
        "CHAT_PROVIDER": "compatible",
        "CHAT_BASE_URL": primary.base_url,
        "CHAT_MODEL": "primary-model",
        "CHAT_FALLBACKS": json.dumps(fallbacks),
        "CHAT_RETRY_ATTEMPTS": "1",
        "CHAT_FALLBACK_FAILURES": "2",
        "REDIS_URL": redis_url,
    }
    with server_processes(env, 2) as (first, second):
        for _ in range(2):
            assert httpx2.post(f"{first}/chat", json=REQUEST, timeout=30).status_code == 200
        served = httpx2.post(f"{second}/chat", json=REQUEST, timeout=30)
        health = httpx2.get(f"{second}/health/ready", timeout=10).json()
    assert served.json()["context"]["model"] == "fallback-model"
    assert primary.snapshot()["requests"] == 2  # the second process never tried it
    assert health["providers"][0]["state"] == "cooling"


def test_the_request_log_names_the_provider_that_served(
    primary: FakeUpstream, fallback: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    primary.queue(fault="server_error")
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, LOGGER_NAME)
    try:
        with TestClient(create_app(chain_settings(primary.base_url, fallback))) as client:
            assert client.post("/chat", json=REQUEST).status_code == 200
    finally:
        logger.removeHandler(caplog.handler)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == LOGGER_NAME]
    (line,) = [entry for entry in lines if entry["path"] == "/chat"]
    assert (line["provider"], line["model"]) == ("compatible", "fallback-model")
    assert line["upstream_calls"] == 1  # one attempt of the service; the chain made two calls


@pytest.mark.parametrize("route", ["/chat", "/chat/stream"])
def test_the_client_span_names_the_member_that_served(
    primary: FakeUpstream, fallback: FakeUpstream, route: str
) -> None:
    primary.queue(fault="server_error")
    settings = chain_settings(primary.base_url, fallback)
    spans, metrics = InMemorySpanExporter(), InMemoryMetricReader()
    telemetry = start_telemetry(settings, span_exporter=spans, metric_reader=metrics)
    assert telemetry is not None
    try:
        with TestClient(create_app(settings, telemetry=telemetry)) as client:
            response = client.post(route, json=REQUEST)
    finally:
        telemetry.shutdown()
    assert response.status_code == 200
    model = (final_line(response) if route == "/chat/stream" else response.json())["context"]
    assert model["model"] == "fallback-model"
    (llm,) = [s for s in spans.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert llm.name == "chat fallback-model"
    found = dict(llm.attributes or {})
    assert found["gen_ai.provider.name"] == found["gen_ai.system"] == "openai.compatible"
    assert found["gen_ai.request.model"] == found["gen_ai.response.model"] == "fallback-model"
    assert (found["server.address"], found["server.port"]) == ("127.0.0.1", fallback.port)
    assert "error.type" not in found
    assert primary.snapshot()["faults"] == {"server_error": 1}


def test_the_span_of_a_primary_that_served_names_the_primary(
    primary: FakeUpstream, fallback: FakeUpstream
) -> None:
    settings = chain_settings(primary.base_url, fallback)
    spans, metrics = InMemorySpanExporter(), InMemoryMetricReader()
    telemetry = start_telemetry(settings, span_exporter=spans, metric_reader=metrics)
    assert telemetry is not None
    try:
        with TestClient(create_app(settings, telemetry=telemetry)) as client:
            assert client.post("/chat", json=REQUEST).status_code == 200
    finally:
        telemetry.shutdown()
    (llm,) = [s for s in spans.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert llm.name == "chat primary-model"
    found = dict(llm.attributes or {})
    assert (found["gen_ai.request.model"], found["server.port"]) == ("primary-model", primary.port)
