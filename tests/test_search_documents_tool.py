"""``search_documents``: the model searches the caller's documents through the tool loop.

On SQLite and PostgreSQL, with two real API keys: over the mock transport (the exact tool-call
stream, bag-of-words embeddings), and through real servers, the backend under uvicorn in front of
the fake upstream, which scripts the call, with the embedded embedder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient

from chatbackend.access.caller import Caller
from chatbackend.app import create_app
from chatbackend.providers.base import ToolCall
from chatbackend.settings import load_settings
from chatbackend.tools import ToolRegistry, ToolRunner, builtin_registry
from chatbackend.tools.context import ToolContext, using_tool_context
from chatbackend.tools.documents import search_documents
from loadtests.fake_upstream import FakeUpstream
from tests.embedding_upstream import EmbeddingUpstream
from tests.servers import serve
from tests.test_api_keys import add_key
from tests.test_documents import ANIMALS, rag_settings
from tests.tool_streams import tool_call_chunks
from tests.upstream import Upstream, chunks_reply, openai_stream

# Each key's document answers the question; only the caller's may come back.
THEIRS = """# Cephalopods

## Octopus hearts
Octopus hearts: an octopus has two branchial hearts and one systemic heart, like a squid.
"""
QUESTION = "How many hearts does an octopus have?"
ARGUMENTS = json.dumps({"query": QUESTION, "top_k": 5})
REQUEST = {"messages": [{"role": "user", "content": QUESTION}]}


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def lines(response: httpx2.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.text.splitlines()]


def tool_results(response: httpx2.Response) -> list[dict[str, Any]]:
    return [
        e["context"]["tool_result"]
        for e in lines(response)
        if "tool_result" in e.get("context", {})
    ]


def test_the_model_fills_only_query_and_top_k() -> None:
    assert search_documents.context_parameter == "request"
    parameters = search_documents.parameters
    assert set(parameters["properties"]) == {"query", "top_k"}
    assert parameters["required"] == ["query"]
    assert parameters["properties"]["top_k"] == {
        "default": 5,
        "description": "how many passages to return, best first.",
        "maximum": 20,
        "minimum": 1,
        "type": "integer",
    }
    assert "search_documents" in builtin_registry()
    assert "search_documents" not in builtin_registry().without(["search_documents"])


@pytest.mark.anyio
async def test_without_a_request_or_without_retrieval_it_is_a_tool_error() -> None:
    runner = ToolRunner(ToolRegistry([search_documents]), timeout=5)
    call = ToolCall(id="call_1", name="search_documents", arguments=ARGUMENTS)
    [outside] = await runner.run_all([call])
    with using_tool_context(ToolContext(Caller("k1"), documents=None)):
        [off] = await runner.run_all([call])
    assert outside.error is not None and outside.error.code == "tool_error"
    assert off.error is not None and off.error.message == "document search is not available"


def test_the_tool_searches_the_callers_documents_only(database_url: str) -> None:
    """The model asks, the server searches with the caller's key, the result goes back upstream."""
    key_a, key_b = add_key(database_url, "a").key, add_key(database_url, "b").key
    ask = tool_call_chunks(("call_1", "search_documents", ARGUMENTS))
    chat = Upstream([chunks_reply(ask), chunks_reply(openai_stream("Three [1]."))])
    upstream = EmbeddingUpstream(chat=chat)
    settings = rag_settings(
        database_url, auth_mode="api-key", chunk_tokens=40, chunk_overlap_tokens=0
    )
    with TestClient(create_app(settings, transport=upstream.transport)) as api:
        for key, title, text in ((key_a, "Animals", ANIMALS), (key_b, "Theirs", THEIRS)):
            created = api.post(
                "/documents", json={"title": title, "text": text}, headers=bearer(key)
            )
            assert created.status_code == 201, created.text
        offered = None
        found: dict[str, list[dict[str, Any]]] = {}
        for name, key in (("a", key_a), ("b", key_b)):
            chat.requests.clear()
            response = api.post("/chat/stream", json=REQUEST, headers=bearer(key))
            assert response.status_code == 200, response.text
            [result] = tool_results(response)
            assert result["id"] == "call_1" and "error" not in result
            found[name] = json.loads(result["content"])
            sent = json.loads(chat.requests[-1].content)["messages"]
            assert sent[-1] == {
                "role": "tool",
                "tool_call_id": "call_1",
                "content": result["content"],
            }
            offered = json.loads(chat.requests[0].content)["tools"]
    assert "search_documents" in [t["function"]["name"] for t in offered or []]
    assert [r["id"] for r in found["a"]] == list(range(1, len(found["a"]) + 1))
    assert {r["title"] for r in found["a"]} == {"Animals"}
    assert "three hearts" in found["a"][0]["text"]
    assert set(found["a"][0]) == {"id", "title", "source", "text"}
    assert [r["title"] for r in found["b"]] == ["Theirs"]
    assert "branchial" in found["b"][0]["text"]


# -- real servers: uvicorn in front of the fake upstream, the embedded embedder -----------------
@pytest.fixture(scope="module")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "models"


def test_a_scripted_search_documents_call_through_real_servers(
    database_url: str, fake_upstream: FakeUpstream, model_cache: Path
) -> None:
    key_a, key_b = add_key(database_url, "a").key, add_key(database_url, "b").key
    fake_upstream.configure(tool_calls="search_documents", tool_arguments=ARGUMENTS, tokens=3)
    settings = load_settings(
        chat_provider="compatible",
        chat_base_url=fake_upstream.base_url,
        chat_model="fake-model",
        database_url=database_url,
        auth_mode="api-key",
        model_cache_dir=model_cache,
        chunk_tokens=40,
        chunk_overlap_tokens=0,
    )
    with serve(create_app(settings)) as url, httpx2.Client(base_url=url, timeout=60) as client:
        for key, title, text in ((key_a, "Animals", ANIMALS), (key_b, "Theirs", THEIRS)):
            body = {"title": title, "text": text, "source": f"{title.lower()}.md"}
            assert client.post("/documents", json=body, headers=bearer(key)).status_code == 201
        mine = client.post("/chat/stream", json=REQUEST, headers=bearer(key_a))
        whole = client.post("/chat", json=REQUEST, headers=bearer(key_b))
    assert mine.status_code == 200 and whole.status_code == 200
    [result] = tool_results(mine)
    assert result["name"] == "search_documents"
    passages = json.loads(result["content"])
    assert "three hearts" in passages[0]["text"]
    assert passages[0]["source"] == "animals.md"
    assert {p["title"] for p in passages} == {"Animals"}
    # the fake's answer quotes the result it was sent: the passages reached the model
    text = "".join(line["delta"].get("content", "") for line in lines(mine))
    assert text.startswith(f"Results: {result['content']}.")
    [call] = whole.json()["context"]["tool_calls"]
    assert {p["title"] for p in json.loads(call["content"])} == {"Theirs"}
