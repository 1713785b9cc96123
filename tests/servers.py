"""Run an ASGI app under a real uvicorn server on 127.0.0.1, for tests that need real sockets."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from starlette.types import ASGIApp


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(app: ASGIApp, *, timeout: float = 30.0) -> Iterator[str]:
    """Serve ``app`` (lifespan included) in a thread; yield its base URL; shut it down after."""
    with serve_with_state(app, timeout=timeout) as (url, _):
        yield url


@contextmanager
def serve_with_state(app: ASGIApp, *, timeout: float = 30.0) -> Iterator[tuple[str, Any]]:
    """``serve``, also yielding the state the app's lifespan built (its service, settings)."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", server.lifespan.state
    finally:
        server.should_exit = True
        thread.join(timeout)
