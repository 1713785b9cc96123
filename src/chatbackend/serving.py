"""Production serving under gunicorn: the worker class and the CPU count that sizes the workers.

``gunicorn.conf.py`` at the repository root imports both. ``os.cpu_count()`` is the host's count;
a container limited to half a CPU on a 64-core node would start 64 workers, so the default comes
from the CPUs the container is actually granted.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from uvicorn_worker import UvicornWorker

from chatbackend.httpprotocol import protocol_class
from chatbackend.settings import load_settings

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
_SHUTDOWN_MARGIN_SECONDS = 5


def granted_cpus(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """CPUs this process may use: the cgroup v2 quota (rounded up), else the affinity mask."""
    affinity = len(os.sched_getaffinity(0))
    quota = _cgroup_quota(cpu_max)
    if quota is None:
        return affinity
    return max(1, min(affinity, math.ceil(quota)))


def _cgroup_quota(cpu_max: Path) -> float | None:
    """``quota period`` from ``cpu.max`` as CPUs; ``None`` when absent or ``max`` (no limit)."""
    try:
        fields = cpu_max.read_text().split()
    except OSError:
        return None
    if len(fields) != 2 or fields[0] == "max":
        return None
    try:
        quota, period = int(fields[0]), int(fields[1])
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


class Worker(UvicornWorker):  # type: ignore[misc]  # uvicorn-worker ships no type information
    """uvicorn with uvloop and httptools; in-flight requests get the graceful timeout to finish.

    uvicorn waits for open connections on SIGTERM; it is told to stop waiting a little before
    gunicorn's ``graceful_timeout`` would SIGKILL the worker, so the lifespan still closes the
    upstream clients. httptools runs with the header and read-time limits from the settings
    (``chatbackend.httpprotocol``), as under ``python -m chatbackend``.
    """

    CONFIG_KWARGS = {"loop": "uvloop", "http": "httptools"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        graceful = self.cfg.graceful_timeout
        self.config.timeout_graceful_shutdown = max(1, graceful - _SHUTDOWN_MARGIN_SECONDS)
        # The master checked the settings before forking (gunicorn.conf.py's on_starting).
        self.config.http = protocol_class(load_settings())
