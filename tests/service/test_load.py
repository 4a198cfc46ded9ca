"""A short bounded load test on loopback: a real API process, a real prefork worker, Postgres and Redis.

32 closed-loop clients create two-sample jobs, poll them and export them for a few seconds; afterwards every
accepted job must have completed with exact counts. The longer form is `python bench/load.py`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bench.load import local_deployment, run_load

pytestmark = pytest.mark.slow

CLIENTS = 32
SECONDS = 8.0


def test_load_on_loopback_loses_nothing(postgres_url: str, redis_url: str, small_student: Path, tmp_path: Path) -> None:
    with local_deployment(postgres_url, redis_url, tmp_path / "data") as url:
        report = asyncio.run(run_load(url, str(small_student), clients=CLIENTS, seconds=SECONDS))
    print("\n" + report.summary())
    assert report.errors == []
    assert report.mismatches == []
    assert len(report.jobs) >= CLIENTS  # every client got at least one job accepted
    assert report.checked == len(report.jobs)
    assert report.latencies["poll"], "the clients polled"
