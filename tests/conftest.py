"""Fixtures shared across the suite: the example student, built by the repo itself (never downloaded)."""

from __future__ import annotations

from pathlib import Path

import pytest

from examples.student import build_student, default_student_dir
from tests.workers.scoring.builders import build_random_student


@pytest.fixture(scope="session")
def student_dir() -> Path:
    """The trained tiny example student (built once, cached under .cache/students/tiny)."""
    return build_student(default_student_dir("tiny"), shape="tiny")


@pytest.fixture(scope="session")
def example_data() -> Path:
    """The example dataset of teacher refinements."""
    return Path(__file__).resolve().parent.parent / "examples" / "data" / "refinements.jsonl"


@pytest.fixture(scope="session")
def gpt2_student_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight GPT-2 checkpoint directory, built in a second (for loader and CLI tests)."""
    return build_random_student(tmp_path_factory.mktemp("gpt2-dir"), arch="gpt2")
