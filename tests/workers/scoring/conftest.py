from __future__ import annotations

import pytest

from tests.workers.scoring.builders import build_random_student
from workers.scoring import Student, get_student


@pytest.fixture(scope="session", params=["gpt2", "llama"])
def random_student(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Student:
    """A random-weight student of each architecture family (learned and rotary positions)."""
    directory = build_random_student(tmp_path_factory.mktemp(request.param), arch=request.param)
    return get_student(directory, device="cpu", precision="float32")
