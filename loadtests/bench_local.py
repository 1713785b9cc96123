"""Benchmark the embedded model through the provider the service uses: load, first token, decode.

Run with ``make bench-local``. Every run asks for the same greedy answer, long enough that it
never ends before ``--max-tokens``, so the decode rate is measured over a fixed number of tokens.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatbackend.providers.base import Finish, GenerationOptions, GenerationRequest, Message
from chatbackend.settings import load_settings

if TYPE_CHECKING:
    from chatbackend.providers.local import LocalProvider

PROMPT = "Write a very long story about a dragon."
SYSTEM = "You are a helpful assistant. Answer clearly and concisely."
MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Run:
    first_token_seconds: float
    decode_tokens_per_second: float
    prompt_tokens: int
    completion_tokens: int
    total_seconds: float


def rss_mib() -> float:
    """The resident set size now, from ``/proc/self/status`` (kB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mib() -> float:
    """The highest resident set size so far; Linux reports ``ru_maxrss`` in kB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def timed_run(provider: LocalProvider, max_tokens: int) -> Run:
    """One answer: seconds to the first text, then decode rate over the remaining tokens."""
    options = GenerationOptions(temperature=0, seed=42, max_tokens=max_tokens)
    request = GenerationRequest([Message("system", SYSTEM), Message("user", PROMPT)], options)
    started = time.perf_counter()
    first: float | None = None
    async for delta in provider.stream(request):
        now = time.perf_counter()
        if first is None:
            first = now
        if isinstance(delta, Finish):
            assert delta.usage is not None and first is not None
            tokens = delta.usage.completion_tokens
            return Run(
                first_token_seconds=first - started,
                decode_tokens_per_second=(tokens - 1) / (now - first),
                prompt_tokens=delta.usage.prompt_tokens,
                completion_tokens=tokens,
                total_seconds=now - started,
            )
    raise RuntimeError("the answer ended without a Finish")


async def bench(runs: int, max_tokens: int, threads: int | None) -> dict[str, Any]:
    """Import and load timed apart (the import is paid once per process, before the lifespan)."""
    started = time.perf_counter()
    import llama_cpp

    from chatbackend.providers.local import build_local_provider

    import_seconds = time.perf_counter() - started
    overrides: dict[str, Any] = {"chat_provider": "local"}
    if threads is not None:
        overrides["local_threads"] = threads
    settings = load_settings(**overrides)
    rss_before = rss_mib()
    started = time.perf_counter()
    provider = await build_local_provider(settings)
    load_seconds = time.perf_counter() - started
    rss_loaded = rss_mib()
    try:
        await timed_run(provider, 8)
        results = [await timed_run(provider, max_tokens) for _ in range(runs)]
        rss_after_runs = rss_mib()
    finally:
        await provider.aclose()
    return {
        "model": provider.model,
        "llama_cpp_version": llama_cpp.__version__,
        "python": platform.python_version(),
        "cpus_available": len(os.sched_getaffinity(0)),
        "threads": settings.local_threads,
        "context_tokens": settings.local_context_tokens,
        "max_tokens": max_tokens,
        "import_seconds": import_seconds,
        "load_seconds": load_seconds,
        "first_token_seconds_median": statistics.median(r.first_token_seconds for r in results),
        "decode_tokens_per_second_median": statistics.median(
            r.decode_tokens_per_second for r in results
        ),
        "rss_before_load_mib": rss_before,
        "rss_after_load_mib": rss_loaded,
        "rss_after_runs_mib": rss_after_runs,
        "rss_after_close_mib": rss_mib(),
        "peak_rss_mib": peak_rss_mib(),
        "runs": [asdict(r) for r in results],
    }


def table(result: dict[str, Any]) -> str:
    rows = [
        ("model", f"{result['model']} (llama-cpp-python {result['llama_cpp_version']})"),
        ("threads", f"{result['threads']} of {result['cpus_available']} CPUs"),
        ("import", f"{result['import_seconds']:.3f} s"),
        ("load", f"{result['load_seconds']:.3f} s"),
        ("first token", f"{result['first_token_seconds_median'] * 1000:.0f} ms (median)"),
        ("decode", f"{result['decode_tokens_per_second_median']:.1f} tokens/s (median)"),
        ("RSS before load", f"{result['rss_before_load_mib']:.0f} MiB (Python and the package)"),
        ("RSS after load", f"{result['rss_after_load_mib']:.0f} MiB"),
        ("RSS after runs", f"{result['rss_after_runs_mib']:.0f} MiB"),
        ("RSS after close", f"{result['rss_after_close_mib']:.0f} MiB"),
        ("peak RSS", f"{result['peak_rss_mib']:.0f} MiB"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--output", type=Path, help="write the results as JSON to this file")
    parser.add_argument("--runs", type=int, default=3, help="timed answers (default 3)")
    parser.add_argument("--max-tokens", type=int, default=256, help="tokens per answer")
    parser.add_argument("--threads", type=int, help="LOCAL_THREADS (default: CPUs available)")
    args = parser.parse_args(argv)
    result = asyncio.run(bench(args.runs, args.max_tokens, args.threads))
    print(table(result))
    for index, run in enumerate(result["runs"], 1):
        print(
            f"  run {index}: first token {run['first_token_seconds'] * 1000:.0f} ms, "
            f"{run['decode_tokens_per_second']:.1f} tokens/s over {run['completion_tokens']} tokens"
        )
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
