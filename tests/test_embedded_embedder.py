"""The embedded embedder: all-MiniLM-L6-v2 from its PyPI package, rewritten as GGUF once, run by
llama.cpp in-process (no network, no torch)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from chatbackend.retrieval import minilm_gguf
from chatbackend.retrieval.embedded import DIMENSIONS, MODEL, WINDOW_TOKENS, EmbeddedEmbedder

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


async def test_vectors_are_unit_length_and_place_meaning_together(model_dir: Path) -> None:
    embedder = EmbeddedEmbedder(cache_dir=model_dir, threads=2)
    try:
        cat, kitten, tax = await embedder.embed(
            [
                "A cat is sleeping on the sofa.",
                "A small kitten naps on the couch.",
                "Quarterly corporate tax filings are due in April.",
            ]
        )
    finally:
        await embedder.aclose()
    assert embedder.model == MODEL and len(cat) == DIMENSIONS
    assert all(
        math.isclose(math.sqrt(sum(v * v for v in x)), 1.0, rel_tol=1e-4) for x in (cat, tax)
    )
    assert cosine(cat, kitten) > 0.6 > cosine(cat, tax) + 0.3


async def test_a_text_longer_than_the_window_is_embedded_whole(model_dir: Path) -> None:
    embedder = EmbeddedEmbedder(cache_dir=model_dir, threads=2)
    head = "The octopus has three hearts and blue blood. " * 30
    tail = "Volcanoes erupt when magma rises through the crust. " * 30
    try:
        await embedder.load()
        assert embedder.count_tokens(head + tail) > 2 * WINDOW_TOKENS
        whole, first, second = await embedder.embed([head + tail, head, tail])
    finally:
        await embedder.aclose()
    # the end of the text counts: the vector lies between its two halves'
    assert cosine(whole, second) > 0.5 and cosine(whole, first) > 0.5


def test_the_conversion_is_done_once(model_dir: Path) -> None:
    path = minilm_gguf.gguf_path(model_dir)
    before = path.stat().st_mtime_ns
    assert minilm_gguf.gguf_path(model_dir) == path and path.stat().st_mtime_ns == before
    assert path.read_bytes()[:4] == b"GGUF"
    assert not list(model_dir.glob("*.tmp"))
