"""The process boundaries are enforced by `lint-imports` ([tool.importlinter] in pyproject.toml), not by hope:
the real tree keeps every contract, and a tree with one forbidden import fails with that contract named."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "service", "workers", "frontier")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _copy_tree(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "static"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_tree_keeps_every_contract() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("service/deps.py", "import torch", "The API process imports neither the workers nor torch"),
        ("service/deps.py", "import workers.curation", "The API process imports neither the workers nor torch"),
        ("core/files.py", "import service.settings", "The shared core imports nothing of ours"),
        ("workers/scoring/packing.py", "import sqlalchemy", "The scoring and probe engines import neither Celery"),
        ("workers/probing/data.py", "import celery", "The scoring and probe engines import neither Celery"),
        ("workers/curation.py", "import frontier.client", "Nothing imports the CLI"),
    ],
)
def test_a_forbidden_import_fails_lint(tmp_path: Path, module: str, line: str, contract: str) -> None:
    root = _copy_tree(tmp_path)
    target = root / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{line}  # deliberate violation\n", encoding="utf-8")
    result = _lint(root)
    assert result.returncode != 0
    assert f"{contract}" in result.stdout
    assert "BROKEN" in result.stdout
