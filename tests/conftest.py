from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from chatbackend.app import create_app
from chatbackend.settings import Settings, load_settings
from loadtests.fake_upstream import FakeUpstream
from tests.databases import DIALECTS, Postgres, running_postgres, sqlite_url
from tests.upstream import Upstream

OPENAI_KEY = "sk-proj-test-SECRET-0123456789abcdef"
AZURE_KEY = "azure-test-SECRET-key-0123456789"
# Variables the SDKs read on their own; none may leak from the machine into a test.
_SDK_VARS = ("OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "OPENAI_BASE_URL", "OPENAI_API_VERSION")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [*(f.upper() for f in Settings.model_fields), *_SDK_VARS]:
        monkeypatch.delenv(name, raising=False)
    # Every app a test builds keeps its conversations in the test's own directory, never in the
    # working directory's data/ (tests that need a given database pass database_url).
    monkeypatch.setenv("DATABASE_URL", sqlite_url(tmp_path))


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """One real PostgreSQL 18 server for the session (started on first use). Its directory is its
    own, not pytest's numbered temp dirs, which a concurrent pytest run may prune."""
    root = Path(tempfile.mkdtemp(prefix="chatbackend-pg-"))
    try:
        with running_postgres(root) as server:
            yield server
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=DIALECTS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database for this test: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    server: Postgres = request.getfixturevalue("postgres")
    with server.fresh_database() as url:
        yield url


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def openai_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "chat_provider": "openai",
        "openai_api_key": OPENAI_KEY,
        "chat_retry_backoff_seconds": 0.01,
        **overrides,
    }
    return load_settings(**values)


def azure_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "azure_openai_endpoint": "https://contoso.openai.azure.com/",
        "azure_openai_deployment": "chat-deployment",
        "azure_openai_api_key": AZURE_KEY,
        "chat_retry_backoff_seconds": 0.01,
        **overrides,
    }
    return load_settings(**values)


ClientFactory = Callable[..., AbstractContextManager[TestClient]]


@pytest.fixture
def client_for() -> ClientFactory:
    """``client_for(upstream, settings)``: a TestClient on an app whose upstream is ``upstream``."""

    @contextmanager
    def make(upstream: Upstream, settings: Settings | None = None) -> Iterator[TestClient]:
        app = create_app(settings or openai_settings(), transport=upstream.transport)
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client

    return make


@pytest.fixture
def fake_upstream() -> Iterator[FakeUpstream]:
    """The real fake upstream server (``loadtests/fake_upstream.py``) on 127.0.0.1, per test."""
    with FakeUpstream.running_in_thread() as server:
        yield server


@pytest.fixture
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private, empty ``redis-server`` on 127.0.0.1 (a random port), per test."""
    from tests.redis_server import redis_server

    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url
