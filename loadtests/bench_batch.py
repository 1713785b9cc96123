"""``make bench-batch``: how close a batch comes to its ideal time.

The backend runs as in production (gunicorn, one worker pinned to CPU 0) in front of the fake
upstream, paced like a real model (TTFT 200 ms, 20 ms per token, 20 tokens). One answer's time is
measured alone (the median of a few ``/chat`` requests); then one ``POST /batch`` of 100 items.
With ``BATCH_CONCURRENCY`` items at a time, the ideal is ``ceil(100 / BATCH_CONCURRENCY)``
answer times back to back; the report gives the batch's time over that ideal (target: at most
1.2). Each of ``--runs`` batches is measured on the same server; the figure is their median.
"""

from __future__ import annotations

import argparse
import json
import math
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2

from loadtests.bench import (
    BACKEND_CPU,
    CLIENT_CPU,
    ROOT,
    backend_command,
    backend_environment,
    machine,
    process,
)

PACING = {"ttft": 0.2, "itl": 0.02, "tokens": 20}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def body(index: int) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": f"Question number {index}"}]}


def answer_time(client: httpx2.Client, samples: int) -> float:
    times = []
    for index in range(samples):
        started = time.perf_counter()
        response = client.post("/chat", json=body(index))
        response.raise_for_status()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def batch_time(client: httpx2.Client, items: int) -> tuple[float, int]:
    payload = {"items": [{"id": str(i), **body(i)} for i in range(items)]}
    started = time.perf_counter()
    response = client.post("/batch", json=payload)
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    failed = sum("error" in result for result in response.json()["items"])
    return elapsed, failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8, help="BATCH_CONCURRENCY")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=5, help="single answers timed")
    parser.add_argument("--output", type=Path, default=ROOT / "bench-results" / "batch.json")
    args = parser.parse_args()
    upstream_port, backend_port = free_port(), free_port()
    upstream = f"http://127.0.0.1:{upstream_port}"
    backend = f"http://127.0.0.1:{backend_port}"
    upstream_command = [sys.executable, "-m", "loadtests.fake_upstream", "--port"]
    upstream_command += [str(upstream_port), *(f"--{k}={v}" for k, v in PACING.items())]
    with (
        tempfile.TemporaryDirectory() as scratch,
        process(upstream_command, env={}, cpu=CLIENT_CPU, ready=f"{upstream}/_fake/stats"),
    ):
        env = {
            **backend_environment(upstream, backend_port),
            "DATABASE_URL": f"sqlite+aiosqlite:///{scratch}/bench.db",
            "BATCH_CONCURRENCY": str(args.concurrency),
        }
        ready = f"{backend}/health/ready"
        with (
            process(backend_command(), env=env, cpu=BACKEND_CPU, ready=ready),
            httpx2.Client(base_url=backend, timeout=600) as client,
        ):
            single = answer_time(client, args.samples)
            runs = [batch_time(client, args.items) for _ in range(args.runs)]
            stats = client.get(f"{upstream}/_fake/stats").json()
    ideal = math.ceil(args.items / args.concurrency) * single
    totals = [total for total, _ in runs]
    median = statistics.median(totals)
    results = {
        "items": args.items,
        "batch_concurrency": args.concurrency,
        "pacing": PACING,
        "answer_seconds": round(single, 4),
        "ideal_seconds": round(ideal, 3),
        "batch_seconds": [round(total, 3) for total in totals],
        "batch_seconds_median": round(median, 3),
        "ratio_to_ideal": round(median / ideal, 3),
        "target_ratio": 1.2,
        "failed_items": [failed for _, failed in runs],
        "upstream_max_in_flight": stats["max_in_flight"],
        "machine": machine(),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
