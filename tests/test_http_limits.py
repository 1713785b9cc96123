"""Header size, header count and the read deadline, against both real servers over raw sockets.

The development server (``python -m chatbackend``) and the production command (the Dockerfile's
gunicorn CMD) run as processes in front of the fake upstream; both must refuse the same requests
with the same status, the protocol's error object and a request-log line, and never call upstream.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chatbackend.settings import Settings
from loadtests.fake_upstream import FakeUpstream
from tests.servers import free_port
from tests.test_graceful_shutdown import ROOT, container_command, wait_until_ready

READ_TIMEOUT = 1.0
LINE = Settings.model_fields["http_max_header_line_bytes"].default
TOTAL = Settings.model_fields["http_max_header_bytes"].default
COUNT = Settings.model_fields["http_max_headers"].default


@dataclass
class Server:
    port: int
    log: Path
    upstream: FakeUpstream

    def request_lines(self) -> list[dict[str, Any]]:
        lines = []
        for text in self.log.read_text().splitlines():
            if text.startswith("{") and '"message":"request' in text:
                lines.append(json.loads(text))
        return lines


def command(kind: str, port: int) -> tuple[list[str], dict[str, str]]:
    if kind == "dev":
        return [sys.executable, "-m", "chatbackend", "--port", str(port)], {}
    return container_command(), {"HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "1"}


@pytest.fixture(scope="module", params=["dev", "gunicorn"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    port = free_port()
    argv, extra = command(request.param, port)
    log = tmp_path_factory.mktemp(request.param) / "server.log"
    with FakeUpstream.running_in_thread(tokens=3) as upstream, log.open("w") as output:
        env = {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "CHAT_PROVIDER": "compatible",
            "CHAT_BASE_URL": upstream.base_url,
            "CHAT_MODEL": "fake-model",
            "HTTP_READ_TIMEOUT": str(READ_TIMEOUT),
            **extra,
        }
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
        try:
            wait_until_ready(port, process)  # type: ignore[arg-type]  # a bytes-mode Popen
            yield Server(port, log, upstream)
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def exchange(port: int, data: bytes, *, wait: float = 5.0) -> tuple[bytes, float]:
    """Send ``data``, then read until the server closes; the bytes and the seconds it took."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        started = time.monotonic()
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered and closed while we were still sending
        return read_until_closed(sock), time.monotonic() - started


def read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def answer(raw: bytes) -> tuple[int, dict[str, Any], dict[str, str]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), json.loads(body), headers


def get(path: str = "/health/live", headers: Sequence[tuple[str, str]] = ()) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{n}: {v}" for n, v in headers)]
    return ("\r\n".join([*lines, "Connection: close", "", ""])).encode()


def refused(raw: bytes, status: int, code: str) -> None:
    got, error, headers = answer(raw)
    assert (got, error["error"]["code"]) == (status, code), raw[:300]
    assert headers["connection"] == "close"
    assert headers["content-type"] == "application/json"


def test_a_request_within_every_limit_is_served(server: Server) -> None:
    headers = [(f"x-h{i}", "v" * 100) for i in range(COUNT - 2)]
    raw, _ = exchange(server.port, get(headers=headers))
    assert raw.startswith(b"HTTP/1.1 200 ")


def test_a_header_line_over_the_limit_is_431(server: Server) -> None:
    raw, _ = exchange(server.port, get(headers=[("x-big", "v" * LINE)]))
    refused(raw, 431, "headers_too_large")
    assert {"status": 431, "error": "headers_too_large"}.items() <= server.request_lines()[
        -1
    ].items()


def test_headers_over_the_total_limit_are_431(server: Server) -> None:
    headers = [(f"x-h{i}", "v" * (LINE - 100)) for i in range(TOTAL // (LINE - 100) + 1)]
    raw, _ = exchange(server.port, get(headers=headers))
    refused(raw, 431, "headers_too_large")


def test_too_many_headers_are_431(server: Server) -> None:
    raw, _ = exchange(server.port, get(headers=[(f"x-h{i}", "1") for i in range(COUNT + 1)]))
    refused(raw, 431, "headers_too_large")


def test_a_url_over_the_line_limit_is_414(server: Server) -> None:
    raw, _ = exchange(server.port, get("/health/live?" + "q" * LINE))
    refused(raw, 414, "uri_too_long")


def test_an_endless_header_is_answered_long_before_its_end(server: Server) -> None:
    """A 100 MB header value: the 431 arrives while the client is still sending."""
    answered_after = None
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: ")
        sent = 0
        try:
            while sent < 100 * 1024 * 1024:
                if select.select([sock], [], [], 0)[0]:
                    answered_after = sent
                    break
                sock.sendall(b"v" * 65536)
                sent += 65536
        except (BrokenPipeError, ConnectionResetError):
            answered_after = sent
        raw = read_until_closed(sock)
    # What the kernel buffers on the way (a few MB on loopback) is sent before the answer shows.
    assert answered_after is not None and answered_after < 32 * 1024 * 1024, answered_after
    if raw:  # a reset may discard the answer in flight; the cut-off is what matters
        refused(raw, 431, "headers_too_large")


def test_half_the_headers_then_silence_is_408_after_the_read_timeout(server: Server) -> None:
    raw, took = exchange(server.port, b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Half: ", wait=10)
    refused(raw, 408, "request_timeout")
    assert READ_TIMEOUT * 0.9 < took < READ_TIMEOUT + 3
    assert {"status": 408, "error": "request_timeout"}.items() <= server.request_lines()[-1].items()


def test_a_connection_that_sends_nothing_is_closed_after_the_read_timeout(server: Server) -> None:
    raw, took = exchange(server.port, b"", wait=10)
    refused(raw, 408, "request_timeout")
    assert took < READ_TIMEOUT + 3


def test_a_body_shorter_than_declared_is_408_and_never_reaches_upstream(server: Server) -> None:
    before = server.upstream.snapshot()["requests"]
    head = (
        "POST /chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000\r\n\r\n"
    )
    raw, took = exchange(server.port, head.encode() + b'{"messages": [', wait=10)
    refused(raw, 408, "request_timeout")
    assert took < READ_TIMEOUT + 3
    assert server.upstream.snapshot()["requests"] == before
    time.sleep(0.2)  # the app's line is written when its task sees the disconnect
    line = server.request_lines()[-1]
    assert (line["path"], line["status"], line["error"]) == ("/chat", 408, "request_timeout")


def test_a_slow_but_timely_request_is_served(server: Server) -> None:
    body = json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode()
    head = (
        "POST /chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        for part in (head.encode(), body[:10], body[10:]):
            sock.sendall(part)
            time.sleep(READ_TIMEOUT / 4)
        raw = read_until_closed(sock)
    assert raw.startswith(b"HTTP/1.1 200 "), raw[:200]


def test_a_lone_surrogate_and_an_unparsable_body_are_refused_by_the_real_server(
    server: Server,
) -> None:
    before = server.upstream.snapshot()["requests"]
    for payload, status, code in [
        (
            b'{"messages":[{"role":"user","content":"x"}],"sessionState":"\\ud800"}',
            422,
            "invalid_request",
        ),
        (b'{"messages":[{"role":"user","content":"\xff"}]}', 400, "invalid_json"),
    ]:
        head = (
            "POST /chat/stream HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
        )
        raw, _ = exchange(server.port, head.encode() + payload)
        got, error, _ = answer(raw)
        assert (got, error["error"]["code"]) == (status, code)
        assert server.request_lines()[-1]["error"] == code
    assert server.upstream.snapshot()["requests"] == before


# -- the read deadline on a kept-alive connection: the second request ---------------------------
KEPT_ALIVE_GET = b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n"


def read_response(sock: socket.socket, buffered: bytes = b"") -> tuple[bytes, bytes]:
    """One response with a ``content-length`` from ``sock``; it and the bytes read after it."""
    received = buffered
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        assert chunk, f"closed before a whole response head: {received[:300]!r}"
        received += chunk
    head, _, rest = received.partition(b"\r\n\r\n")
    length = int(dict(answer_head(head))["content-length"])
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, f"closed inside a response body: {received[:300]!r}"
        rest += chunk
    return head + b"\r\n\r\n" + rest[:length], rest[length:]


def answer_head(head: bytes) -> list[tuple[str, str]]:
    _, *lines = head.decode().split("\r\n")
    return [tuple(line.lower().split(": ", 1)) for line in lines]  # type: ignore[misc]


def second_request(
    port: int, first: bytes, second: bytes, *, together: bool
) -> tuple[bytes, float]:
    """Send ``first`` (answered 200 on a kept-alive connection) then ``second``, in one write
    (pipelined) or after the first answer; what the server sends after the first answer until it
    closes, and the seconds from sending ``second`` to the close."""
    with socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT + 8) as sock:
        started = time.monotonic()
        sock.sendall(first + second if together else first)
        response, rest = read_response(sock)
        assert response.startswith(b"HTTP/1.1 200 "), response[:300]
        assert b"connection: close" not in response.lower()
        if not together:
            started = time.monotonic()
            sock.sendall(second)
        return rest + read_until_closed(sock), time.monotonic() - started


HALF_THE_HEADERS = b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Half: "
SHORT_BODY = (
    b"POST /chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b'Content-Length: 1000\r\n\r\n{"messages": ['
)
# A blank line between requests is allowed (RFC 9112 2.2) and starts no request, but it used to
# cancel the keep-alive timer: the connection then stayed open for good. (Sent in the same packet
# as a request, the parser cannot tell it from that request's end: the keep-alive timer closes it.)
BLANK_LINE = b"\r\n"
SECOND_REQUESTS = [
    pytest.param(HALF_THE_HEADERS, False, id="half-its-headers-after-the-answer"),
    pytest.param(HALF_THE_HEADERS, True, id="half-its-headers-pipelined"),
    pytest.param(SHORT_BODY, False, id="a-short-body-after-the-answer"),
    pytest.param(SHORT_BODY, True, id="a-short-body-pipelined"),
    pytest.param(BLANK_LINE, False, id="only-a-blank-line-after-the-answer"),
]


@pytest.mark.parametrize(("second", "together"), SECOND_REQUESTS)
def test_a_second_request_that_stalls_is_408_after_the_read_timeout(
    server: Server, second: bytes, together: bool
) -> None:
    before = server.upstream.snapshot()["requests"]
    raw, took = second_request(server.port, KEPT_ALIVE_GET, second, together=together)
    refused(raw, 408, "request_timeout")
    assert READ_TIMEOUT * 0.9 < took < READ_TIMEOUT + 3, took
    assert server.upstream.snapshot()["requests"] == before


def test_a_second_request_that_arrives_in_time_is_served(server: Server) -> None:
    """The deadline of the first request is not carried over to the second."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(KEPT_ALIVE_GET)
        first, rest = read_response(sock)
        time.sleep(READ_TIMEOUT * 0.6)
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")
        time.sleep(READ_TIMEOUT * 0.6)
        sock.sendall(b"Connection: close\r\n\r\n")
        second, _ = read_response(sock, rest)
    assert first.startswith(b"HTTP/1.1 200 ") and second.startswith(b"HTTP/1.1 200 "), second


def test_a_stalled_pipelined_request_does_not_cut_the_answer_before_it(server: Server) -> None:
    """The first request is whole and its answer is slower than the read timeout: it is answered,
    and only then is the second one, whose head never ends, refused."""
    body = json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode()
    first = (
        "POST /chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    server.upstream.queue(1, ttft=READ_TIMEOUT * 1.5)
    raw, took = second_request(server.port, first, HALF_THE_HEADERS, together=True)
    refused(raw, 408, "request_timeout")
    assert took < READ_TIMEOUT * 2.5 + 3, took
