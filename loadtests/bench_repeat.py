"""``make bench``: ``loadtests.bench`` run several times, reported as medians with their spread.

One run of a load benchmark on a shared 2-core machine is an anecdote: this runs the production
command (gunicorn, one worker) ``--runs`` times (default 3), and the development server
(``python -m chatbackend``) as many times on the latency profile, then writes, per profile and
concurrency, the median of each figure and its range (min–max) over the runs:
``bench-results/summary.json`` and ``bench-results/summary.md`` (the table the README quotes).
Each run's own JSON and chart stay beside them (``run-N.json``, ``dev-N.json``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIGURES = (
    "added_ttft_p50_ms",
    "added_ttft_p99_ms",
    "gap_p99_ms",
    "chunks_per_s_fraction_of_direct",
    "server_cpu_us_per_chunk",
)


def run_bench(output: Path, extra: list[str]) -> dict[str, Any]:
    command = [sys.executable, "-m", "loadtests.bench", "--output", str(output)]
    command += ["--chart", str(output.with_suffix(".png")), *extra]
    print("$", " ".join(command[1:]), flush=True)
    subprocess.run(command, cwd=ROOT, check=True, timeout=900)
    result: dict[str, Any] = json.loads(output.read_text())
    return result


def spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "median": round(statistics.median(values), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
    }


def aggregate(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows: dict[tuple[str, int], dict[str, list[float]]] = {}
    for result in results:
        for row in result["comparison"]:
            figures = rows.setdefault((row["profile"], row["concurrency"]), {})
            for name in FIGURES:
                if row.get(name) is not None:
                    figures.setdefault(name, []).append(float(row[name]))
            errors = sum(row["errors"].values())
            figures.setdefault("errors", []).append(float(errors))
    return [
        {"profile": profile, "concurrency": concurrency}
        | {name: spread(values) for name, values in figures.items()}
        for (profile, concurrency), figures in sorted(rows.items())
    ]


def telemetry(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows: dict[tuple[str, int], dict[str, list[float]]] = {}
    for result in results:
        for row in result.get("telemetry") or []:
            figures = rows.setdefault((row["profile"], row["concurrency"]), {})
            for name, value in row.items():
                if name.startswith(("cpu_us", "ratio")):
                    figures.setdefault(name, []).append(float(value))
    return [
        {"profile": profile, "concurrency": concurrency}
        | {name: spread(values) for name, values in figures.items()}
        for (profile, concurrency), figures in sorted(rows.items())
    ]


def cell(value: dict[str, float] | None, unit: str = "") -> str:
    if value is None:
        return "–"
    return f"{value['median']:g}{unit} ({value['min']:g}–{value['max']:g})"


def markdown(summary: dict[str, Any]) -> str:
    lines = [
        f"Medians of {summary['runs']} runs, (min–max) across runs; `{summary['reproduce']}`.",
        "",
        "| server | profile, streams | added TTFT p50 | added TTFT p99 | gap p99 | "
        "chunks/s vs direct | worker CPU µs/chunk | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for server in ("gunicorn", "dev"):
        for row in summary[server]:
            lines.append(
                f"| {server} | {row['profile']}, {row['concurrency']} "
                f"| {cell(row.get('added_ttft_p50_ms'), ' ms')} "
                f"| {cell(row.get('added_ttft_p99_ms'), ' ms')} "
                f"| {cell(row.get('gap_p99_ms'), ' ms')} "
                f"| {cell(row.get('chunks_per_s_fraction_of_direct'))} "
                f"| {cell(row.get('server_cpu_us_per_chunk'))} "
                f"| {cell(row.get('errors'))} |"
            )
    if summary["telemetry"]:
        lines += ["", "| telemetry, profile, streams | off µs/chunk | OTLP every trace | ratio |"]
        lines.append("|---|---|---|---|")
        for row in summary["telemetry"]:
            lines.append(
                f"| {row['profile']}, {row['concurrency']} "
                f"| {cell(row.get('cpu_us_per_chunk_off'))} "
                f"| {cell(row.get('cpu_us_per_chunk_otlp'))} "
                f"| {cell(row.get('ratio_otlp_vs_off'))} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--output-dir", type=Path, default=ROOT / "bench-results")
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--no-dev", dest="dev", action="store_false")
    parser.add_argument("--levels", default="1,50,200,500", help="concurrencies, comma-separated")
    args = parser.parse_args()
    args.output_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    common = ["--duration", str(args.duration), "--levels", args.levels]
    production = []
    dev = []
    for index in range(1, args.runs + 1):
        extras = [] if index == 1 else ["--no-extras"]
        production.append(run_bench(args.output_dir / f"run-{index}.json", common + extras))
        if args.dev:
            dev_flags = ["--duration", str(args.duration), "--levels", "200,500"]
            dev_flags += ["--server", "dev", "--profiles", "latency", "--no-extras"]
            dev.append(
                run_bench(args.output_dir / f"dev-{index}.json", dev_flags + ["--no-telemetry"])
            )
    summary = {
        "runs": args.runs,
        "reproduce": f"python -m loadtests.bench_repeat --runs {args.runs} --levels {args.levels}",
        "production_command": production[0].get("command"),
        "gunicorn": aggregate(production),
        "dev": aggregate(dev),
        "telemetry": telemetry(production),
        "extras_of_run_1": {k: production[0].get(k) for k in ("memory", "overload")},
        "seconds": round(time.monotonic() - started, 1),
    }
    (args.output_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (args.output_dir / "summary.md").write_text(markdown(summary))
    print(markdown(summary))
    print(f"wrote {args.output_dir / 'summary.json'} and summary.md")


if __name__ == "__main__":
    main()
