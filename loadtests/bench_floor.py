"""``make bench-floor``: chatbackend against the floor of this machine, in one sitting.

A figure such as "µs of worker CPU per chunk" depends on the machine as much as on the code:
the same commit measured 62 µs on one day's VM and 99 µs on another's. So this bench serves,
with the production command (gunicorn, ``gunicorn.conf.py``, the same worker class, one worker
pinned to CPU 0), three applications in turn on the same fake upstream:

- ``raw``: ``loadtests.floor.raw``, a bare aiohttp proxy (no framework, no SDK);
- ``sdk``: ``loadtests.floor.sdk``, the same through the openai SDK's ``post``;
- ``chatbackend``: ``chatbackend.asgi:app``, the real thing.

For each it measures, ``--runs`` times, interleaved (raw, sdk, chatbackend, raw, ...) so a slow
minute of the VM hits all three alike:

- the latency profile (TTFT 200 ms, 20 ms between tokens, 50 tokens) at 50, 200 and 500
  streams: added TTFT p50/p99 over the upstream driven directly, chunk rate, worker CPU per
  chunk;
- the cpu profile (no pacing, 200 tokens) at 50 streams: worker CPU per upstream token;
- one-token answers at 50 streams: worker CPU per request (the fixed cost of an answer).

Writes ``bench-results/floor.json`` and ``floor.md``: medians over the runs with (min–max).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from loadtests.bench import (
    BACKEND_CPU,
    CLIENT_CPU,
    PROFILES,
    ROOT,
    Run,
    backend_command,
    backend_environment,
    measure,
    process,
    use_uvloop,
    worker_process,
)
from loadtests.bench_repeat import cell, spread

APPS = {
    "raw": "loadtests.floor:raw",
    "sdk": "loadtests.floor:sdk",
    "chatbackend": "chatbackend.asgi:app",
}
# One-token answers: what an answer costs besides its chunks. Registered beside bench's own.
PROFILES["one-token"] = {"ttft": 0.2, "itl": 0.0, "tokens": 1}
CASES = (
    ("latency", 50),
    ("latency", 200),
    ("latency", 500),
    ("cpu", 50),
    ("one-token", 50),
)


async def one_app(
    app: str, upstream: str, backend: str, pid: int, duration: float
) -> list[dict[str, Any]]:
    worker = worker_process(pid)
    rows = []
    for profile, streams in CASES:
        direct = await measure(
            Run(profile, "direct", streams),
            upstream=upstream,
            backend=None,
            worker=None,
            duration=duration,
        )
        through = await measure(
            Run(profile, app, streams),
            upstream=upstream,
            backend=backend,
            worker=worker,
            duration=duration,
        )
        d, t = direct.summary(), through.summary()
        # Every answer the upstream served, warm-up included, as the CPU seconds are.
        answers = through.upstream_chunks / PROFILES[profile]["tokens"]
        row = {
            "app": app,
            "profile": profile,
            "streams": streams,
            "added_ttft_p50_ms": _minus(t["ttft_p50_ms"], d["ttft_p50_ms"]),
            "added_ttft_p99_ms": _minus(t["ttft_p99_ms"], d["ttft_p99_ms"]),
            "chunks_per_s_fraction_of_direct": round(t["chunks_per_s"] / d["chunks_per_s"], 3)
            if d["chunks_per_s"]
            else None,
            "worker_cpu_us_per_chunk": t.get("server_cpu_us_per_chunk"),
            "worker_cpu_ms_per_answer": round(
                1000 * (through.server_cpu_seconds or 0.0) / answers, 3
            )
            if answers
            else None,
            "errors": sum(t["errors"].values()),
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 2)


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    figures = (
        "added_ttft_p50_ms",
        "added_ttft_p99_ms",
        "chunks_per_s_fraction_of_direct",
        "worker_cpu_us_per_chunk",
        "worker_cpu_ms_per_answer",
        "errors",
    )
    table = []
    for profile, streams in CASES:
        for app in APPS:
            mine = [
                r for r in rows if (r["app"], r["profile"], r["streams"]) == (app, profile, streams)
            ]
            entry: dict[str, Any] = {"app": app, "profile": profile, "streams": streams}
            for name in figures:
                values = [float(r[name]) for r in mine if r[name] is not None]
                entry[name] = spread(values)
            table.append(entry)
    return table


def markdown(table: list[dict[str, Any]], runs: int) -> str:
    lines = [
        f"Medians of {runs} interleaved runs, (min–max); `python -m loadtests.bench_floor "
        f"--runs {runs}`. One gunicorn worker (production command) on CPU 0.",
        "",
        "| profile, streams | app | added TTFT p50 ms | added TTFT p99 ms | chunks/s vs direct "
        "| worker CPU µs/chunk | worker CPU ms/answer | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for e in table:
        lines.append(
            f"| {e['profile']}, {e['streams']} | {e['app']} | {cell(e['added_ttft_p50_ms'])} "
            f"| {cell(e['added_ttft_p99_ms'])} | {cell(e['chunks_per_s_fraction_of_direct'])} "
            f"| {cell(e['worker_cpu_us_per_chunk'])} | {cell(e['worker_cpu_ms_per_answer'])} "
            f"| {cell(e['errors'])} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per measurement")
    parser.add_argument("--output", type=Path, default=ROOT / "bench-results" / "floor.json")
    parser.add_argument("--upstream-port", type=int, default=18_910)
    parser.add_argument("--backend-port", type=int, default=18_911)
    args = parser.parse_args()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    upstream = f"http://127.0.0.1:{args.upstream_port}"
    backend = f"http://127.0.0.1:{args.backend_port}"
    use_uvloop()
    rows: list[dict[str, Any]] = []
    upstream_command = [sys.executable, "-m", "loadtests.fake_upstream"]
    upstream_command += ["--port", str(args.upstream_port)]
    with process(upstream_command, env={}, cpu=CLIENT_CPU, ready=f"{upstream}/_fake/stats"):
        for run in range(1, args.runs + 1):
            for app, target in APPS.items():
                print(f"# run {run}: {app}", flush=True)
                command = [*backend_command(), target]
                environment = backend_environment(upstream, args.backend_port)
                with process(
                    command, env=environment, cpu=BACKEND_CPU, ready=f"{backend}/health/ready"
                ) as pid:
                    rows += asyncio.run(one_app(app, upstream, backend, pid, args.duration))
    table = summarise(rows)
    args.output.write_text(json.dumps({"runs": rows, "summary": table}, indent=2) + "\n")
    report = markdown(table, args.runs)
    args.output.with_suffix(".md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
