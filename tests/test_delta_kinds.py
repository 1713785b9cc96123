"""Adding a kind of delta is a type error until every consumer handles it.

The package is copied, a new delta class is added to the ``Delta`` union of the copy, and
``mypy --strict`` must then fail in the consumers (the answer owner and the HTTP stream), which
match deltas exhaustively with ``assert_never``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "chatbackend"
NEW_KIND = '''

@dataclass(frozen=True, slots=True)
class Citation:
    """A delta kind no consumer knows yet."""

    source: str


Delta = TextDelta | Finish | Citation
'''


@pytest.mark.timeout(300)
def test_an_unhandled_delta_kind_fails_the_type_check(tmp_path: Path) -> None:
    copy = tmp_path / "chatbackend"
    shutil.copytree(SRC, copy, ignore=shutil.ignore_patterns("__pycache__", "web"))
    base = copy / "providers" / "base.py"
    source = base.read_text()
    assert "\nDelta = TextDelta | Finish\n" in source
    base.write_text(source.replace("\nDelta = TextDelta | Finish\n", NEW_KIND))
    config = SRC.parent.parent / "pyproject.toml"
    mypy = [sys.executable, "-m", "mypy", "--config-file", str(config), "--no-incremental"]
    result = subprocess.run(
        [*mypy, "-p", "chatbackend"], cwd=tmp_path, capture_output=True, text=True, timeout=280
    )
    assert result.returncode == 1, result.stdout + result.stderr
    unhandled = [line for line in result.stdout.splitlines() if "assert_never" in line]
    files = {line.split(":", 1)[0] for line in unhandled}
    assert {"chatbackend/chat.py", "chatbackend/streaming.py"} <= files, result.stdout
