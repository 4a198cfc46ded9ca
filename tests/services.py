"""Real Postgres and Redis for the tests: reach them, start them if installed but stopped, else fail loudly.

Never skips: a CI run without the services it needs must go red, not quietly test less.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
import redis

POSTGRES_ADMIN_DSN = os.environ.get("FRONTIER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("FRONTIER_TEST_REDIS", "redis://127.0.0.1:6379")
TEST_DATABASE = "frontier_test"
# A Redis database of its own so tests never touch another tenant's queues on a shared server.
TEST_REDIS_DB = 13


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
    """The real Redis, with the tests' database emptied; returns its broker URL."""
    _ensure("Redis", _redis_up, _start_redis)
    url = f"{REDIS_URL}/{TEST_REDIS_DB}"
    redis.Redis.from_url(url).flushdb()
    return url
