"""`frontier curate` as the quickstart runs it: the job's progress and result, and nothing that reads as a warning."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

NOISE = ("Warning", "WARNING", "No hostname")


def test_a_first_run_prints_progress_and_result_and_no_warnings(
    student_dir: Path, example_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "quickstart"
    # The embedded default, as on a fresh machine: no FRONTIER_* settings from the test session.
    env = {key: value for key, value in os.environ.items() if not key.startswith("FRONTIER_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "frontier.cli",
            "curate",
            str(example_data),
            "--student",
            str(student_dir),
            "--out",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == str(out.resolve())
    said = result.stderr.splitlines()
    total = sum(1 for _ in example_data.open(encoding="utf-8"))
    assert f"frontier curate: scored {total}/{total}" in said, result.stderr
    assert any(line.startswith("frontier curate: {'retained': ") for line in said), result.stderr
    noisy = [line for line in (result.stdout + result.stderr).splitlines() if any(word in line for word in NOISE)]
    assert noisy == [], result.stderr
