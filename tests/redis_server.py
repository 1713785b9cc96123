"""A real Redis (Debian's ``redis-server``) for tests: a private process on 127.0.0.1 or a socket.

``.ci/run`` installs the package; the tests start and stop the server themselves, with
persistence off and their own directory, so nothing of a machine's own Redis is touched.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from tests.servers import free_port


@contextmanager
def redis_server(directory: Path, *, unix_socket: bool = False) -> Iterator[str]:
    """Run ``redis-server`` until the block ends; yield its URL (``redis://`` or ``unix://``)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed: apt-get install redis-server")
    if unix_socket:
        socket_path = directory / "redis.sock"
        listen = ["--port", "0", "--unixsocket", str(socket_path)]
        url = f"unix://{socket_path}"
    else:
        port = free_port()
        listen = ["--port", str(port), "--bind", "127.0.0.1"]
        url = f"redis://127.0.0.1:{port}/0"
    command = [binary, *listen, "--save", "", "--appendonly", "no", "--dir", str(directory)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        _wait_for(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def _wait_for(url: str, process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=0.2)
    deadline = time.monotonic() + timeout
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {process.returncode}")
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
    finally:
        client.close()
