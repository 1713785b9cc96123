"""Where a stored conversation's turn spends the worker's CPU: deterministic, in-process figures.

The app's lifespan builds its services as ``make run`` does (the database migrated, the fake
upstream as the provider, in a process of its own, answering at once: no time to first token,
no gap between its 50 tokens), and this script drives answers straight through them, without
HTTP (whose cost is the same on both routes): ``ConversationChat.start`` on conversations seeded
with 20 stored turns as ``make bench-history`` seeds them, then the stateless route's
``answer_for`` on the same request, each answer read to its end and closed (its completion
hooks run: the answer is stored).

It reports this process's CPU time per turn (``time.process_time``: the fake upstream and
PostgreSQL run in processes of their own; SQLite runs on the event loop's thread, so it is
counted) for each route, the difference, and a cProfile of another pass, timed in CPU time too
(profiling slows everything down: its times are for the ranking). ``--concurrency`` answers run
at once; each concurrent user has its own conversations, turn after turn, as the bench's are.

    PYTHONPATH=src:. python -m loadtests.profile_history --databases sqlite,postgresql
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import io
import json
import logging
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from chatbackend.access.caller import ANONYMOUS
from chatbackend.app import create_app
from chatbackend.chat import Answer, ChatService
from chatbackend.context.tokens import counter_for
from chatbackend.conversations.repository import ConversationRepository
from chatbackend.conversations.turns import ConversationChat
from chatbackend.protocol import ChatRequest
from chatbackend.retrieval.grounding import answer_for
from chatbackend.settings import load_settings
from loadtests.bench import BODY, CLIENT_CPU, process
from loadtests.bench_history import QUESTION, STORED_ANSWER, STORED_TURNS, _seed, databases

TOKENS = 50  # the latency profile's answer length, as in make bench-history
# "resent": the stateless route sent the whole conversation by the client, as the history route
# sends it upstream (20 stored turns, then the question): what the longer prompt costs by itself.
MODES = ("stateless", "resent", "history")


async def _read(answer: Answer) -> None:
    async with answer:
        async for _ in answer:
            pass


class Driver:
    """Both routes' answers on the services of one running app."""

    def __init__(self, state: dict[str, Any], conversations: list[str]) -> None:
        service: ChatService = state["service"]
        self.service = service
        self.documents = state["documents"]
        # As the route's dependency builds it (the process's message costs, where they exist:
        # the script also measures the code before they did).
        extra = {"costs": state["message_costs"]} if "message_costs" in state else {}
        self.chat = ConversationChat(
            ConversationRepository(state["database"]),
            service,
            state["leases"],
            count=counter_for(service.provider),
            documents=self.documents,
            **extra,
        )
        self.conversations = conversations
        self.body = ChatRequest.model_validate(BODY)
        turn = [
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": STORED_ANSWER},
        ]
        self.resent_body = ChatRequest.model_validate(
            {"messages": turn * STORED_TURNS + list(BODY["messages"])}  # type: ignore[call-overload]
        )

    async def stateless(self, _: int) -> None:
        answer = await answer_for(self.service, self.documents, ANONYMOUS, self.body, whole=False)
        await _read(answer)

    async def resent(self, _: int) -> None:
        body = self.resent_body
        answer = await answer_for(self.service, self.documents, ANONYMOUS, body, whole=False)
        await _read(answer)

    async def history(self, turn: int) -> None:
        conversation = self.conversations[turn % len(self.conversations)]
        answer = await self.chat.start(ANONYMOUS, conversation, self.body)
        await _read(answer)
        assert answer.outcome is not None and answer.outcome.ending == "complete"


async def _run(turn: Callable[[int], Awaitable[None]], turns: int, concurrency: int) -> None:
    """``turns`` turns, ``concurrency`` at a time; user ``u`` runs turns u, u+c, u+2c, ..."""

    async def user(first: int) -> None:
        for number in range(first, turns, concurrency):
            await turn(number)

    await asyncio.gather(*(user(u) for u in range(concurrency)))


def _cpu_per_turn(turns: int) -> Callable[[float], float]:
    return lambda seconds: round(seconds / turns * 1e6, 1)


def _profile_text(profile: cProfile.Profile, top: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


@contextlib.asynccontextmanager
async def running_app(upstream: str, database_url: str) -> AsyncIterator[dict[str, Any]]:
    settings = load_settings(
        chat_provider="compatible",
        chat_base_url=f"{upstream}/v1",
        chat_model="fake-model",
        database_url=database_url,
        log_level="WARNING",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app) as state:
        yield dict(state)


async def measure(
    upstream: str,
    database_url: str,
    *,
    turns: int,
    concurrency: int,
    conversations: int,
    repeats: int,
    top: int,
    profile: bool,
) -> dict[str, Any]:
    # Each concurrent user keeps to its own conversations (turn u, u+c, ...): no 409s.
    count = max(conversations, concurrency)
    count -= count % concurrency
    # Every pass adds one turn per `count` turns to each conversation: seed enough for all.
    ids = await _seed(database_url, count * (2 + repeats), STORED_TURNS)
    batches = [ids[i * count : (i + 1) * count] for i in range(2 + repeats)]
    async with running_app(upstream, database_url) as state:
        driver = Driver(state, batches[0])
        # Warm up: o200k_base, statement caches, connections, the first turn's imports.
        await _run(driver.stateless, 2 * concurrency, concurrency)
        await _run(driver.history, 2 * concurrency, concurrency)
        per_turn = _cpu_per_turn(turns)
        figures: dict[str, list[float]] = {mode: [] for mode in MODES}
        for batch in batches[1 : 1 + repeats]:
            driver.conversations = batch
            for mode in MODES:
                gc.collect()
                started = time.process_time()
                await _run(getattr(driver, mode), turns, concurrency)
                figures[mode].append(per_turn(time.process_time() - started))
        profiles = {}
        driver.conversations = batches[-1]
        for mode in MODES if profile else ():
            profiler = cProfile.Profile(time.process_time_ns, 1e-9)
            gc.collect()
            profiler.enable()
            await _run(getattr(driver, mode), turns, concurrency)
            profiler.disable()
            profiles[mode] = _profile_text(profiler, top)
    medians = {mode: statistics.median(values) for mode, values in figures.items()}
    return {
        "cpu_us_per_turn": medians,
        "added_cpu_us_per_turn": round(medians["history"] - medians["stateless"], 1),
        # What storing adds beyond sending the longer prompt (the database, the budget).
        "added_over_resent_us_per_turn": round(medians["history"] - medians["resent"], 1),
        "passes": figures,
        "profiles": profiles,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--databases", type=lambda s: s.split(","), default=["sqlite"])
    parser.add_argument("--turns", type=int, default=300, help="turns per route and pass")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3, help="measured passes (median)")
    parser.add_argument("--top", type=int, default=25, help="functions per profile listing")
    parser.add_argument("--no-profile", action="store_true", help="only the CPU figures")
    parser.add_argument("--output", type=Path, help="write the figures (JSON) here")
    parser.add_argument("--upstream-port", type=int, default=18_930)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    upstream = f"http://127.0.0.1:{args.upstream_port}"
    results: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory(prefix="profile-history-") as scratch,
        databases(Path(scratch), args.databases) as urls,
        process(
            [
                sys.executable,
                "-m",
                "loadtests.fake_upstream",
                "--port",
                str(args.upstream_port),
                f"--tokens={TOKENS}",
                "--ttft=0",
                "--itl=0",
            ],
            env={},
            cpu=CLIENT_CPU,
            ready=f"{upstream}/_fake/stats",
        ),
    ):
        for name in args.databases:
            result = asyncio.run(
                measure(
                    upstream,
                    urls[name],
                    turns=args.turns,
                    concurrency=args.concurrency,
                    conversations=args.conversations,
                    repeats=args.repeats,
                    top=args.top,
                    profile=not args.no_profile,
                )
            )
            profiles = result.pop("profiles")
            if profiles:
                for mode in MODES:
                    print(f"==== {name} {mode}: cProfile of {args.turns} turns", flush=True)
                    print(profiles[mode], flush=True)
            results[name] = result
            print(f"{name}: {json.dumps(result)}", flush=True)
    summary = {
        name: {
            "stateless_cpu_us_per_turn": r["cpu_us_per_turn"]["stateless"],
            "resent_cpu_us_per_turn": r["cpu_us_per_turn"]["resent"],
            "history_cpu_us_per_turn": r["cpu_us_per_turn"]["history"],
            "added_cpu_us_per_turn": r["added_cpu_us_per_turn"],
            "added_over_resent_us_per_turn": r["added_over_resent_us_per_turn"],
        }
        for name, r in results.items()
    }
    report = {
        "turns": args.turns,
        "concurrency": args.concurrency,
        "tokens_per_answer": TOKENS,
        "stored_turns_at_start": STORED_TURNS,
        "python": sys.version.split()[0],
        "databases": summary,
    }
    print(json.dumps(report, indent=2))
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({**report, "passes": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
