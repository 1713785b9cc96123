"""Gunicorn settings for production: the container's CMD is ``gunicorn -c gunicorn.conf.py``.

Environment (all optional):
  HOST              bind address (default 0.0.0.0; tests use 127.0.0.1)
  PORT              bind port (default 8000, the Container App's ingress target port)
  WEB_CONCURRENCY   worker processes (default: the CPUs granted to the container, see serving.py)
  GRACEFUL_TIMEOUT  seconds in-flight answers get to finish after SIGTERM (default 120; keep it
                    below the Container App's terminationGracePeriodSeconds)

The application's own variables are read by chatbackend.settings; they are validated here once,
in the master, so a bad one stops the server with one line before any worker starts.
"""

from __future__ import annotations

import os
import sys

from chatbackend.serving import granted_cpus
from chatbackend.settings import SettingsError, load_settings

DEFAULT_PORT = 8000

wsgi_app = "chatbackend.asgi:app"
worker_class = "chatbackend.serving.Worker"
bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', DEFAULT_PORT)}"
workers = int(os.environ.get("WEB_CONCURRENCY") or granted_cpus())
# A streamed answer may take minutes (CHAT_RESPONSE_TIMEOUT); on SIGTERM each worker stops
# accepting and lets open answers finish for this long before it is killed.
graceful_timeout = int(os.environ.get("GRACEFUL_TIMEOUT", "120"))
# Longer than common proxy idle timeouts (60 s): the ingress, not us, closes idle connections,
# so it never sends a request on a connection we are closing.
keepalive = 75
# Request telemetry is the app's; a gunicorn access line per request costs CPU under load.
accesslog = None
reload = False


def on_starting(_server: object) -> None:
    """Refuse to start on a missing or contradictory variable, naming it in one line."""
    try:
        load_settings()
    except SettingsError as exc:
        print(f"chatbackend: {exc}", file=sys.stderr)  # noqa: T201 - the line an operator reads
        sys.exit(2)

