"""``make bench``: what the backend adds on top of its upstream, measured DIRECT vs THROUGH.

The fake upstream and the backend run as separate processes, the backend exactly as in
production (gunicorn with ``gunicorn.conf.py``, one worker). The worker is pinned to CPU 0; the
upstream and this load client share CPU 1, so the backend's figures are per core. For each
profile and concurrency the client drives the upstream directly, then through the backend, with
closed-loop users for a fixed time, and records time to first token, the gaps between chunks,
chunks delivered (counted by the upstream, however the backend groups them), the worker's CPU
seconds and RSS, upstream connections opened and errors.

Writes ``bench-results.json`` and ``bench-results.png``; the whole run is bounded (about three
minutes with the defaults, under ten with any flags documented here).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil

ROOT = Path(__file__).resolve().parent.parent
PROFILES: dict[str, dict[str, float]] = {
    "latency": {"ttft": 0.2, "itl": 0.02, "tokens": 50},
    "cpu": {"ttft": 0.0, "itl": 0.0, "tokens": 200},
}
BODY = {"messages": [{"role": "user", "content": "Tell me a story about a fox."}]}
UPSTREAM_BODY = {"model": "fake-model", "stream": True, "stream_options": {"include_usage": True}}
MAX_STREAMS = 512  # the setting's default
# Closed-loop users start spread over the ramp; streams that start within the warm-up are not
# counted (their time to first token would measure connection set-up and the ramp itself).
RAMP_SECONDS = 1.5
WARMUP_SECONDS = 2.0
BACKEND_CPU = 0
CLIENT_CPU = 1


@dataclass
class Run:
    """One (profile, mode, concurrency) measurement."""

    profile: str
    mode: str
    concurrency: int
    seconds: float = 0.0
    streams: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    ttft: list[float] = field(default_factory=list)
    gaps: list[float] = field(default_factory=list)
    upstream_chunks: int = 0
    upstream_connections: int = 0
    server_cpu_seconds: float | None = None
    server_rss_idle: int | None = None
    server_rss_peak: int | None = None

    def summary(self) -> dict[str, Any]:
        chunks_per_s = self.upstream_chunks / self.seconds if self.seconds else 0.0
        result: dict[str, Any] = {
            "profile": self.profile,
            "mode": self.mode,
            "concurrency": self.concurrency,
            "seconds": round(self.seconds, 3),
            "streams": self.streams,
            "errors": dict(self.errors),
            "ttft_p50_ms": _ms(_percentile(self.ttft, 50)),
            "ttft_p99_ms": _ms(_percentile(self.ttft, 99)),
            "gap_p50_ms": _ms(_percentile(self.gaps, 50)),
            "gap_p99_ms": _ms(_percentile(self.gaps, 99)),
            "chunks": self.upstream_chunks,
            "chunks_per_s": round(chunks_per_s, 1),
            "upstream_connections": self.upstream_connections,
        }
        if self.server_cpu_seconds is not None and self.upstream_chunks:
            result["server_cpu_seconds"] = round(self.server_cpu_seconds, 3)
            cpu_per_chunk = self.server_cpu_seconds / self.upstream_chunks
            result["server_cpu_s_per_1000_chunks"] = round(cpu_per_chunk * 1000, 4)
            result["server_cpu_us_per_chunk"] = round(cpu_per_chunk * 1e6, 1)
        if self.server_rss_peak is not None and self.server_rss_idle is not None:
            result["server_rss_idle_mib"] = round(self.server_rss_idle / 2**20, 1)
            result["server_rss_peak_mib"] = round(self.server_rss_peak / 2**20, 1)
            extra = max(self.server_rss_peak - self.server_rss_idle, 0)
            result["rss_per_stream_kb"] = round(extra / self.concurrency / 1024, 1)
        return result


def machine() -> dict[str, Any]:
    """What the figures were measured on, and what else ran: the load averages (1, 5, 15 min)
    when they were written."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def _percentile(values: list[float], percent: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(percent) - 1]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


# -- processes ----------------------------------------------------------------------------------
@contextlib.contextmanager
def process(
    command: list[str], *, env: dict[str, str], cpu: int | None, ready: str
) -> Iterator[int]:
    """Start ``command`` pinned to ``cpu`` (``None``: free to use every CPU); wait for the
    ``ready`` URL to answer 200."""
    pinned = [] if cpu is None else ["taskset", "-c", str(cpu)]
    child = subprocess.Popen(
        [*pinned, *command],
        env={**os.environ, **env},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        _wait_ready(ready, child)
        yield child.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGTERM)
        try:
            child.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()


def _wait_ready(url: str, child: subprocess.Popen[bytes]) -> None:
    import urllib.request

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if child.poll() is not None:
            stderr = child.stderr.read().decode() if child.stderr else ""
            raise RuntimeError(f"{url} exited with {child.returncode}:\n{stderr[-2000:]}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not become ready in 60 s")


def backend_command(server: str = "gunicorn", port: int = 0) -> list[str]:
    """The production command (the container's CMD): gunicorn with the project's config; or
    the development server ``make run`` starts (``python -m chatbackend``)."""
    if server == "dev":
        return [sys.executable, "-m", "chatbackend", "--host", "127.0.0.1", "--port", str(port)]
    return [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"]


def backend_environment(upstream: str, port: int) -> dict[str, str]:
    """One worker on the fake upstream, bound to loopback."""
    return {
        "CHAT_PROVIDER": "compatible",
        "CHAT_BASE_URL": f"{upstream}/v1",
        "CHAT_MODEL": "fake-model",
        "WEB_CONCURRENCY": "1",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "LOG_LEVEL": "WARNING",
        "CHAT_MAX_STREAMS": str(MAX_STREAMS),
    }


def worker_process(pid: int) -> psutil.Process:
    """The gunicorn worker (the one process serving requests), or the process itself."""
    parent = psutil.Process(pid)
    if "gunicorn" not in " ".join(parent.cmdline()):
        return parent  # the development server serves in its own process
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for child in parent.children(recursive=True):
            if "python" in child.name() or "gunicorn" in " ".join(child.cmdline()):
                return child
        time.sleep(0.1)
    return parent


# -- the load client ----------------------------------------------------------------------------
async def drive(
    url: str | list[str],
    payload: dict[str, Any],
    run: Run,
    duration: float,
    *,
    sse: bool,
    headers: dict[str, str] | None = None,
) -> None:
    """Closed-loop users: each starts a stream as soon as its previous one ends, until
    ``duration`` has passed; then the streams still open finish. ``headers`` go on every one.
    With a list of URLs, user ``i`` streams from ``url[i]`` (one per user)."""
    warmup = WARMUP_SECONDS if run.concurrency > 1 else 0.0
    started = time.monotonic()
    measured_from, deadline = started + warmup, started + warmup + duration
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, headers=headers
    ) as session:

        async def user(index: int) -> None:
            own = url if isinstance(url, str) else url[index]
            # Users arrive spread over the ramp, not all in the same millisecond.
            await asyncio.sleep(random.random() * RAMP_SECONDS if run.concurrency > 1 else 0)
            while (now := time.monotonic()) < deadline:
                await one_stream(session, own, payload, run, sse=sse, record=now >= measured_from)

        await asyncio.gather(*(user(index) for index in range(run.concurrency)))
        run.seconds = time.monotonic() - started


async def one_stream(
    session: aiohttp.ClientSession,
    url: str,
    payload: dict[str, Any],
    run: Run,
    *,
    sse: bool,
    record: bool = True,
) -> None:
    """One answer; its time to first token and gaps count when ``record`` (after the warm-up)."""
    # The first content: SSE's role chunk carries an empty ``"content":""``, which is no token.
    marker = b'"content":"' if sse else b'"content"'
    sent = time.monotonic()
    last: float | None = None
    try:
        async with session.post(url, json=payload) as response:
            if response.status != 200:
                body = await response.read()
                run.errors[_error_code(response.status, body)] += 1
                return
            async for line in response.content:
                if marker not in line or b'"content":""' in line:
                    if b'"error"' in line:
                        run.errors[_error_code(200, line)] += 1
                        return
                    continue
                now = time.monotonic()
                if not record:
                    pass
                elif last is None:
                    run.ttft.append(now - sent)
                else:
                    run.gaps.append(now - last)
                last = now
        run.streams += record
    except (TimeoutError, aiohttp.ClientError) as exc:
        run.errors[type(exc).__name__] += 1


def _error_code(status: int, body: bytes) -> str:
    try:
        return f"{status} {json.loads(body)['error']['code']}"
    except (ValueError, KeyError, TypeError):
        return str(status)


# -- one run ------------------------------------------------------------------------------------
async def measure(
    run: Run,
    *,
    upstream: str,
    backend: str | None,
    worker: psutil.Process | None,
    duration: float,
    headers: dict[str, str] | None = None,
    urls: list[str] | None = None,
) -> Run:
    """One run; ``urls`` (one per user) replace the backend's ``/chat/stream``."""
    async with aiohttp.ClientSession() as control:
        await control.put(f"{upstream}/_fake/defaults", json=PROFILES[run.profile])
        await control.post(f"{upstream}/_fake/reset")
        sampler: asyncio.Task[None] | None = None
        cpu_before = 0.0
        if worker is not None:
            run.server_rss_idle = worker.memory_info().rss
            run.server_rss_peak = run.server_rss_idle
            cpu_before = _cpu(worker)
            sampler = asyncio.create_task(_sample_rss(worker, run))
        url: str | list[str]
        if backend is None:
            url, payload = f"{upstream}/v1/chat/completions", {**UPSTREAM_BODY, **BODY}
        else:
            url, payload = urls or f"{backend}/chat/stream", BODY
        await drive(url, payload, run, duration, sse=backend is None, headers=headers)
        if worker is not None:
            run.server_cpu_seconds = _cpu(worker) - cpu_before
        if sampler is not None:
            sampler.cancel()
        async with control.get(f"{upstream}/_fake/stats") as response:
            stats = await response.json()
    run.upstream_chunks = stats["content_chunks"]
    run.upstream_connections = stats["connections"]
    return run


def _cpu(worker: psutil.Process) -> float:
    times = worker.cpu_times()
    return float(times.user + times.system)


async def _sample_rss(worker: psutil.Process, run: Run) -> None:
    while True:
        await asyncio.sleep(0.25)
        with contextlib.suppress(psutil.Error):
            run.server_rss_peak = max(run.server_rss_peak or 0, worker.memory_info().rss)


def report(runs: list[Run]) -> dict[str, Any]:
    """Each profile and concurrency: what going through the backend added over direct."""
    summaries = [run.summary() for run in runs]
    by_key = {(s["profile"], s["mode"], s["concurrency"]): s for s in summaries}
    comparisons = []
    for (profile, mode, concurrency), through in by_key.items():
        if mode != "backend":
            continue
        direct = by_key.get((profile, "direct", concurrency))
        if direct is None:
            continue
        comparisons.append(
            {
                "profile": profile,
                "concurrency": concurrency,
                "added_ttft_p50_ms": _diff(through["ttft_p50_ms"], direct["ttft_p50_ms"]),
                "added_ttft_p99_ms": _diff(through["ttft_p99_ms"], direct["ttft_p99_ms"]),
                "gap_p99_ms": through["gap_p99_ms"],
                "direct_gap_p99_ms": direct["gap_p99_ms"],
                "chunks_per_s_fraction_of_direct": round(
                    through["chunks_per_s"] / direct["chunks_per_s"], 3
                )
                if direct["chunks_per_s"]
                else None,
                "server_cpu_us_per_chunk": through.get("server_cpu_us_per_chunk"),
                "server_cpu_s_per_1000_chunks": through.get("server_cpu_s_per_1000_chunks"),
                "rss_per_stream_kb": through.get("rss_per_stream_kb"),
                "upstream_connections": through["upstream_connections"],
                "errors": through["errors"],
            }
        )
    return {"runs": summaries, "comparison": comparisons}


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 2)


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    profiles = list(PROFILES)
    figure, axes = plt.subplots(len(profiles), 2, figsize=(12, 4.5 * len(profiles)))
    for row, profile in enumerate(profiles):
        ttft_axis, rate_axis = axes[row]
        for mode, style in (("direct", "--"), ("backend", "-")):
            runs = [r for r in results["runs"] if r["profile"] == profile and r["mode"] == mode]
            levels = [r["concurrency"] for r in runs]
            for key, marker in (("ttft_p50_ms", "o"), ("ttft_p99_ms", "^")):
                values = [r[key] for r in runs]
                ttft_axis.plot(levels, values, style, marker=marker, label=f"{mode} {key[5:8]}")
            rate_axis.plot(levels, [r["chunks_per_s"] for r in runs], style, marker="o", label=mode)
        ttft_axis.set(
            title=f"{profile}: time to first token", xlabel="concurrent streams", ylabel="ms"
        )
        rate_axis.set(
            title=f"{profile}: upstream chunks delivered per second",
            xlabel="concurrent streams",
            ylabel="chunks/s",
        )
        for axis in (ttft_axis, rate_axis):
            axis.set_xscale("symlog", linthresh=50)
            axis.grid(alpha=0.3)
            axis.legend()
    figure.suptitle("chatbackend, one gunicorn worker: direct to the fake upstream vs through")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


async def run_all(args: argparse.Namespace, upstream: str, backend: str, pid: int) -> list[Run]:
    worker = worker_process(pid)
    runs: list[Run] = []
    for profile in args.profiles:
        for concurrency in args.levels:
            for mode in ("direct", "backend"):
                run = Run(profile, mode, concurrency)
                await measure(
                    run,
                    upstream=upstream,
                    backend=backend if mode == "backend" else None,
                    worker=worker if mode == "backend" else None,
                    duration=args.duration,
                )
                summary = run.summary()
                print(
                    f"{profile:8} {mode:8} c={concurrency:<4} streams={summary['streams']:<6} "
                    f"ttft p50={summary['ttft_p50_ms']} p99={summary['ttft_p99_ms']} ms  "
                    f"gap p99={summary['gap_p99_ms']} ms  chunks/s={summary['chunks_per_s']}  "
                    f"cpu/chunk={summary.get('server_cpu_us_per_chunk', '-')} us  "
                    f"conns={summary['upstream_connections']} errors={summary['errors']}",
                    flush=True,
                )
                runs.append(run)
    return runs


@contextlib.asynccontextmanager
async def streams_held(
    session: aiohttp.ClientSession, upstream: str, backend: str, count: int
) -> AsyncIterator[None]:
    """``count`` answers open through the backend (paced at 20 tokens/s) for the block."""
    held = asyncio.Event()
    await session.put(f"{upstream}/_fake/defaults", json={"itl": 0.05, "tokens": 400})

    async def hold() -> None:
        async with session.post(f"{backend}/chat/stream", json=BODY) as response:
            await response.content.readline()
            await held.wait()

    holders = [asyncio.create_task(hold()) for _ in range(count)]
    try:
        while (await (await session.get(f"{upstream}/_fake/stats")).json())["in_flight"] < count:
            await asyncio.sleep(0.05)
        yield
    finally:
        held.set()
        for holder in holders:
            holder.cancel()
        await asyncio.gather(*holders, return_exceptions=True)


async def measure_memory(
    upstream: str, backend: str, worker: psutil.Process, streams: int
) -> dict[str, Any]:
    """RSS per open stream: the fresh worker after a warm-up, then with ``streams`` open."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        await session.put(f"{upstream}/_fake/defaults", json={"tokens": 20})
        for _ in range(20):  # imports, caches and pools that the first requests fill
            async with session.post(f"{backend}/chat/stream", json=BODY) as response:
                await response.read()
        await asyncio.sleep(0.5)
        before = worker.memory_info().rss
        async with streams_held(session, upstream, backend, streams):
            await asyncio.sleep(1.0)
            during = worker.memory_info().rss
    return {
        "streams_open": streams,
        "rss_before_mib": round(before / 2**20, 1),
        "rss_with_streams_open_mib": round(during / 2**20, 1),
        "rss_per_open_stream_kb": round((during - before) / streams / 1024, 1),
    }


async def measure_overload(upstream: str, backend: str, limit: int, extra: int) -> dict[str, Any]:
    """Fill every stream slot of the worker, then time the refusals of ``extra`` more requests.

    The held streams are paced at 20 tokens/s each, so the worker is busy while it refuses.
    """
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def refused() -> tuple[int, float, str | None]:
            started = time.monotonic()
            async with session.post(f"{backend}/chat/stream", json=BODY) as response:
                await response.read()
                return (
                    response.status,
                    time.monotonic() - started,
                    response.headers.get("Retry-After"),
                )

        async with streams_held(session, upstream, backend, limit):
            # One at a time: the latency of a refusal while the worker carries ``limit`` streams.
            answers = [await refused() for _ in range(extra)]
    seconds = [elapsed for status, elapsed, _ in answers if status == 503]
    return {
        "streams_held": limit,
        "extra_requests": extra,
        "answered_503": len(seconds),
        "retry_after": sorted({value for _, _, value in answers if value}),
        "refusal_p50_ms": _ms(_percentile(seconds, 50)),
        "refusal_p99_ms": _ms(_percentile(seconds, 99)),
    }


async def measure_upstream_capacity(upstream: str, pid: int, streams: int) -> dict[str, Any]:
    """The fake upstream alone (one process, one core) holding ``streams`` paced streams."""
    knobs = {"ttft": 0.2, "itl": 0.05, "tokens": 40}
    async with aiohttp.ClientSession() as control:
        await control.put(f"{upstream}/_fake/defaults", json=knobs)
        await control.post(f"{upstream}/_fake/reset")
    server = psutil.Process(pid)
    before, started = _cpu(server), time.monotonic()
    run = Run("upstream-capacity", "direct", streams)
    url, payload = f"{upstream}/v1/chat/completions", {**UPSTREAM_BODY, **BODY}
    # The backend's core is free before the backend starts: the client takes it.
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {BACKEND_CPU})
    try:
        await drive(url, payload, run, duration=4.0, sse=True)
    finally:
        with contextlib.suppress(AttributeError, OSError):
            os.sched_setaffinity(0, {CLIENT_CPU})
    busy = (_cpu(server) - before) / (time.monotonic() - started)
    async with aiohttp.ClientSession() as control:
        stats = await (await control.get(f"{upstream}/_fake/stats")).json()
    return {
        "knobs": knobs,
        "concurrent_streams": streams,
        "max_in_flight": stats["max_in_flight"],
        "streams_completed": stats["completed"],
        "errors": dict(run.errors),
        "content_chunks_per_s": round(stats["content_chunks"] / run.seconds),
        "upstream_cpu_share_of_one_core": round(busy, 2),
    }


# The runs compared with telemetry off and on: (profile, concurrency).
TELEMETRY_RUNS = (("cpu", 50), ("latency", 200))


def otlp_environment(upstream: str) -> dict[str, str]:
    """Telemetry on, exported for real over OTLP/HTTP to the fake upstream's sink."""
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": upstream,
        "OTEL_SERVICE_NAME": "chatbackend-bench",
        "OTEL_BSP_SCHEDULE_DELAY": "1000",
        "OTEL_METRIC_EXPORT_INTERVAL": "2000",
    }


def sampled_environment(upstream: str) -> dict[str, str]:
    """As ``otlp_environment``, keeping one trace in ten (metrics still see every request)."""
    return {
        **otlp_environment(upstream),
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.1",
    }


TELEMETRY_MODES: dict[str, Callable[[str], dict[str, str]]] = {
    "off": lambda _: {},
    "otlp": otlp_environment,
    "otlp-sampled-10%": sampled_environment,
}


async def measure_telemetry(
    args: argparse.Namespace, upstream: str, backend: str, pid: int, *, mode: str
) -> list[Run]:
    worker = worker_process(pid)
    runs = []
    for profile, concurrency in TELEMETRY_RUNS:
        run = Run(profile, mode, concurrency)
        duration = args.duration
        await measure(run, upstream=upstream, backend=backend, worker=worker, duration=duration)
        summary = run.summary()
        print(
            f"telemetry {run.mode:16} {profile:8} c={concurrency:<4} "
            f"cpu/chunk={summary.get('server_cpu_us_per_chunk')} us "
            f"ttft p50={summary['ttft_p50_ms']} ms errors={summary['errors']}",
            flush=True,
        )
        runs.append(run)
    return runs


def telemetry_report(runs: list[Run]) -> list[dict[str, Any]]:
    """Server CPU per chunk with telemetry exported over OTLP vs off (medians of the repeats)."""
    rows = []
    for profile, concurrency in TELEMETRY_RUNS:

        def cpu(mode: str, profile: str = profile, concurrency: int = concurrency) -> float:
            values = [
                r.summary()["server_cpu_us_per_chunk"]
                for r in runs
                if (r.profile, r.mode, r.concurrency) == (profile, mode, concurrency)
            ]
            return statistics.median(values)

        if not runs:
            break
        off = cpu("off")
        row: dict[str, Any] = {"profile": profile, "concurrency": concurrency}
        for mode in TELEMETRY_MODES:
            row[f"cpu_us_per_chunk_{mode}"] = round(cpu(mode), 2)
            if mode != "off":
                row[f"ratio_{mode}_vs_off"] = round(cpu(mode) / off, 3)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--levels", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--profiles", type=lambda s: s.split(","), default=list(PROFILES))
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per run")
    parser.add_argument("--output", type=Path, default=ROOT / "bench-results.json")
    parser.add_argument("--chart", type=Path, default=ROOT / "bench-results.png")
    parser.add_argument("--upstream-port", type=int, default=18_900)
    parser.add_argument("--backend-port", type=int, default=18_901)
    parser.add_argument("--server", choices=["gunicorn", "dev"], default="gunicorn")
    parser.add_argument(
        "--no-extras",
        dest="extras",
        action="store_false",
        help="skip the upstream capacity, memory and overload measurements",
    )
    parser.add_argument(
        "--no-telemetry",
        dest="telemetry",
        action="store_false",
        help="skip the runs with OpenTelemetry exporting over OTLP",
    )
    args = parser.parse_args()
    args.levels = args.levels or [1, 50, 200, 500]
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {CLIENT_CPU})
    upstream = f"http://127.0.0.1:{args.upstream_port}"
    backend = f"http://127.0.0.1:{args.backend_port}"
    upstream_command = [sys.executable, "-m", "loadtests.fake_upstream"]
    upstream_command += ["--port", str(args.upstream_port)]
    use_uvloop()
    environment = backend_environment(upstream, args.backend_port)
    ready = f"{backend}/health/ready"
    with process(
        upstream_command, env={}, cpu=CLIENT_CPU, ready=f"{upstream}/_fake/stats"
    ) as upstream_pid:
        capacity = memory = overload = None
        if args.extras:
            capacity = asyncio.run(measure_upstream_capacity(upstream, upstream_pid, 2000))
            print(f"upstream capacity: {capacity}", flush=True)
        command = backend_command(args.server, args.backend_port)
        with process(command, env=environment, cpu=BACKEND_CPU, ready=ready) as pid:
            if args.extras:
                memory = asyncio.run(measure_memory(upstream, backend, worker_process(pid), 500))
                print(f"memory: {memory}", flush=True)
            runs = asyncio.run(run_all(args, upstream, backend, pid))
            if args.extras:
                overload = asyncio.run(measure_overload(upstream, backend, MAX_STREAMS, extra=100))
                print(f"overload: {overload}", flush=True)
        telemetry = []
        if args.telemetry:
            for mode in (*TELEMETRY_MODES, *TELEMETRY_MODES):  # twice, interleaved
                telemetry_env = {**environment, **TELEMETRY_MODES[mode](upstream)}
                with process(command, env=telemetry_env, cpu=BACKEND_CPU, ready=ready) as pid:
                    telemetry += asyncio.run(
                        measure_telemetry(args, upstream, backend, pid, mode=mode)
                    )
    results = report(runs)
    results["overload"] = overload
    results["memory"] = memory
    results["upstream_capacity"] = capacity
    results["telemetry"] = telemetry_report(telemetry)
    results["machine"] = machine()
    results["profiles"] = PROFILES
    results["duration_per_run_s"] = args.duration
    results["server"] = args.server
    results["command"] = command
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    chart(results, args.chart)
    print(json.dumps(results["comparison"], indent=2))
    print(f"wrote {args.output} and {args.chart}")


def use_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()


if __name__ == "__main__":
    main()
