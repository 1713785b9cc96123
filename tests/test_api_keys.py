"""API keys: their shape, what is stored of them, and how they are compared."""

from __future__ import annotations

import ast
import asyncio
import hashlib
import inspect
import logging
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from chatbackend.access import keys
from chatbackend.access.keys import PREFIX, KeyRecord, NewKey, key_id_of, new_key
from chatbackend.access.repository import SqlKeyRepository
from chatbackend.app import create_app
from chatbackend.settings import Settings
from chatbackend.store import open_database
from chatbackend.telemetry import start_telemetry
from tests.conftest import ClientFactory, openai_settings
from tests.upstream import Upstream, chunks_reply, openai_stream

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
REQUEST = {"messages": [{"role": "user", "content": "Hi"}]}


def test_a_new_key_is_random_and_only_its_hash_is_kept() -> None:
    first, second = new_key("app", created_at=NOW), new_key("app", created_at=NOW)
    assert first.key != second.key
    prefix = f"cbk_{first.record.id}_"
    assert first.key.startswith(prefix)
    assert len(first.key) - len(prefix) == 43  # 32 random bytes, URL-safe base64
    assert first.record.key_hash == hashlib.sha256(first.key.encode()).hexdigest()
    assert first.key not in repr(first.record)


def test_only_well_formed_keys_have_an_id() -> None:
    made = new_key("app", created_at=NOW)
    assert key_id_of(made.key) == made.record.id
    for bad in ("", "cbk_", made.key + "x", made.key[:-1], "sk-" + made.key[4:], made.key.upper()):
        assert key_id_of(bad) is None


def test_the_hash_is_compared_in_constant_time_and_never_with_equality() -> None:
    source = textwrap.dedent(inspect.getsource(keys.DatabaseKeys.check))
    tree = ast.parse(source)
    calls = {ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    assert "hmac.compare_digest" in calls
    compared = [ast.unparse(node) for node in ast.walk(tree) if isinstance(node, ast.Compare)]
    assert not [c for c in compared if "hash" in c], compared


# -- against the real key table (SQLite and PostgreSQL) ----------------------------------------
def add_key(database_url: str, name: str = "app", **limits: int) -> NewKey:
    """A key stored the way ``keys create`` stores it."""
    made = new_key(name, created_at=datetime.now(UTC), **limits)

    async def store() -> None:
        database = await open_database(database_url, pool_size=1)
        try:
            await SqlKeyRepository(database).add(made.record)
        finally:
            await database.aclose()

    asyncio.run(store())
    return made


def stored(database_url: str) -> list[KeyRecord]:
    async def read() -> list[KeyRecord]:
        database = await open_database(database_url, pool_size=1)
        try:
            return await SqlKeyRepository(database).all()
        finally:
            await database.aclose()

    return asyncio.run(read())


def revoke(database_url: str, key_id: str) -> bool:
    async def run() -> bool:
        database = await open_database(database_url, pool_size=1)
        try:
            return await SqlKeyRepository(database).revoke(key_id)
        finally:
            await database.aclose()

    return asyncio.run(run())


def test_the_per_request_read_returns_the_record_as_stored(database_url: str) -> None:
    """``get`` (a plain sqlite3 read on a SQLite file) sees what the ORM wrote: every column,
    times as aware UTC to the microsecond, the revocation and use another connection committed."""
    made = add_key(database_url, requests_per_minute=7, tokens_per_minute=900)
    other = add_key(database_url, "other")

    async def read() -> tuple[KeyRecord | None, KeyRecord | None, KeyRecord | None]:
        database = await open_database(database_url, pool_size=1)
        repository = SqlKeyRepository(database)
        try:
            before = await repository.get(made.record.id)
            writer = SqlKeyRepository(database)
            await writer.touch(made.record.id)
            assert await writer.revoke(made.record.id)
            after = await repository.get(made.record.id)
            return before, after, await repository.get("0" * 16)
        finally:
            await repository.aclose()
            await database.aclose()

    before, after, missing = asyncio.run(read())
    assert before == made.record
    assert missing is None
    assert after is not None and after.revoked_at is not None and after.last_used_at is not None
    assert after.revoked_at.tzinfo is UTC
    by_id = {record.id: record for record in stored(database_url)}
    assert after == by_id[made.record.id]
    assert by_id[other.record.id].revoked_at is None


def keyed(database_url: str, **overrides: Any) -> Settings:
    return openai_settings(auth_mode="api-key", database_url=database_url, **overrides)


def _upstream() -> Upstream:
    return Upstream([chunks_reply(openai_stream("Hello"))])


def _assert_unauthorized(response: Any) -> None:
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="chatbackend"'
    assert response.json()["error"]["code"] == "unauthorized"


def test_every_shape_of_a_missing_or_bad_key_is_401(
    client_for: ClientFactory, database_url: str
) -> None:
    made = add_key(database_url)
    wrong_secret = made.key[:-4] + ("AAAA" if not made.key.endswith("AAAA") else "BBBB")
    unknown_id = new_key("other", created_at=datetime.now(UTC)).key
    presented: list[dict[str, str]] = [
        {},
        {"authorization": ""},
        {"authorization": "Bearer"},
        {"authorization": f"Basic {made.key}"},
        {"authorization": "Bearer not-a-key"},
        {"authorization": f"Bearer {wrong_secret}"},
        {"authorization": f"Bearer {unknown_id}"},
        {"api-key": wrong_secret},
    ]
    upstream = _upstream()
    with client_for(upstream, keyed(database_url)) as client:
        for headers in presented:
            _assert_unauthorized(client.post("/chat", json=REQUEST, headers=headers))
        _assert_unauthorized(client.get("/nowhere"))  # no route discovery without a key
    assert upstream.requests == []


def test_a_valid_key_in_either_header_is_served_and_marks_the_key_used(
    client_for: ClientFactory, database_url: str
) -> None:
    made = add_key(database_url)
    with client_for(_upstream(), keyed(database_url)) as client:
        bearer = client.post("/chat", json=REQUEST, headers={"authorization": f"Bearer {made.key}"})
        azure_style = client.post("/chat/stream", json=REQUEST, headers={"api-key": made.key})
        health = client.get("/health/ready")
    assert (bearer.status_code, azure_style.status_code, health.status_code) == (200, 200, 200)
    (record,) = stored(database_url)
    assert record.last_used_at is not None


def test_a_revoked_key_is_refused(client_for: ClientFactory, database_url: str) -> None:
    made = add_key(database_url)
    headers = {"authorization": f"Bearer {made.key}"}
    with client_for(_upstream(), keyed(database_url)) as client:
        before = client.post("/chat", json=REQUEST, headers=headers)
        assert revoke(database_url, made.record.id)
        after = client.post("/chat", json=REQUEST, headers=headers)
    assert before.status_code == 200
    _assert_unauthorized(after)
    assert after.json()["error"]["message"] == "This API key has been revoked."
    assert not revoke(database_url, "0123456789abcdef")


def test_a_keys_own_limits_replace_the_defaults(
    client_for: ClientFactory, database_url: str
) -> None:
    strict = add_key(database_url, "strict", requests_per_minute=1)
    default = add_key(database_url, "default")
    settings = keyed(database_url, rate_limit_requests_per_minute=100)
    with client_for(_upstream(), settings) as client:

        def call(made: NewKey) -> Any:
            return client.post("/chat", json=REQUEST, headers={"api-key": made.key})

        strict_calls = [call(strict), call(strict)]
        default_calls = [call(default), call(default)]
    assert [r.status_code for r in strict_calls] == [200, 429]
    assert strict_calls[0].headers["ratelimit-limit"] == "1"
    assert [r.status_code for r in default_calls] == [200, 200]
    assert default_calls[1].headers["ratelimit-remaining"] == "98"  # its own window


def test_keys_never_reach_logs_spans_or_error_bodies(
    database_url: str, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    made = add_key(database_url)
    canary = made.key[:-6] + "CANARY"
    settings = keyed(database_url, otel_exporter_otlp_endpoint="http://127.0.0.1:9/")
    spans = InMemorySpanExporter()
    telemetry = start_telemetry(settings, span_exporter=spans, metric_reader=InMemoryMetricReader())
    assert telemetry is not None
    caplog.set_level(logging.DEBUG)
    bodies: list[str] = []
    try:
        app = create_app(settings, transport=_upstream().transport, telemetry=telemetry)
        with TestClient(app) as client:
            for key in (made.key, canary):
                for headers in ({"authorization": f"Bearer {key}"}, {"api-key": key}):
                    response = client.post("/chat", json=REQUEST, headers=headers)
                    bodies.append(response.text + repr(dict(response.headers)))
    finally:
        telemetry.shutdown()
    recorded = "\n".join(
        [caplog.text, *capfd.readouterr()]
        + [repr(s.to_json()) for s in spans.get_finished_spans()]
        + bodies
    )
    assert spans.get_finished_spans()
    for secret in (made.key, canary, made.key[len(PREFIX) + 17 :]):
        assert secret not in recorded


def test_the_keys_command_creates_lists_and_revokes(tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}",
        "CHAT_PROVIDER": "compatible",
        "CHAT_BASE_URL": "http://127.0.0.1:9/v1",
        "CHAT_MODEL": "m",
    }

    def keys(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "chatbackend", "keys", *args],
            env={"PATH": os.environ["PATH"], **env},
            capture_output=True,
            text=True,
            timeout=120,
        )

    created = keys("create", "--name", "my-app", "--tokens-per-minute", "5000")
    assert created.returncode == 0, created.stderr
    lines = created.stdout.splitlines()
    key = lines[-1]
    assert key_id_of(key) is not None and created.stdout.count(key) == 1
    key_id = key_id_of(key)
    listed = keys("list")
    assert key_id in listed.stdout and "my-app" in listed.stdout and "5000" in listed.stdout
    assert key not in listed.stdout
    assert hashlib.sha256(key.encode()).hexdigest() not in listed.stdout
    assert keys("revoke", str(key_id)).returncode == 0
    assert keys("revoke", "0123456789abcdef").returncode == 1
    (row,) = [line for line in keys("list").stdout.splitlines() if line.startswith(str(key_id))]
    assert row.split("\t")[4] != "-"  # revoked at
