"""Production serving: the CPU count that sizes gunicorn, the settings gunicorn.conf.py derives
from the environment, and the one-line refusal when the embedded model is not installed."""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path
from typing import Any

import pytest

from chatbackend.serving import granted_cpus
from chatbackend.settings import SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[1]
AFFINITY = len(os.sched_getaffinity(0))


def cpu_max(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cpu.max"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("50000 100000\n", 1),  # half a CPU still runs one worker
        ("100000 100000\n", 1),
        ("150000 100000\n", min(2, AFFINITY)),  # 1.5 CPUs round up
        ("6400000 100000\n", AFFINITY),  # a quota above the affinity mask is no use
        ("max 100000\n", AFFINITY),  # no limit
        ("garbage\n", AFFINITY),
    ],
)
def test_granted_cpus_reads_the_cgroup_quota(tmp_path: Path, content: str, expected: int) -> None:
    assert granted_cpus(cpu_max(tmp_path, content)) == expected


def test_granted_cpus_without_cgroup_v2_is_the_affinity_mask(tmp_path: Path) -> None:
    assert granted_cpus(tmp_path / "absent") == AFFINITY


def gunicorn_config(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, Any]:
    """The settings gunicorn.conf.py defines under ``env`` (and nothing else of ours set)."""
    for name in ("HOST", "PORT", "WEB_CONCURRENCY", "GRACEFUL_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def test_gunicorn_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    config = gunicorn_config(monkeypatch)
    assert config["bind"] == "0.0.0.0:8000"
    assert config["workers"] == granted_cpus()
    assert config["worker_class"] == "chatbackend.serving.Worker"
    assert config["wsgi_app"] == "chatbackend.asgi:app"
    assert config["graceful_timeout"] == 120
    assert config["reload"] is False
    assert config["accesslog"] is None


def test_gunicorn_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"HOST": "127.0.0.1", "PORT": "9123", "WEB_CONCURRENCY": "1", "GRACEFUL_TIMEOUT": "7"}
    config = gunicorn_config(monkeypatch, **env)
    assert config["bind"] == "127.0.0.1:9123"
    assert config["workers"] == 1
    assert config["graceful_timeout"] == 7


def test_gunicorn_master_refuses_bad_settings_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHAT_PROVIDER", "azure")
    on_starting = gunicorn_config(monkeypatch)["on_starting"]
    with pytest.raises(SystemExit) as exit_info:
        on_starting(None)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_without_the_local_extra_the_default_provider_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # as if llama-cpp-python were absent
    with pytest.raises(SettingsError, match=r"pip install 'chatbackend\[local\]'"):
        load_settings()


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, (100_000, 50, 100)), ("", (100_000, 50, 100)), ("700, 10, 10", (700, 10, 10))],
)
def test_gc_threshold_reads_three_numbers(
    monkeypatch: pytest.MonkeyPatch, value: str | None, expected: tuple[int, ...]
) -> None:
    if value is not None:
        monkeypatch.setenv("GC_THRESHOLD", value)
    assert load_settings().gc_threshold == expected


@pytest.mark.parametrize("value", ["100000", "a,b,c", "1,2,3,4", "-1,2,3"])
def test_a_bad_gc_threshold_names_the_variable(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("GC_THRESHOLD", value)
    with pytest.raises(SettingsError, match="GC_THRESHOLD"):
        load_settings()
