"""Provider selection, checked by what reaches the upstream: URL, auth header, model."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from fastapi.testclient import TestClient

from chatbackend.app import create_app
from chatbackend.settings import SettingsError, load_settings
from tests.conftest import AZURE_KEY, OPENAI_KEY
from tests.upstream import Upstream, chunks_reply, openai_stream

REQUEST = {
    "messages": [{"role": "user", "content": "hi"}],
    "context": {"overrides": {"max_tokens": 5}},
}
COGNITIVE_SCOPE = "https://cognitiveservices.azure.com/.default"


class FakeCredential:
    """An ``AsyncTokenCredential`` that hands out a fixed token and records its use."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []
        self.closed = False

    async def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken("fake-entra-token", int(time.time()) + 3600)

    async def close(self) -> None:
        self.closed = True

    async def __aenter__(self) -> FakeCredential:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()


def sent_request(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], credential: FakeCredential | None = None
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """Start the app with ``env`` only, send one chat, return the upstream URL, headers and body."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    upstream = Upstream([chunks_reply(openai_stream("ok"))])
    app = create_app(transport=upstream.transport, credential=credential)  # type: ignore[arg-type]
    with TestClient(app) as client:
        assert client.post("/chat", json=REQUEST).status_code == 200
    request = upstream.requests[0]
    return str(request.url), dict(request.headers), upstream.last_json()


def test_openai(monkeypatch: pytest.MonkeyPatch) -> None:
    url, headers, body = sent_request(monkeypatch, {"OPENAI_API_KEY": OPENAI_KEY})
    assert url == "https://api.openai.com/v1/chat/completions"
    assert headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert "openai-organization" not in headers
    assert body["model"] == "gpt-4.1-mini"


def test_openai_with_base_url_and_model(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "OPENAI_API_KEY": OPENAI_KEY,
        "OPENAI_BASE_URL": "https://proxy.example/v1",
        "OPENAI_MODEL": "gpt-4o",
    }
    url, _, body = sent_request(monkeypatch, env)
    assert url == "https://proxy.example/v1/chat/completions"
    assert body["model"] == "gpt-4o"


def test_github_models(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"CHAT_PROVIDER": "github", "GITHUB_TOKEN": "ghp_test", "GITHUB_MODEL": "openai/gpt-4o"}
    url, headers, body = sent_request(monkeypatch, env)
    assert url == "https://models.github.ai/inference/chat/completions"
    assert headers["authorization"] == "Bearer ghp_test"
    assert body["model"] == "openai/gpt-4o"


def test_compatible_server_with_key(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "CHAT_PROVIDER": "compatible",
        "CHAT_BASE_URL": "http://127.0.0.1:8080/v1",
        "CHAT_MODEL": "llama3.2",
        "CHAT_API_KEY": "local-key",
    }
    url, headers, body = sent_request(monkeypatch, env)
    assert url == "http://127.0.0.1:8080/v1/chat/completions"
    assert headers["authorization"] == "Bearer local-key"
    assert body["model"] == "llama3.2"


def test_compatible_server_without_key_sends_no_authorization(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {
        "CHAT_PROVIDER": "compatible",
        "CHAT_BASE_URL": "http://127.0.0.1:11434/v1/",
        "CHAT_MODEL": "qwen2.5:0.5b",
    }
    url, headers, body = sent_request(monkeypatch, env)
    assert url == "http://127.0.0.1:11434/v1/chat/completions"
    assert "authorization" not in headers
    assert body["max_tokens"] == 5, "OpenAI-compatible servers get the widely known name"


def test_azure_with_key(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "AZURE_OPENAI_ENDPOINT": "https://contoso.openai.azure.com",
        "AZURE_OPENAI_DEPLOYMENT": "gpt-4o-chat",
        "AZURE_OPENAI_API_KEY": AZURE_KEY,
    }
    url, headers, body = sent_request(monkeypatch, env)
    assert url == "https://contoso.openai.azure.com/openai/v1/chat/completions"
    assert headers["authorization"] == f"Bearer {AZURE_KEY}"
    assert body["model"] == "gpt-4o-chat"
    assert body["max_completion_tokens"] == 5


@pytest.mark.parametrize("client_id", [None, "00000000-0000-0000-0000-000000000001"])
def test_azure_keyless_uses_the_credential_and_closes_it(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, client_id: str | None
) -> None:
    caplog.set_level("INFO")
    env = {
        "AZURE_OPENAI_ENDPOINT": "https://contoso.openai.azure.com/",
        "AZURE_OPENAI_DEPLOYMENT": "gpt-4o-chat",
    }
    if client_id:
        env["AZURE_CLIENT_ID"] = client_id
    credential = FakeCredential()
    url, headers, _ = sent_request(monkeypatch, env, credential)
    assert url == "https://contoso.openai.azure.com/openai/v1/chat/completions"
    assert headers["authorization"] == "Bearer fake-entra-token"
    assert credential.scopes == [(COGNITIVE_SCOPE,)]
    assert credential.closed, "the lifespan closes the credential on shutdown"
    mode = "managed-identity" if client_id else "developer-credential"
    assert f"serving provider=azure model=gpt-4o-chat auth={mode}" in caplog.text


@pytest.mark.parametrize(
    ("client_id", "mode"),
    [("00000000-0000-0000-0000-000000000001", "managed-identity"), (None, "developer-credential")],
)
def test_azure_keyless_starts_with_the_real_credential_without_a_login(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    client_id: str | None,
    mode: str,
) -> None:
    caplog.set_level("INFO")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://contoso.openai.azure.com/")
    monkeypatch.setenv("AZURE_OPENAI_DEPLOYMENT", "gpt-4o-chat")
    if client_id:
        monkeypatch.setenv("AZURE_CLIENT_ID", client_id)
    upstream = Upstream([chunks_reply(openai_stream("unused"))])
    with TestClient(create_app(transport=upstream.transport)) as client:
        assert client.get("/health/live").status_code == 200
        if mode == "developer-credential":
            # No azd/az login here: the credential cannot produce a token, so not ready. (The
            # managed identity would ask the instance metadata service, off this machine.)
            ready = client.get("/health/ready")
            assert ready.status_code == 503
            assert ready.json()["error"]["code"] == "not_ready"
    assert f"auth={mode}" in caplog.text
    assert upstream.requests == [], "readiness makes no upstream call"


class FailingCredential(FakeCredential):
    async def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        self.scopes.append(scopes)
        raise RuntimeError("AADSTS700016: secret-looking detail")


@pytest.mark.parametrize(
    ("credential_class", "status"), [(FakeCredential, 200), (FailingCredential, 503)]
)
def test_readiness_asks_the_credential_for_a_token_and_caches_the_answer(
    monkeypatch: pytest.MonkeyPatch, credential_class: type[FakeCredential], status: int
) -> None:
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://contoso.openai.azure.com/")
    monkeypatch.setenv("AZURE_OPENAI_DEPLOYMENT", "gpt-4o-chat")
    credential = credential_class()
    upstream = Upstream([chunks_reply(openai_stream("unused"))])
    app = create_app(transport=upstream.transport, credential=credential)  # type: ignore[arg-type]
    with TestClient(app) as client:
        answers = [client.get("/health/ready") for _ in range(3)]
    assert [a.status_code for a in answers] == [status] * 3
    assert credential.scopes == [(COGNITIVE_SCOPE,)], "one token request for three probes"
    assert "AADSTS" not in answers[0].text
    assert upstream.requests == [], "readiness makes no paid call"


@pytest.mark.parametrize(
    ("env", "provider"),
    [
        (
            {
                "AZURE_OPENAI_ENDPOINT": "https://x",
                "AZURE_OPENAI_DEPLOYMENT": "d",
                "OPENAI_API_KEY": "sk",
            },
            "azure",
        ),
        ({"OPENAI_API_KEY": "sk"}, "openai"),
        ({}, "local"),
        ({"CHAT_PROVIDER": "github", "GITHUB_TOKEN": "t", "OPENAI_API_KEY": "sk"}, "github"),
    ],
)
def test_provider_inferred_from_environment(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], provider: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert load_settings().provider == provider


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"CHAT_PROVIDER": "azure"}, "AZURE_OPENAI_ENDPOINT"),
        ({"AZURE_OPENAI_ENDPOINT": "https://x"}, "AZURE_OPENAI_DEPLOYMENT"),
        ({"CHAT_PROVIDER": "openai"}, "OPENAI_API_KEY"),
        ({"CHAT_PROVIDER": "github"}, "GITHUB_TOKEN"),
        ({"CHAT_PROVIDER": "compatible", "CHAT_MODEL": "m"}, "CHAT_BASE_URL"),
        ({"CHAT_PROVIDER": "compatible", "CHAT_BASE_URL": "http://x"}, "CHAT_MODEL"),
        ({"CHAT_PROVIDER": "bedrock"}, "CHAT_PROVIDER"),
        ({"CHAT_FIRST_TOKEN_TIMEOUT": "60", "CHAT_RESPONSE_TIMEOUT": "30"}, "CHAT_FIRST_TOKEN"),
        ({"CHAT_PROVIDER": "local", "LOCAL_MODEL_PATH": "/nonexistent.gguf"}, "LOCAL_MODEL_PATH"),
        ({"CHAT_CONNECT_TIMEOUT": "soon"}, "CHAT_CONNECT_TIMEOUT"),
    ],
)
def test_missing_or_contradictory_settings_fail_with_one_line(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], named: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as failure:
        load_settings()
    assert named in str(failure.value)
    assert "\n" not in str(failure.value)


def test_cli_exits_with_one_line_naming_the_variable() -> None:
    env = {"CHAT_PROVIDER": "azure", "AZURE_OPENAI_API_KEY": "hidden-key-value", "PATH": ""}
    result = subprocess.run(
        [sys.executable, "-m", "chatbackend", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "AZURE_OPENAI_ENDPOINT" in result.stderr
    assert "hidden-key-value" not in result.stderr
