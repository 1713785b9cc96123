"""/documents and /search on SQLite and PostgreSQL, with the remote embedder over a mock
transport (hashed bag-of-words vectors, see tests/embedding_upstream.py)."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from fastapi.testclient import TestClient

from chatbackend.access.caller import Caller, get_caller
from chatbackend.app import create_app
from chatbackend.retrieval.cli import reembed
from chatbackend.retrieval.vector_space import EmbeddingModelChanged
from chatbackend.settings import Settings, load_settings
from tests.conftest import OPENAI_KEY
from tests.embedding_upstream import EmbeddingUpstream

ANIMALS = """# Animals

## Octopus
An octopus has three hearts and blue blood rich in copper.

## Honeybee
Honeybees tell their hive where flowers are by performing a waggle dance.
"""
MULTILINGUAL = """# Greetings

## English
The library opens at nine in the morning and closes at six in the evening.

## Français
La bibliothèque municipale prête des livres, des disques et des partitions de musique.

## Deutsch
Die Straßenbahn fährt alle zehn Minuten vom Hauptbahnhof zum Flughafen.

## 日本語
東京の地下鉄は毎朝とても混雑しています。

## Русский
Московское метро славится красивыми станциями.
"""


def rag_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "openai_api_key": OPENAI_KEY,
        "embedding_model": "text-embedding-3-small",
        "embedding_dimensions": 64,
        "database_url": database_url,
        "chat_retry_backoff_seconds": 0.01,
        "chat_retry_attempts": 2,
        **overrides,
    }
    return load_settings(**values)


@contextmanager
def client(
    settings: Settings, upstream: EmbeddingUpstream | None = None, caller: Caller | None = None
) -> Iterator[TestClient]:
    upstream = upstream or EmbeddingUpstream()
    app = create_app(settings, transport=upstream.transport)
    if caller is not None:
        app.dependency_overrides[get_caller] = lambda: caller
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def upload(test_client: TestClient, title: str, text: str, **extra: Any) -> dict[str, Any]:
    response = test_client.post("/documents", json={"title": title, "text": text, **extra})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def test_upload_search_get_list_delete(database_url: str) -> None:
    with client(rag_settings(database_url)) as api:
        created = upload(api, "Animals", ANIMALS, source="animals.md", metadata={"k": 1})
        assert created["chunks"] >= 1 and created["title"] == "Animals"
        found = api.post("/search", json={"query": "how many hearts has an octopus"}).json()
        assert found["retrieval_ms"] >= 0
        top = found["results"][0]
        assert "three hearts" in top["text"]
        assert top["document_id"] == created["id"] and top["source"] == "animals.md"
        assert set(top) == {"document_id", "chunk_id", "title", "source", "text", "score"}
        document = api.get(f"/documents/{created['id']}").json()
        assert document["metadata"] == {"k": 1} and document["chunks"] == created["chunks"]
        assert api.delete(f"/documents/{created['id']}").status_code == 204
        assert api.get(f"/documents/{created['id']}").status_code == 404
        assert api.delete(f"/documents/{created['id']}").json()["error"]["code"] == "not_found"
        for mode in ("hybrid", "vector", "text"):
            again = api.post("/search", json={"query": "octopus hearts", "mode": mode})
            assert again.json()["results"] == []


def test_modes_and_top_k(database_url: str) -> None:
    sections = "\n\n".join(
        f"## Topic {i}\nWord{i} appears here with filler text." for i in range(12)
    )
    with client(rag_settings(database_url, chunk_tokens=40, chunk_overlap_tokens=0)) as api:
        assert upload(api, "Many", sections)["chunks"] == 12
        for mode in ("hybrid", "vector", "text"):
            body = {"query": "word7", "mode": mode, "top_k": 3}
            results = api.post("/search", json=body).json()["results"]
            assert "Word7" in results[0]["text"], mode
            assert len(results) <= 3
        for bad in ({"query": "x", "top_k": 0}, {"query": "x", "top_k": 51}, {"query": ""},
                    {"query": "x", "mode": "fuzzy"}):  # fmt: skip
            response = api.post("/search", json=bad)
            assert response.status_code == 422
            assert response.json()["error"]["code"] == "invalid_request"


def test_vectors_without_direction_match_nothing(database_url: str) -> None:
    """A text with no word embeds (here) as the zero vector, whose cosine distance is undefined:
    such a chunk or query finds nothing by vector, and the search still answers (it was a 500)."""
    with client(rag_settings(database_url)) as api:
        upload(api, "Marks", "!!! ??? ...")
        upload(api, "Animals", ANIMALS)
        for mode in ("hybrid", "vector", "text"):
            response = api.post("/search", json={"query": "¿?", "mode": mode})
            assert (response.status_code, response.json()["results"]) == (200, []), mode
            found = api.post("/search", json={"query": "octopus hearts", "mode": mode}).json()
            assert [hit["title"] for hit in found["results"]][:1] == ["Animals"], mode
            assert all(hit["title"] != "Marks" for hit in found["results"]), mode


def test_pagination_is_newest_first_and_stable(database_url: str) -> None:
    with client(rag_settings(database_url)) as api:
        ids = [upload(api, f"doc {i}", f"text number {i}")["id"] for i in range(5)]
        first = api.get("/documents", params={"limit": 2}).json()
        assert [d["id"] for d in first["data"]] == ids[::-1][:2]
        upload(api, "later", "added while paging")
        second = api.get("/documents", params={"limit": 2, "cursor": first["next_cursor"]}).json()
        third = api.get("/documents", params={"limit": 2, "cursor": second["next_cursor"]}).json()
        seen = [d["id"] for page in (first, second, third) for d in page["data"]]
        assert seen == ids[::-1] and third["next_cursor"] is None
        bad = api.get("/documents", params={"cursor": "not-a-cursor"})
        assert bad.status_code == 422


@pytest.mark.parametrize(
    ("filename", "content_type", "body", "expected"),
    [
        ("notes.md", "text/markdown", ANIMALS, "three hearts"),
        ("page.html", "text/html",
         "<html><head><title>Bees</title><script>x()</script></head><body><h1>Bees</h1>"
         "<p>Honeybees perform a <b>waggle dance</b>.</p></body></html>", "waggle dance"),
        ("plain.txt", "text/plain", "Plain words about copper blood.", "copper blood"),
    ],
)  # fmt: skip
def test_multipart_upload(
    database_url: str, filename: str, content_type: str, body: str, expected: str
) -> None:
    with client(rag_settings(database_url)) as api:
        response = api.post(
            "/documents",
            files={"file": (filename, body.encode(), content_type)},
            data={"source": "upload", "metadata": json.dumps({"lang": "en"})},
        )
        assert response.status_code == 201, response.text
        hit = api.post("/search", json={"query": expected}).json()["results"][0]
        assert expected in hit["text"] and "x()" not in hit["text"]
        if filename == "page.html":
            assert hit["title"] == "Bees"


def test_unsupported_types_are_415(database_url: str) -> None:
    with client(rag_settings(database_url)) as api:
        pdf = api.post("/documents", files={"file": ("paper.pdf", b"%PDF-1.7", "application/pdf")})
        assert pdf.status_code == 415
        assert pdf.json()["error"]["code"] == "unsupported_media_type"
        binary = api.post("/documents", files={"file": ("x.txt", b"\xff\xfe\x00bin", "text/plain")})
        assert binary.status_code == 415
        xml = api.post("/documents", content=b"<a/>", headers={"content-type": "application/xml"})
        assert xml.status_code == 415
        assert api.get("/documents").json()["data"] == []


def test_oversized_documents_are_413(database_url: str) -> None:
    with client(rag_settings(database_url, documents_max_bytes=1000)) as api:
        big = api.post("/documents", files={"file": ("big.txt", b"a " * 501, "text/plain")})
        assert big.status_code == 413 and big.json()["error"]["code"] == "body_too_large"
        as_json = api.post("/documents", json={"title": "t", "text": "b" * 1001})
        assert as_json.status_code == 413
        huge = api.post("/documents", json={"title": "t", "text": "c" * 100_000})
        assert huge.status_code == 413
        assert api.get("/documents").json()["data"] == []


def test_an_empty_document_is_refused(database_url: str) -> None:
    with client(rag_settings(database_url)) as api:
        # As JSON, the documented pattern of ``text`` refuses it before the route runs.
        empty = api.post("/documents", json={"title": "t", "text": "  \n\n  "})
        error = empty.json()["error"]
        assert (empty.status_code, error["code"]) == (422, "invalid_request")
        assert error["message"].startswith("text: ")
        html = api.post(
            "/documents", files={"file": ("e.html", b"<script>1</script>", "text/html")}
        )
        assert html.status_code == 422


def test_a_failing_embedder_stores_nothing(database_url: str) -> None:
    failing = EmbeddingUpstream(
        failures=[httpx2.Response(500, json={"error": {"message": "down"}})] * 2
    )
    with client(rag_settings(database_url), failing) as api:
        response = api.post("/documents", json={"title": "t", "text": ANIMALS})
        assert response.status_code == 502
        assert response.json()["error"]["code"] == "upstream_error"
        assert len(failing.requests) == 2  # retried once, within the budget
        assert api.get("/documents").json()["data"] == []
        # the embedder is back: the same upload now works, and only its chunks are there
        upload(api, "t", ANIMALS)
        assert len(api.get("/documents").json()["data"]) == 1


def test_a_document_in_several_languages(database_url: str) -> None:
    with client(rag_settings(database_url, chunk_tokens=40, chunk_overlap_tokens=0)) as api:
        assert upload(api, "Greetings", MULTILINGUAL)["chunks"] >= 4
        for query, expected in [
            ("bibliothèque partitions", "partitions de musique"),
            ("Straßenbahn Flughafen", "Hauptbahnhof"),
            ("Московское метро", "красивыми"),
            ("library opens", "nine in the morning"),
        ]:
            for mode in ("hybrid", "text"):
                top = api.post("/search", json={"query": query, "mode": mode}).json()["results"]
                assert expected in top[0]["text"], (query, mode)


def test_documents_belong_to_their_caller(database_url: str) -> None:
    settings = rag_settings(database_url)
    with client(settings, caller=Caller("key-a")) as api:
        mine = upload(api, "A's", ANIMALS)
    with client(settings, caller=Caller("key-b")) as api:
        assert api.get(f"/documents/{mine['id']}").status_code == 404
        assert api.delete(f"/documents/{mine['id']}").status_code == 404
        assert api.get("/documents").json()["data"] == []
        for mode in ("hybrid", "vector", "text"):
            hits = api.post("/search", json={"query": "octopus hearts", "mode": mode}).json()
            assert hits["results"] == [], mode
    with client(settings) as api:  # the anonymous caller owns only unowned rows
        assert api.get("/documents").json()["data"] == []
    with client(settings, caller=Caller("key-a")) as api:
        assert api.post("/search", json={"query": "octopus"}).json()["results"]


def test_bad_ids_are_422_or_404(database_url: str) -> None:
    with client(rag_settings(database_url)) as api:
        assert api.get("/documents/not-a-uuid").status_code == 422
        unknown = api.get("/documents/00000000-0000-4000-8000-000000000000")
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"


def test_a_changed_embedding_model_is_refused_until_reembed(
    database_url: str, tmp_path: Path
) -> None:
    old = rag_settings(database_url)
    with client(old) as api:
        upload(api, "Animals", ANIMALS)
    new = rag_settings(
        database_url, embedding_model="text-embedding-3-large", embedding_dimensions=32
    )
    with pytest.raises(EmbeddingModelChanged) as refused:
        with client(new, EmbeddingUpstream(dimensions=32)):
            pass
    message = str(refused.value)
    assert "\n" not in message and "`python -m chatbackend reembed`" in message
    assert "text-embedding-3-small (64 dimensions)" in message

    env = {
        **{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "PYTHONPATH")},
        "OPENAI_API_KEY": OPENAI_KEY,
        "EMBEDDING_MODEL": "text-embedding-3-large",
        "EMBEDDING_DIMENSIONS": "32",
        "DATABASE_URL": database_url,
    }
    server = subprocess.run(
        [sys.executable, "-m", "chatbackend", "--port", "1"],
        env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert server.returncode == 2
    assert server.stderr.strip().splitlines() == [f"chatbackend: {message}"]

    upstream = EmbeddingUpstream(dimensions=32)
    assert anyio.run(functools.partial(reembed, new, transport=upstream.transport)) == 0
    with client(new, upstream) as api:
        hits = api.post("/search", json={"query": "octopus hearts", "mode": "vector"}).json()
        assert "three hearts" in hits["results"][0]["text"]
