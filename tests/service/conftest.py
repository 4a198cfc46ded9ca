"""Service fixtures: the two deployments (Postgres + Redis, embedded SQLite + filesystem broker), an API client,
a small student and small slices of the example data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service import schema
from service.app import create_app
from service.db import dispose_engines
from service.settings import Settings, get_settings
from tests.services import ensure_postgres, ensure_redis

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_DATA = ROOT / "examples" / "data" / "refinements.jsonl"
# Four samples per chunk: the small test jobs still span several chunk tasks.
TEST_CHUNK_SIZE = 4


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A fresh test database on the real Postgres, migrated to head by Alembic."""
    url = ensure_postgres()
    schema.upgrade(url)
    dispose_engines()
    return url


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The real Redis broker (the tests' own database, emptied)."""
    return ensure_redis()


@dataclass(frozen=True)
class Deployment:
    """One way to run the service, with the settings every process of the test must share."""

    name: str
    settings: Settings
    env: dict[str, str]


def configure(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Settings:
    """Point this process's settings (and any child process started from it) at `env`."""
    for key in ("FRONTIER_DATABASE_URL", "FRONTIER_BROKER_URL"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    dispose_engines()
    return get_settings()


@pytest.fixture(params=["postgres", "embedded"])
def deployment(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Deployment]:
    """Each deployment in turn: Postgres + Redis, then the embedded SQLite + filesystem broker default."""
    env = {"FRONTIER_DATA_DIR": str(tmp_path / "data"), "FRONTIER_CHUNK_SIZE": str(TEST_CHUNK_SIZE)}
    if request.param == "postgres":
        env["FRONTIER_DATABASE_URL"] = request.getfixturevalue("postgres_url")
        env["FRONTIER_BROKER_URL"] = request.getfixturevalue("redis_url")
    settings = configure(monkeypatch, env)
    if request.param == "embedded":
        schema.upgrade()
    yield Deployment(request.param, settings, env)
    dispose_engines()
    get_settings.cache_clear()


@pytest.fixture
def client(deployment: Deployment) -> Iterator[TestClient]:
    """An HTTP client on a fresh app for the current deployment."""
    with TestClient(create_app()) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def small_student(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight GPT-2 checkpoint built in seconds (scores are real numbers, not meaningful ones)."""
    from tests.workers.scoring.builders import build_random_student

    return build_random_student(tmp_path_factory.mktemp("small-student"), max_length=512)


def example_records(n: int, start: int = 0) -> list[dict[str, object]]:
    """`n` records of the example dataset."""
    lines = EXAMPLE_DATA.read_text(encoding="utf-8").splitlines()[start : start + n]
    return [json.loads(line) for line in lines]


def as_jsonl(records: list[dict[str, object]]) -> bytes:
    """Records as JSONL bytes."""
    return b"".join(json.dumps(record).encode() + b"\n" for record in records)
