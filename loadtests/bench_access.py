"""``make bench-access``: what API keys and rate limits add to time to first token.

The backend runs as in production (gunicorn, one worker pinned to CPU 0) in front of the fake
upstream; Redis (Debian's ``redis-server``), the upstream and this load client share CPU 1. Each
mode is measured at 200 closed-loop streams, three rounds interleaved (so drift in a shared
machine hits every mode alike); a mode's figure is the median of its three TTFT p50s, and its
overhead is that minus the median of ``off``.

Modes: ``off`` (no key, no limits), ``limits-memory`` and ``limits-redis`` (limits on, keys off),
``auth+limits-memory`` and ``auth+limits-redis`` (a key on every request, checked against the
SQLite key table, plus the limits). The limits are set far above what the run uses, so every
request pays for the counting and none is refused.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from loadtests.bench import (
    BACKEND_CPU,
    CLIENT_CPU,
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

MODES = ("off", "limits-memory", "limits-redis", "auth+limits-memory", "auth+limits-redis")
LIMITS = {
    "RATE_LIMIT_REQUESTS_PER_MINUTE": "1000000000",
    "RATE_LIMIT_TOKENS_PER_MINUTE": "1000000000000",
}


@contextlib.contextmanager
def redis(port: int, directory: Path) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed: apt-get install redis-server")
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
    command += ["no", "--dir", str(directory)]
    child = subprocess.Popen(
        ["taskset", "-c", str(CLIENT_CPU), *command], stdout=subprocess.DEVNULL
    )
    try:
        import redis as redis_client

        client = redis_client.Redis(port=port)
        for _ in range(100):
            with contextlib.suppress(redis_client.ConnectionError):
                client.ping()
                break
            time.sleep(0.05)
        client.close()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        child.terminate()
        child.wait(10)


def mode_environment(
    mode: str, base: dict[str, str], redis_url: str, database: str
) -> dict[str, str]:
    env = {**base, "DATABASE_URL": database}
    if mode != "off":
        env.update(LIMITS)
    if mode.endswith("redis"):
        env["REDIS_URL"] = redis_url
    if mode.startswith("auth"):
        env["AUTH_MODE"] = "api-key"
    return env


def create_key(env: dict[str, str]) -> str:
    """A key made with the real command; its last line of output is the key."""
    done = subprocess.run(
        [sys.executable, "-m", "chatbackend", "keys", "create", "--name", "bench"],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--modes", type=lambda s: s.split(","), default=list(MODES))
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per run")
    parser.add_argument("--output", type=Path, default=ROOT / "bench-results" / "access.json")
    parser.add_argument("--upstream-port", type=int, default=18_910)
    parser.add_argument("--backend-port", type=int, default=18_911)
    parser.add_argument("--redis-port", type=int, default=18_912)
    args = parser.parse_args()
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {CLIENT_CPU})
    use_uvloop()
    upstream = f"http://127.0.0.1:{args.upstream_port}"
    backend = f"http://127.0.0.1:{args.backend_port}"
    upstream_command = [sys.executable, "-m", "loadtests.fake_upstream"]
    upstream_command += ["--port", str(args.upstream_port)]
    base = backend_environment(upstream, args.backend_port)
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in args.modes}
    with (
        tempfile.TemporaryDirectory() as scratch,
        redis(args.redis_port, Path(scratch)) as redis_url,
        process(upstream_command, env={}, cpu=CLIENT_CPU, ready=f"{upstream}/_fake/stats"),
    ):
        database = f"sqlite+aiosqlite:///{scratch}/keys.db"
        needs_key = any(mode.startswith("auth") for mode in args.modes)
        key = create_key({**base, "DATABASE_URL": database}) if needs_key else None
        for round_number in range(args.rounds):
            for mode in args.modes:
                env = mode_environment(mode, base, redis_url, database)
                headers = {"Authorization": f"Bearer {key}"} if mode.startswith("auth") else None
                ready = f"{backend}/health/ready"
                with process(backend_command(), env=env, cpu=BACKEND_CPU, ready=ready) as pid:
                    run = Run(profile="latency", mode=mode, concurrency=args.streams)
                    asyncio.run(
                        measure(
                            run,
                            upstream=upstream,
                            backend=backend,
                            worker=worker_process(pid),
                            duration=args.duration,
                            headers=headers,
                        )
                    )
                summary = run.summary()
                runs[mode].append(summary)
                print(f"round {round_number + 1} {mode}: {summary['ttft_p50_ms']} ms p50, "
                      f"errors {summary['errors']}", flush=True)  # fmt: skip
    results = report(runs)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["modes"], indent=2))
    print(f"wrote {args.output}")


def report(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    medians = {
        mode: statistics.median(r["ttft_p50_ms"] for r in results if r["ttft_p50_ms"] is not None)
        for mode, results in runs.items()
    }
    off = medians.get("off")
    return {
        "modes": {
            mode: {
                "ttft_p50_ms_median_of_rounds": round(value, 2),
                "added_over_off_ms": None if off is None else round(value - off, 2),
                "rounds_ttft_p50_ms": [r["ttft_p50_ms"] for r in runs[mode]],
                "errors": [r["errors"] for r in runs[mode]],
            }
            for mode, value in medians.items()
        },
        "runs": runs,
        "machine": machine(),
    }


if __name__ == "__main__":
    main()
