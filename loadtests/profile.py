"""``make profile``: where the backend worker's CPU goes while it streams, sampled with py-spy.

It starts the fake upstream and the backend exactly as ``make bench`` does, drives one profile
at one concurrency through the backend, and records the gunicorn worker with py-spy. The report
lists the top functions by own time and by inclusive time (the worker's main thread only), and
the raw samples are kept for a flame graph (``py-spy`` ``--format raw`` is speedscope/flamegraph
input).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import subprocess
import sys
import time
from pathlib import Path

from loadtests.bench import (
    BACKEND_CPU,
    BODY,
    CLIENT_CPU,
    PROFILES,
    ROOT,
    Run,
    backend_command,
    backend_environment,
    drive,
    process,
    use_uvloop,
    worker_process,
)


def top(raw: Path, *, limit: int) -> str:
    """Own and inclusive shares of the event loop thread's samples, highest first."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not any("asyncio_run" in frame or "Runner.run" in frame for frame in frames):
            continue  # worker threads of the thread pool, idle
        samples = int(count)
        total += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    lines = [f"samples on the event loop thread: {total}", "", "own time:"]
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in own.most_common(limit)]
    lines += ["", "inclusive time (below the server's own frames):"]
    skip = ("gunicorn", "runpy", "uvicorn_worker", "asyncio_run", "Runner.run", "<module>")
    shown = [(f, n) for f, n in inclusive.most_common() if not any(s in f for s in skip)]
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in shown[:limit]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--profile", choices=list(PROFILES), default="latency")
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--output", type=Path, default=ROOT / "bench-results" / "profile.txt")
    parser.add_argument("--upstream-port", type=int, default=18_902)
    parser.add_argument("--backend-port", type=int, default=18_903)
    args = parser.parse_args()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    raw = args.output.with_suffix(".raw")
    upstream = f"http://127.0.0.1:{args.upstream_port}"
    backend = f"http://127.0.0.1:{args.backend_port}"
    knobs = [f"--{name}={value}" for name, value in PROFILES[args.profile].items()]
    upstream_command = [sys.executable, "-m", "loadtests.fake_upstream"]
    upstream_command += ["--port", str(args.upstream_port), *knobs]
    with (
        process(upstream_command, env={}, cpu=CLIENT_CPU, ready=f"{upstream}/_fake/stats"),
        process(
            backend_command(),
            env=backend_environment(upstream, args.backend_port),
            cpu=BACKEND_CPU,
            ready=f"{backend}/health/ready",
        ) as pid,
    ):
        worker = worker_process(pid)
        spy = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(worker.pid),
                "--duration", str(int(args.seconds)), "--rate", "250", "--format", "raw",
                "--output", str(raw), "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(0.5)
        use_uvloop()
        run = Run(args.profile, "backend", args.concurrency)
        asyncio.run(drive(f"{backend}/chat/stream", BODY, run, args.seconds + 1, sse=False))
        spy.wait(30)
    report = f"{args.profile} profile, {args.concurrency} streams\n" + top(raw, limit=30)
    args.output.write_text(report)
    print(report)
    print(f"wrote {args.output} (raw samples: {raw})")


if __name__ == "__main__":
    main()
