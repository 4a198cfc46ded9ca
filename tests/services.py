"""Real Postgres and Redis for the tests (reached, started if installed but stopped, else a loud failure; never
skipped), the two deployments as fixtures, a small student and slices of the example data.

Fixtures are defined here once and re-exported by the conftest of each test package that needs them.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from fastapi.testclient import TestClient

from service import migrate
from service.app import create_app
from service.db import dispose_engines
from service.settings import Settings, get_settings

POSTGRES_ADMIN_DSN = os.environ.get("FRONTIER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("FRONTIER_TEST_REDIS", "redis://127.0.0.1:6379")
# Names of this test session's own: two sessions on one machine (a developer and CI, or parallel checkouts)
# must neither drop each other's database nor have their workers take each other's chunk tasks.
TEST_DATABASE = f"frontier_test_{os.getpid()}"
TEST_REDIS_DB = 13
TEST_QUEUE = f"gpu-test-{os.getpid()}"
# Where ingest tasks go (Settings.ingest_queue_name); the tests' worker consumes both (workers.local).
TEST_INGEST_QUEUE = f"{TEST_QUEUE}.ingest"


def _postgres_up() -> bool:
    try:
        with psycopg.connect(POSTGRES_ADMIN_DSN, connect_timeout=2) as connection:
            connection.execute("SELECT 1")
        return True
    except psycopg.OperationalError:
        return False


def _redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def _start_postgres() -> None:
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    for version in versions:
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
            check=False,
            capture_output=True,
            timeout=60,
        )


def _start_redis() -> None:
    Path("/var/lib/redis").mkdir(parents=True, exist_ok=True)
    Path("/var/log/redis").mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "redis-server",
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "-::1",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            "/var/lib/redis",
            "--logfile",
            "/var/log/redis/ci.log",
        ],
        check=False,
        capture_output=True,
        timeout=60,
    )


def _ensure(name: str, up: Callable[[], bool], start: Callable[[], None]) -> None:
    if up():
        return
    try:
        start()
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.fail(f"{name} is not reachable and could not be started: {exc}", pytrace=False)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if up():
            return
        time.sleep(0.5)
    pytest.fail(
        f"{name} is not reachable (tried to start it). These tests need a real {name}: "
        "install it or point FRONTIER_TEST_POSTGRES / FRONTIER_TEST_REDIS at one.",
        pytrace=False,
    )


def ensure_postgres() -> str:
    """A fresh, migrated test database on the real Postgres; returns its SQLAlchemy URL."""
    _ensure("Postgres", _postgres_up, _start_postgres)
    with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {TEST_DATABASE} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {TEST_DATABASE}")
    base = POSTGRES_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{TEST_DATABASE}"


def ensure_redis() -> str:
    """The real Redis (the tests use a queue named for this session); returns its broker URL."""
    _ensure("Redis", _redis_up, _start_redis)
    url = f"{REDIS_URL}/{TEST_REDIS_DB}"
    redis.Redis.from_url(url).delete(TEST_QUEUE, TEST_INGEST_QUEUE)
    return url


def drop_postgres() -> None:
    """Drop this session's test database."""
    with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {TEST_DATABASE} WITH (FORCE)")


ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_DATA = ROOT / "examples" / "data" / "refinements.jsonl"
# Four samples per chunk: the small test jobs still span several chunk tasks.
TEST_CHUNK_SIZE = 4


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh test database on the real Postgres, migrated to head by Alembic (dropped afterwards)."""
    url = ensure_postgres()
    migrate.upgrade(url)
    dispose_engines()
    yield url
    dispose_engines()
    drop_postgres()


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
    """Point this process's settings (and any child process started from it) at `env`.

    Authentication is off unless `env` turns it on: the tests that are about API keys say so (test_auth.py).
    """
    env = {"FRONTIER_AUTH": "none", **env}
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
    env = {
        "FRONTIER_DATA_DIR": str(tmp_path / "data"),
        "FRONTIER_CHUNK_SIZE": str(TEST_CHUNK_SIZE),
        "FRONTIER_GPU_QUEUE": TEST_QUEUE,
    }
    if request.param == "postgres":
        env["FRONTIER_DATABASE_URL"] = request.getfixturevalue("postgres_url")
        env["FRONTIER_BROKER_URL"] = request.getfixturevalue("redis_url")
    settings = configure(monkeypatch, env)
    if request.param == "embedded":
        migrate.upgrade()
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


def example_records(n: int, start: int = 0) -> list[dict[str, Any]]:
    """`n` records of the example dataset."""
    lines = EXAMPLE_DATA.read_text(encoding="utf-8").splitlines()[start : start + n]
    return [json.loads(line) for line in lines]


def as_jsonl(records: list[dict[str, object]]) -> bytes:
    """Records as JSONL bytes."""
    return b"".join(json.dumps(record).encode() + b"\n" for record in records)
