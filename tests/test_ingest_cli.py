"""``python -m chatbackend ingest DIR``: a real process, the embedded embedder, a progress bar."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from chatbackend.app import create_app
from chatbackend.settings import load_settings


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "models"


def test_ingest_a_folder(database_url: str, tmp_path: Path, model_cache: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "octopus.md").write_text("# Octopus\n\nAn octopus has three hearts and blue blood.\n")
    (docs / "sub" / "bees.html").write_text(
        "<html><head><title>Bees</title></head><body><p>Honeybees dance.</p></body></html>"
    )
    (docs / "tides.txt").write_text("Tides follow the pull of the Moon.")
    (docs / "empty.txt").write_text("   \n")
    (docs / "paper.pdf").write_bytes(b"%PDF-1.7")
    env = {
        **{k: v for k, v in os.environ.items() if k in ("PATH", "HOME")},
        "DATABASE_URL": database_url,
        "MODEL_CACHE_DIR": str(model_cache),
    }
    done = subprocess.run(
        [sys.executable, "-m", "chatbackend", "ingest", str(docs)],
        env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ingested 3 documents (3 chunks)")
    assert "skipped 1 empty or unreadable" in done.stdout
    assert "ingest: 100%" in done.stderr and "4/4" in done.stderr  # tqdm's bar, on stderr

    settings = load_settings(database_url=database_url, model_cache_dir=model_cache)
    with TestClient(create_app(settings)) as api:
        listed = api.get("/documents").json()["data"]
        assert {d["title"] for d in listed} == {"Octopus", "Bees", "tides"}
        assert {d["source"] for d in listed} == {"octopus.md", "sub/bees.html", "tides.txt"}
        hit = api.post("/search", json={"query": "which animal has three hearts"}).json()
        assert "three hearts" in hit["results"][0]["text"]


def test_ingest_refuses_a_missing_directory(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "chatbackend", "ingest", str(tmp_path / "nope")],
        env={"PATH": os.environ["PATH"], "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite"},
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == f"chatbackend: {tmp_path / 'nope'} is not a directory"
