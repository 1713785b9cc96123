"""The ASGI application built from the environment, for ``gunicorn`` (see ``gunicorn.conf.py``).

Settings are checked once in the gunicorn master before any worker starts, so a bad variable stops
the server with one line instead of every worker failing in turn.
"""

from __future__ import annotations

from chatbackend.app import create_app

app = create_app()
