"""``/search``'s cost in-process, without a server: ``DocumentService.search`` timed with
``time.perf_counter`` over the 80 quality questions, per mode, on a 10,000-chunk database built
the way ``bench_retrieval.py`` builds it (its functions: same texts, same precomputed vectors).

Two figures per mode: ``search`` embeds every query (the embedding cache off, as in the bench),
``database`` hands ``search`` the query's vector already made (an embedder that looks it up), so
it is the statement(s) plus the service's Python. ``vector_recall@5`` compares the vector mode's
five hits with the exact five nearest chunks (numpy over the stored vectors): what an
approximate index (HNSW, or a quantised scan) loses. A bounded loop; not a latency bench (no
server, no concurrency): a before/after for one machine.

    PYTHONPATH=src:. python -m loadtests.search_inprocess [--databases sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import text

from chatbackend.access.caller import ANONYMOUS
from chatbackend.retrieval.embedder import CachedEmbedder, Vector
from chatbackend.retrieval.factory import build_embedder
from chatbackend.retrieval.service import DocumentService
from chatbackend.store import open_database
from loadtests.bench_retrieval import (
    MODES,
    base_settings,
    corpus_texts,
    fresh_databases,
    percentile,
    precomputed_vectors,
    questions,
    store_corpus,
)
from loadtests.fake_upstream import FakeUpstream


class LookedUp:
    """An embedder whose vectors were made beforehand: the database's share alone."""

    def __init__(self, model: str, dimensions: int, vectors: dict[str, Vector]) -> None:
        self.model = model
        self.dimensions = dimensions
        self._vectors = vectors

    async def load(self) -> None:
        return None

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        return [self._vectors[t] for t in texts]

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    async def aclose(self) -> None:
        return None


async def timed(service: DocumentService, queries: list[str], passes: int) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for mode in MODES:
        times: list[float] = []
        for _ in range(passes):
            for query in queries:
                started = time.perf_counter()
                await service.search(ANONYMOUS, query, top_k=5, mode=mode)  # type: ignore[arg-type]
                times.append((time.perf_counter() - started) * 1000)
        figures[mode] = {
            "n": len(times),
            "p50_ms": round(percentile(times, 0.5), 2),
            "p99_ms": round(percentile(times, 0.99), 2),
        }
    return figures


async def recall(
    service: DocumentService, queries: list[str], by_query: dict[str, Vector], stored: np.ndarray
) -> float:
    """Mean overlap of the vector mode's top 5 with the exact top 5 (chunk ids 1..n in order)."""
    found = 0
    for query in queries:
        exact = np.argsort(-(stored @ np.asarray(by_query[query], dtype=np.float32)))[:5] + 1
        hits = (await service.search(ANONYMOUS, query, top_k=5, mode="vector")).hits
        found += len({h.chunk_id for h in hits} & {int(i) for i in exact})
    return round(found / (5 * len(queries)), 3)


async def settle(url: str) -> None:
    """PostgreSQL: ``VACUUM ANALYZE`` the loaded tables, as autovacuum soon would. Until then the
    planner has no statistics, and its plans (the owner index and a sort of every distance,
    100+ ms) would be measured for the first minute or so, before or after alike."""
    database = await open_database(url)
    try:
        if database.dialect == "postgresql":
            async with database.engine.connect() as connection:
                auto = await connection.execution_options(isolation_level="AUTOCOMMIT")
                await auto.execute(text("VACUUM ANALYZE"))
    finally:
        await database.aclose()


async def measure(url: str, embedder: CachedEmbedder, queries: list[str], args: Any) -> Any:
    by_query = dict(zip(queries, await embedder.inner.embed(queries), strict=True))
    await settle(url)
    database = await open_database(url)
    try:
        live = CachedEmbedder(embedder.inner, batch_size=16, cache_size=0)
        looked = CachedEmbedder(
            LookedUp(embedder.model, embedder.dimensions, by_query), batch_size=16, cache_size=0
        )
        service = DocumentService(database, live, chunk_tokens=400, overlap_tokens=60)
        offline = DocumentService(database, looked, chunk_tokens=400, overlap_tokens=60)
        for query in queries[:10]:  # warm-up: pages, prepared statements
            for mode in MODES:
                await service.search(ANONYMOUS, query, top_k=5, mode=mode)  # type: ignore[arg-type]
        stored = np.asarray(args.vectors, dtype=np.float32)
        return {
            "search": await timed(service, queries, args.passes),
            "database": await timed(offline, queries, args.passes),
            "vector_recall@5": await recall(offline, queries, by_query, stored),
        }
    finally:
        await database.aclose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--passes", type=int, default=3, help="passes over the 80 questions")
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    names = [n.strip() for n in args.databases.split(",") if n.strip()]
    queries = questions()
    report: dict[str, Any] = {"chunks": args.chunks, "queries_per_mode": len(queries) * args.passes}
    with FakeUpstream.running_in_thread() as upstream, tempfile.TemporaryDirectory() as tmp:
        embedder = build_embedder(base_settings(upstream))
        asyncio.run(embedder.load())
        texts = corpus_texts(args.chunks)
        args.vectors = asyncio.run(precomputed_vectors(embedder, args.chunks))
        with fresh_databases(Path(tmp), names) as fresh:
            for name in names:
                url = fresh(name, "bench")
                settings = base_settings(upstream, database_url=url)
                seconds = asyncio.run(store_corpus(settings, embedder, texts, args.vectors))
                print(f"{name}: stored {len(texts)} chunks in {seconds:.1f} s", file=sys.stderr)
                report[name] = asyncio.run(measure(url, embedder, queries, args))
                print(name, json.dumps(report[name]), file=sys.stderr)
        asyncio.run(embedder.aclose())
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
