"""Retrieval quality with the embedded embedder on a self-written corpus (tests/retrieval_corpus):
200 sections of ten Markdown files, 40 direct questions and 40 paraphrases that share no content
word with the section that answers them (checked below), so keyword search scores about 0 on
those and they measure the embedder. Recall@k: the answering section is among the first k hits.

The figures are printed (``pytest -s``) and quoted in the README.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from chatbackend.app import create_app
from chatbackend.retrieval.search_sql import query_words
from chatbackend.settings import load_settings

CORPUS = Path(__file__).parent / "retrieval_corpus"
MODES = ("hybrid", "vector", "text")


def _stems(text: str) -> set[str]:
    return {w[:5] for w in query_words(text)}


def _sections() -> dict[str, str]:
    sections: dict[str, str] = {}
    for path in sorted(CORPUS.glob("*.md")):
        for block in re.split(r"^## ", path.read_text(), flags=re.MULTILINE)[1:]:
            heading, _, body = block.partition("\n")
            sections[heading.strip()] = body
    return sections


def _questions() -> list[dict[str, str]]:
    return json.loads((CORPUS / "questions.json").read_text())  # type: ignore[no-any-return]


def test_the_paraphrases_share_no_content_word_with_their_answer() -> None:
    sections = _sections()
    questions = _questions()
    assert len(sections) == 200 and len(questions) == 40
    for q in questions:
        answer = q["section"] + " " + sections[q["section"]]
        assert not _stems(q["paraphrase"]) & _stems(answer), q["paraphrase"]
        assert _stems(q["direct"]) & _stems(answer), q["direct"]


def _recall(api: TestClient, questions: list[dict[str, str]], key: str) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for mode in MODES:
        ranks = []
        for q in questions:
            body = {"query": q[key], "mode": mode, "top_k": 5}
            results = api.post("/search", json=body).json()["results"]
            texts = [r["text"] for r in results]
            marker = f"## {q['section']}\n"
            ranks.append(next((i for i, t in enumerate(texts) if marker in t), None))
        figures[mode] = {
            "recall@1": sum(r == 0 for r in ranks) / len(ranks),
            "recall@5": sum(r is not None for r in ranks) / len(ranks),
        }
    return figures


def test_recall_of_the_embedded_embedder(database_url: str, tmp_path: Path) -> None:
    settings = load_settings(
        database_url=database_url,
        chunk_tokens=100,
        chunk_overlap_tokens=20,
        model_cache_dir=tmp_path.parent.parent / "models",
    )
    with TestClient(create_app(settings)) as api:
        chunks = 0
        for path in sorted(CORPUS.glob("*.md")):
            files = {"file": (path.name, path.read_bytes(), "text/markdown")}
            response = api.post("/documents", files=files)
            assert response.status_code == 201, response.text
            chunks += response.json()["chunks"]
        assert chunks >= 200
        questions = _questions()
        direct = _recall(api, questions, "direct")
        paraphrased = _recall(api, questions, "paraphrase")
    print(json.dumps({"chunks": chunks, "direct": direct, "paraphrased": paraphrased}, indent=1))  # noqa: T201
    assert direct["hybrid"]["recall@5"] >= 0.9
    assert paraphrased["hybrid"]["recall@5"] >= 0.75
    assert paraphrased["text"]["recall@5"] <= 0.1
    for figures in (direct, paraphrased):
        assert figures["hybrid"]["recall@5"] >= figures["vector"]["recall@5"]
        assert figures["hybrid"]["recall@5"] >= figures["text"]["recall@5"]
