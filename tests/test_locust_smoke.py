"""A few seconds of the real locustfile, headless, against the backend on the fake upstream."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

from chatbackend.app import create_app
from chatbackend.settings import load_settings
from loadtests.fake_upstream import FakeUpstream
from tests.servers import serve

LOCUSTFILE = Path(__file__).resolve().parent.parent / "loadtests" / "locustfile.py"
LLM_METRICS = ("time to first token", "inter-token gap", "tokens/s")


def run_locust(upstream: FakeUpstream, out: Path, seconds: int) -> subprocess.CompletedProcess[str]:
    settings = load_settings(
        chat_provider="compatible", chat_base_url=upstream.base_url, chat_model="fake-model"
    )
    with serve(create_app(settings)) as url:
        return subprocess.run(
            [
                sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
                "--users", "4", "--spawn-rate", "4", "--run-time", f"{seconds}s", "--host", url,
                "--csv", str(out / "smoke"), "--only-summary", "--think-time", "0,0.1",
            ],
            capture_output=True, text=True, timeout=60, cwd=out,
        )  # fmt: skip


def test_locustfile_reports_llm_metrics_and_no_failures(tmp_path: Path) -> None:
    with FakeUpstream.running_in_thread(ttft=0.05, itl=0.01, tokens=12) as upstream:
        run = run_locust(upstream, tmp_path, seconds=4)
    assert run.returncode == 0, run.stderr[-3000:]
    with (tmp_path / "smoke_stats.csv").open() as stats_file:
        rows = {(row["Type"], row["Name"]): row for row in csv.DictReader(stats_file)}
    for name in LLM_METRICS:
        assert int(rows[("LLM", name)]["Request Count"]) > 0, name
        assert float(rows[("LLM", name)]["Average Response Time"]) > 0, name
    assert int(rows[("POST", "/chat/stream")]["Request Count"]) > 0
    assert int(rows[("POST", "/chat")]["Request Count"]) > 0
    assert int(rows[("", "Aggregated")]["Failure Count"]) == 0
    tokens_per_second = float(rows[("LLM", "tokens/s")]["Median Response Time"])
    assert 20 < tokens_per_second < 200  # 12 tokens 10 ms apart: about 100 per second


def test_locustfile_counts_failures_by_protocol_error_code(tmp_path: Path) -> None:
    with FakeUpstream.running_in_thread(fault="rate_limit", retry_after=60) as upstream:
        run = run_locust(upstream, tmp_path, seconds=2)
    assert run.returncode == 1  # Locust's exit code when any request failed
    with (tmp_path / "smoke_failures.csv").open() as failures_file:
        errors = {row["Error"] for row in csv.DictReader(failures_file)}
    assert any("429 rate_limited" in error for error in errors), errors
