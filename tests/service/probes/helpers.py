"""What the probe service tests share: a succeeded job, the tiny budget, row counts, and tasks run in-process."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.db import session_scope
from service.models import ProbeRun, ProbeTask
from tests.service.test_jobs_api import create, run_job
from tests.services import example_records
from workers import probes

N_SAMPLES = 16
TEACHERS = ("teacher-far", "teacher-near", "teacher-terse")
CONDITIONS = [*(f"teacher:{teacher}" for teacher in TEACHERS), "original", "union"]
# The brief's tiny budget: a three-point curve (steps 0, 2, 4) per condition in a fraction of a second on a CPU.
TINY_BUDGET: dict[str, Any] = {
    "steps": 4,
    "eval_every": 2,
    "held_out": 4,
    "max_new_tokens": 8,
    "batch_size": 4,
    "warmup_steps": 1,
}
# The baselines train too, so the tests see every kind of condition (a default run trains only the teachers).
TINY: dict[str, Any] = {**TINY_BUDGET, "baselines": True}


def succeeded_job(client: TestClient, student: Path, n: int = N_SAMPLES, start: int = 0) -> str:
    """A job over `n` example records, created over HTTP and run to `succeeded` in-process; returns its id."""
    job = create(client, student, example_records(n, start=start))
    run_job(job)
    assert client.get(f"/v1/jobs/{job['id']}").json()["status"] == "succeeded"
    return str(job["id"])


def probe_rows() -> dict[str, int]:
    """Rows in probe_runs and probe_tasks."""
    with session_scope() as session:
        return {
            model.__tablename__: int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (ProbeRun, ProbeTask)
        }


def run_tasks(probe: dict[str, Any]) -> list[bool]:
    """Do what the workers would: run every (condition, seed) of a probe in-process; True where it finished the run."""
    return [
        probes.run_probe_task(int(probe["id"]), condition, seed)
        for condition in probe["conditions"]
        for seed in range(probe["budget"]["seeds"])
    ]


def tasks_of(probe_id: int) -> list[ProbeTask]:
    """The probe's task rows, by (condition, seed)."""
    with session_scope() as session:
        statement = select(ProbeTask).where(ProbeTask.probe_run_id == probe_id)
        return list(session.scalars(statement.order_by(ProbeTask.condition, ProbeTask.seed)).all())


def job_uuid(job_id: str) -> uuid.UUID:
    """A job id as a UUID."""
    return uuid.UUID(job_id)
