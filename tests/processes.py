"""``python -m chatbackend`` as a real server process, for tests that need several of them."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def server_processes(
    env: dict[str, str], count: int, *, timeout: float = 60.0
) -> Iterator[list[str]]:
    """Start ``count`` development servers with ``env`` (and nothing else of ours) at once;
    yield their URLs once every one is live."""
    ports = [free_port() for _ in range(count)]
    processes = [_start(port, env) for port in ports]
    try:
        for port, process in zip(ports, processes, strict=True):
            _wait_until_live(port, process, timeout)
        yield [f"http://127.0.0.1:{port}" for port in ports]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


@contextmanager
def server_process(env: dict[str, str], *, timeout: float = 60.0) -> Iterator[ServerProcess]:
    """One development server with ``env``, live; a test may kill it itself (``kill -9``)."""
    port = free_port()
    process = _start(port, env)
    try:
        _wait_until_live(port, process, timeout)
        yield ServerProcess(f"http://127.0.0.1:{port}", process)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        process.wait(5)


@dataclass(frozen=True)
class ServerProcess:
    url: str
    process: subprocess.Popen[str]


def _start(port: int, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "chatbackend", "--port", str(port)],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_until_live(port: int, process: subprocess.Popen[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited:\n{process.communicate()[0]}")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        try:
            connection.request("GET", "/health/live")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.05)
        finally:
            connection.close()
    raise RuntimeError("the server did not start in time")
