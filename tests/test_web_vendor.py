"""The committed browser libraries are what ``make web-vendor`` makes from package-lock.json."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from chatbackend.webui import WEB_DIR

ROOT = Path(__file__).resolve().parent.parent
VENDOR = WEB_DIR / "vendor"
IMPORT = re.compile(r"""^\s*(?:import|export)\b[^;'"]*?\bfrom\s*["']([^"']+)["']""", re.M)


def test_vendored_files_match_the_npm_packages(tmp_path: Path) -> None:
    subprocess.run(
        ["make", "--no-print-directory", "--silent", "web-vendor", f"WEB_VENDOR={tmp_path}"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    made = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    committed = {path.name: path.read_bytes() for path in VENDOR.iterdir()}
    assert sorted(made) == sorted(committed)
    assert [name for name in made if made[name] != committed[name]] == []


def test_every_library_has_its_licence_and_no_import_leaves_the_package() -> None:
    names = {path.name for path in VENDOR.iterdir()}
    for library in ("ai-chat-protocol", "marked", "dompurify"):
        assert f"{library}.LICENSE.txt" in names
    assert "MIT" in (VENDOR / "ai-chat-protocol.LICENSE.txt").read_text()
    for script in [*VENDOR.glob("*.js"), *WEB_DIR.glob("*.js")]:
        imported = IMPORT.findall(script.read_text())
        assert [name for name in imported if not name.startswith("./")] == [], script.name
    assert IMPORT.findall((VENDOR / "ai-chat-protocol.js").read_text()) == []
