"""The production command, exactly as the container runs it, drains an in-flight stream on SIGTERM.

gunicorn starts from the Dockerfile's CMD (two workers, bound to 127.0.0.1) in front of the fake
upstream; a streamed answer is under way when the master gets SIGTERM. The answer must arrive
whole, new connections must be refused meanwhile, and the server must then exit by itself.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from loadtests.fake_upstream import WORDS, FakeUpstream
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[1]
TOKENS = 40
ITL = 0.05  # two seconds of answer: SIGTERM lands early in it
REQUEST = {"messages": [{"role": "user", "content": "Tell me a story"}]}


def expected_text(tokens: int) -> str:
    """What the fake upstream says in ``tokens`` tokens: its words, space-separated, cycled."""
    return " ".join(WORDS[index % len(WORDS)] for index in range(tokens))


def container_command() -> list[str]:
    """The exec-form CMD of the Dockerfile."""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("CMD "):
            command: list[str] = json.loads(line.removeprefix("CMD "))
            return command
    raise AssertionError("the Dockerfile has no CMD")


@contextmanager
def production_server(
    base_url: str, *, graceful_timeout: int = 30
) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "GRACEFUL_TIMEOUT": str(graceful_timeout),
        "CHAT_PROVIDER": "compatible",
        "CHAT_BASE_URL": base_url,
        "CHAT_MODEL": "fake-model",
    }
    process = subprocess.Popen(
        container_command(),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until_ready(port, process)
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def wait_until_ready(port: int, process: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"gunicorn exited:\n{process.communicate()[0]}"
        try:
            if get_status(port, "/health/ready") == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("gunicorn did not become ready")


def get_status(port: int, path: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    finally:
        connection.close()


def refuses_connections(port: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            get_status(port, "/health/live")
        # Refused, or reset: a connect that raced the listener's close sits in a backlog that
        # the kernel then resets. Either way nobody serves it.
        except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.timeout(90)
def test_sigterm_lets_the_in_flight_stream_finish() -> None:
    with (
        FakeUpstream.running_in_thread(itl=ITL, tokens=TOKENS) as upstream,
        production_server(upstream.base_url) as (process, port),
    ):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request(
            "POST",
            "/chat/stream",
            body=json.dumps(REQUEST),
            headers={"content-type": "application/json"},
        )
        response = connection.getresponse()
        assert response.status == 200
        lines = [json.loads(response.readline())]  # the role delta
        lines.append(json.loads(response.readline()))  # the first content delta
        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()

        assert refuses_connections(port, within=ITL * TOKENS / 2), "still accepting after SIGTERM"
        lines += [json.loads(line) for line in response]
        drained = time.monotonic() - signalled
        output, _ = process.communicate(timeout=30)
        exited = time.monotonic() - signalled

    # Deltas may carry several tokens each (one per read): compare the whole text instead.
    text = "".join(line["delta"].get("content", "") for line in lines)
    assert text == expected_text(TOKENS), output
    assert lines[-1]["context"]["finish_reason"] == "stop"
    assert process.returncode == 0, output
    assert drained <= exited < drained + 10, (
        output
    )  # exits once the stream is done, not at the timeout
    stats = upstream.snapshot()
    assert (stats["completed"], stats["abandoned"]) == (1, 0), stats


@pytest.mark.timeout(90)
@pytest.mark.parametrize("accept", ["application/x-ndjson", "text/event-stream"])
def test_streams_still_open_at_the_end_of_the_window_get_a_last_line(accept: str) -> None:
    """GRACEFUL_TIMEOUT=7: streams may run for 2 s (7 - 5) after SIGTERM; a 10 s answer is
    then ended with a ``shutting_down`` error line and a clean end of the chunked body."""
    with (
        FakeUpstream.running_in_thread(itl=ITL, tokens=200) as upstream,
        production_server(upstream.base_url, graceful_timeout=7) as (process, port),
    ):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request(
            "POST",
            "/chat/stream",
            body=json.dumps(REQUEST),
            headers={"content-type": "application/json", "accept": accept},
        )
        response = connection.getresponse()
        assert response.status == 200
        first = response.readline()
        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        rest = response.read()  # IncompleteRead if the chunked body were cut
        ended = time.monotonic() - signalled
        output, _ = process.communicate(timeout=30)

    body = (first + rest).decode()
    assert 1.5 < ended < 4, ended
    if accept == "text/event-stream":
        assert body.endswith("\n\n")
        last_event = body.strip().split("\n\n")[-1]
        assert last_event.startswith("event: error\ndata: "), last_event
        last = json.loads(last_event.split("data: ", 1)[1])
    else:
        last = json.loads(body.strip().splitlines()[-1])
    assert last["error"]["code"] == "shutting_down"
    assert process.returncode == 0, output
    logged = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    streamed = [line for line in logged if line.get("path") == "/chat/stream"]
    assert [line["error"] for line in streamed] == ["shutting_down"], output
