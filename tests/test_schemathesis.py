"""schemathesis over the app's own OpenAPI document: every operation, every check, auth off and on.

The operations are collected from the document ``create_app`` builds (so a route added later is
fuzzed without a change here), one pytest item per operation and auth mode. Each case is sent to
the real app on a real uvicorn server, in front of the fake upstream (chat) and a hashed
bag-of-words ``/embeddings`` at the transport (documents), on a SQLite file of the test's own;
with ``AUTH_MODE=api-key`` the key is stored by the keys command's repository, and schemathesis
checks that the operations refuse requests without it or with a wrong one.

Every built-in check runs (schemathesis 4's defaults: no 5xx, status codes, content types,
headers and bodies as documented, schema-invalid requests refused, schema-valid ones accepted,
auth enforced, undeclared methods refused, ...). Bounded and stable: ``MAX_EXAMPLES`` generated
cases per operation after the example and (without auth) coverage phases, a fixed seed with
Hypothesis derandomised, no example database, and a per-request timeout.

A failure names the operation in the test id and prints the check, the response and a curl
command that reproduces it; ``pytest tests/test_schemathesis.py -k 'POST and /chat/stream'``
runs one operation again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
import schemathesis
from schemathesis import Case
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import positive_data_acceptance

from chatbackend.app import create_app
from chatbackend.settings import Settings, load_settings
from loadtests.fake_upstream import FakeUpstream
from tests.databases import sqlite_url
from tests.embedding_upstream import EmbeddingUpstream
from tests.servers import serve
from tests.test_api_keys import add_key

MAX_EXAMPLES = 10
REQUEST_TIMEOUT = 10.0
# What both the collected document and the served app are built from: the compatible provider
# (the fake upstream's URL is only known once it runs; the document does not depend on it).
BASE = {
    "chat_provider": "compatible",
    "chat_base_url": "http://127.0.0.1:9/v1",
    "chat_model": "fake-model",
    "embedding_model": "text-embedding-3-small",
    "embedding_dimensions": 64,
    "chat_retry_backoff_seconds": 0.01,
}
# With keys on, a caller limit too (high enough never to refuse): its 429 and headers documented.
MODES: dict[str, dict[str, Any]] = {
    "none": {"auth_mode": "none"},
    "api-key": {
        "auth_mode": "api-key",
        "rate_limit_requests_per_minute": 1_000_000,
        "rate_limit_tokens_per_minute": 100_000_000,
    },
}
GENERATION = {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"}


def config(*, coverage: bool) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "seed": 20261201,
            "request-timeout": REQUEST_TIMEOUT,
            "generation": GENERATION,
            "phases": {"coverage": {"enabled": coverage}, "stateful": {"enabled": False}},
            "checks": {"enabled": True},
        }
    )


# The coverage phase's boundary cases (most of the run's time) go through the same validation
# whatever the auth mode: with keys on, examples and generated cases check what keys change.
CONFIGS = {"none": config(coverage=True), "api-key": config(coverage=False)}


def settings_for(mode: str, **extra: Any) -> Settings:
    return load_settings(**{**BASE, **MODES[mode], **extra})


def document(mode: str) -> dict[str, Any]:
    """The OpenAPI document of an app in ``mode``, built without starting it."""
    return create_app(settings_for(mode, database_url=sqlite_url(Path("unused")))).openapi()


SCHEMAS = {
    mode: schemathesis.openapi.from_dict(document(mode), config=CONFIGS[mode]) for mode in MODES
}


@dataclass
class Target:
    url: str
    headers: dict[str, str]


class _Routed(httpx2.AsyncBaseTransport):
    """``/embeddings`` to the in-process fake, everything else over the network."""

    def __init__(self) -> None:
        self.embeddings = EmbeddingUpstream().transport
        self.network = httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/embeddings"):
            return await self.embeddings.handle_async_request(request)
        return await self.network.handle_async_request(request)

    async def aclose(self) -> None:
        await self.network.aclose()


def create_key(database_url: str) -> str:
    """A key stored as ``python -m chatbackend keys create`` stores it (its repository)."""
    return add_key(database_url, name="fuzz").key


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream.running_in_thread(tokens=3) as server:
        yield server


@contextmanager
def running(mode: str, upstream: FakeUpstream, directory: Path) -> Iterator[Target]:
    """The app in ``mode`` on a real server, checked to serve the document being fuzzed."""
    database_url = sqlite_url(directory)
    headers = {}
    if mode == "api-key":
        headers["Authorization"] = f"Bearer {create_key(database_url)}"
    settings = settings_for(mode, database_url=database_url, chat_base_url=upstream.base_url)
    with serve(create_app(settings, transport=_Routed())) as url:
        served = httpx2.get(f"{url}/openapi.json", timeout=REQUEST_TIMEOUT).json()
        assert served == document(mode), "the served document is not the one fuzzed"
        yield Target(url, headers)


@pytest.fixture(scope="module")
def open_app(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    with running("none", upstream, tmp_path_factory.mktemp("fuzz-open")) as target:
        yield target


@pytest.fixture(scope="module")
def keyed_app(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    with running("api-key", upstream, tmp_path_factory.mktemp("fuzz-keyed")) as target:
        yield target


def _repeats_an_id(body: object) -> bool:
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list):
        return False
    ids = [item.get("id") for item in items if isinstance(item, dict)]
    return len(ids) != len(set(map(repr, ids)))


def check(case: Case, target: Target) -> None:
    # Known gap: a multipart upload's file is documented as any bytes, but only UTF-8 text
    # (.txt, .md, .html) is a document; OpenAPI cannot say "binary that is UTF-8 text".
    upload = case.operation.path == "/documents" and case.media_type == "multipart/form-data"
    # Known gap: a batch's item ids must be unique (its NDJSON results are told apart by id);
    # JSON Schema cannot say "unique by one property", so such a body is refused with a 422.
    repeated = case.operation.path == "/batch" and _repeats_an_id(case.body)
    excluded = [positive_data_acceptance] if upload or repeated else None
    try:
        case.call_and_validate(
            base_url=target.url, headers=target.headers, excluded_checks=excluded
        )
    except FailureGroup as failures:
        method, path = case.operation.method.upper(), case.operation.path
        failures.add_note(
            f"operation: {method} {path}, auth {'on' if target.headers else 'off'}; "
            f"again: pytest tests/test_schemathesis.py -k '{method} and {_selector(path)}'"
        )
        raise


def _selector(path: str) -> str:
    """``path`` as ``pytest -k`` takes it (no braces): its part before the first parameter."""
    return path.split("{")[0].rstrip("/") or "/"


@SCHEMAS["none"].parametrize()
def test_every_operation_without_auth(case: Case, open_app: Target) -> None:
    check(case, open_app)


@SCHEMAS["api-key"].parametrize()
def test_every_operation_with_api_keys(case: Case, keyed_app: Target) -> None:
    check(case, keyed_app)
