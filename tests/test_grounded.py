"""Grounded answers: /chat and /chat/stream with context.overrides.retrieval, on both databases.
The chat upstream and the embeddings endpoint are both mocked at the HTTP transport."""

from __future__ import annotations

import json
from typing import Any

from tests.embedding_upstream import EmbeddingUpstream
from tests.test_documents import ANIMALS, client, rag_settings, upload
from tests.upstream import Upstream, chunks_reply, openai_stream

QUESTION = {"role": "user", "content": "How many hearts does an octopus have?"}


def grounded(**retrieval: Any) -> dict[str, Any]:
    return {"messages": [QUESTION], "context": {"overrides": {"retrieval": retrieval}}}


def test_grounded_stream_sends_the_sources_first(database_url: str) -> None:
    chat = Upstream([chunks_reply(openai_stream("Three", " hearts [1]."))])
    upstream = EmbeddingUpstream(chat=chat)
    with client(
        rag_settings(database_url, chunk_tokens=40, chunk_overlap_tokens=0), upstream
    ) as api:
        document = upload(api, "Animals", ANIMALS, source="animals.md")
        response = api.post("/chat/stream", json=grounded(top_k=2))
        lines = [json.loads(line) for line in response.text.splitlines()]
    first = lines[0]
    assert first["delta"] == {"role": "assistant"}
    points = first["context"]["data_points"]
    assert len(points) == 2 and "three hearts" in points[0]["text"]
    assert points[0]["title"] == "Animals" and points[0]["source"] == "animals.md"
    assert set(points[0]) == {"id", "title", "source", "text"}
    assert first["context"]["retrieval_ms"] >= 0
    assert "".join(line["delta"].get("content", "") for line in lines[1:]) == "Three hearts [1]."
    sent = chat.last_json()["messages"]
    assert sent[-1]["content"] == QUESTION["content"]
    system = next(m["content"] for m in sent if "Sources:" in m["content"])
    assert "[1] Animals" in system and "three hearts" in system
    assert document["id"]


def test_grounded_chat_returns_the_data_points(database_url: str) -> None:
    chat = Upstream([chunks_reply(openai_stream("Three."))])
    with client(rag_settings(database_url), EmbeddingUpstream(chat=chat)) as api:
        upload(api, "Animals", ANIMALS)
        body = api.post("/chat", json=grounded(mode="text")).json()
    assert body["message"]["content"] == "Three."
    assert "three hearts" in body["context"]["data_points"][0]["text"]


def test_a_plain_chat_sends_no_sources(database_url: str) -> None:
    chat = Upstream([chunks_reply(openai_stream("Hi."))])
    with client(rag_settings(database_url), EmbeddingUpstream(chat=chat)) as api:
        upload(api, "Animals", ANIMALS)
        first = json.loads(
            api.post("/chat/stream", json={"messages": [QUESTION]}).text.split("\n")[0]
        )
    assert "data_points" not in first.get("context", {})
    assert all("Sources:" not in m["content"] for m in chat.last_json()["messages"])


def test_a_bad_retrieval_override_is_422(database_url: str) -> None:
    with client(rag_settings(database_url)) as api:
        response = api.post("/chat", json=grounded(top_k=0))
    assert response.status_code == 422


def test_a_conversation_turn_is_grounded_and_stored(database_url: str) -> None:
    chat = Upstream(
        [chunks_reply(openai_stream("Three [1].")), chunks_reply(openai_stream("Blue [1]."))]
    )
    upstream = EmbeddingUpstream(chat=chat)
    with client(
        rag_settings(database_url, chunk_tokens=40, chunk_overlap_tokens=0), upstream
    ) as api:
        upload(api, "Animals", ANIMALS, source="animals.md")
        conversation = api.post("/conversations", json={}).json()["id"]
        response = api.post(f"/conversations/{conversation}/chat/stream", json=grounded(top_k=2))
        lines = [json.loads(line) for line in response.text.splitlines()]
        first_turn = chat.last_json()["messages"]
        follow_up = {"role": "user", "content": "And what colour is its blood?"}
        whole = api.post(
            f"/conversations/{conversation}/chat",
            json={"messages": [follow_up], "context": {"overrides": {"retrieval": {}}}},
        ).json()
        second_turn = chat.last_json()["messages"]
        stored = api.get(f"/conversations/{conversation}").json()["messages"]
    # The sources come first, before any token, as on /chat/stream.
    assert "three hearts" in lines[0]["context"]["data_points"][0]["text"]
    assert lines[-1]["context"]["conversation_id"] == conversation
    assert any("Sources:" in m["content"] for m in first_turn if m["role"] == "system")
    # The follow-up is searched with the conversation's last user messages, and answered whole.
    assert whole["context"]["data_points"] and whole["message"]["content"] == "Blue [1]."
    assert [m["content"] for m in second_turn if m["role"] == "user"] == [
        QUESTION["content"],
        follow_up["content"],
    ]
    # What is stored is the conversation, not the sources.
    assert [(m["role"], m["content"]) for m in stored] == [
        ("user", QUESTION["content"]),
        ("assistant", "Three [1]."),
        ("user", follow_up["content"]),
        ("assistant", "Blue [1]."),
    ]
