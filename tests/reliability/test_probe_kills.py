"""SIGKILL a real worker in the middle of a probe task; a worker started afterwards re-runs that task through the
sweep, and its result is stored exactly once.

The whole worker is killed (main process and pool): nothing rejects the message, which stays unacknowledged in
Redis (handed out again only after its one-hour visibility timeout). What recovers the task is the sweep of the
next worker: a `running` task with no new curve point for FRONTIER_PROBE_TIMEOUT_S goes back to `pending` and
is re-sent.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.reliability.conftest import Stack, create_job, job_finished, wait_until

pytestmark = pytest.mark.slow

N_SAMPLES = 16
WAIT_S = 300.0
# Long enough per task (tens of curve points) to be caught mid-run; short enough for five tasks on a CPU.
BUDGET = {"steps": 20, "eval_every": 2, "held_out": 4, "max_new_tokens": 8, "batch_size": 4, "warmup_steps": 1}
# Above the slowest gap between two curve points of a fresh pool process (it imports torch and loads the student
# before its first point), so only the killed task goes silent for that long.
PROBE_TIMEOUT_S = 15


@dataclass(frozen=True)
class TaskState:
    """One probe task as the database has it."""

    condition: str
    seed: int
    status: str
    attempts: int
    progress_step: int
    curve: list[dict[str, Any]]
    updated_at: datetime | None


def probe_tasks(stack: Stack, probe_id: int) -> list[TaskState]:
    """The probe's tasks by (condition, seed)."""
    rows = stack.query(
        "SELECT condition, seed, status, attempts, progress_step, curve, updated_at FROM probe_tasks "
        "WHERE probe_run_id = %s ORDER BY condition, seed",
        probe_id,
    )
    return [TaskState(*row) for row in rows]


def probe_status(stack: Stack, probe_id: int) -> str | None:
    """The run's status once it has finished, else None."""
    [(status,)] = stack.query("SELECT status FROM probe_runs WHERE id = %s", probe_id)
    return str(status) if status in {"succeeded", "failed", "cancelled"} else None


def mid_run(stack: Stack, probe_id: int) -> TaskState | None:
    """The task being trained, once it has measured a curve point past step 0 (and has points left to go)."""
    running = [task for task in probe_tasks(stack, probe_id) if task.status == "running"]
    if len(running) == 1 and 0 < running[0].progress_step < BUDGET["steps"] - BUDGET["eval_every"]:
        return running[0]
    return None


def test_a_probe_task_killed_mid_run_is_rerun_by_the_sweep_and_stored_once(
    stack: Stack, client: TestClient, small_student: Path
) -> None:
    # The sweeper is off in the first worker: it is about to die, and its sweep must not be what recovers the task.
    first = stack.start_worker(SWEEP_INTERVAL_S="0")
    job_id = create_job(client, small_student, N_SAMPLES, start=96)
    assert wait_until(lambda: job_finished(stack, job_id), WAIT_S, "the job to finish") == "succeeded", first.tail()
    # With the baselines: five conditions, so a kill lands among several running and queued tasks.
    created = client.post(f"/v1/jobs/{job_id}/probes", json={**BUDGET, "baselines": True})
    assert created.status_code == 202, created.text
    probe_id = int(created.json()["id"])

    killed = wait_until(lambda: mid_run(stack, probe_id), WAIT_S, "a probe task mid-run")
    first.kill()
    killed_at = datetime.now(UTC)
    time.sleep(0.5)
    [stuck] = [task for task in probe_tasks(stack, probe_id) if task.condition == killed.condition]
    assert (stuck.status, stuck.attempts) == ("running", 1)
    assert stuck.progress_step >= killed.progress_step > 0
    points_at_kill = len(stuck.curve)

    second = stack.start_worker(PROBE_TIMEOUT_S=str(PROBE_TIMEOUT_S), SWEEP_INTERVAL_S="0.5")
    status = wait_until(lambda: probe_status(stack, probe_id), WAIT_S, "the probe run to finish")
    error = stack.query("SELECT error FROM probe_runs WHERE id = %s", probe_id)
    assert status == "succeeded", f"{error}\n{second.tail()}"

    tasks = probe_tasks(stack, probe_id)
    assert len(tasks) == 5
    assert {task.status for task in tasks} == {"done"}
    # The killed task ran twice and was stored once: one row, its curve measured afresh, one point per step.
    [rerun] = [task for task in tasks if (task.condition, task.seed) == (killed.condition, killed.seed)]
    assert rerun.attempts == 2
    steps = [point["step"] for point in rerun.curve]
    assert steps == list(range(0, BUDGET["steps"] + 1, BUDGET["eval_every"]))
    assert rerun.progress_step == BUDGET["steps"]
    assert all(task.attempts == 1 for task in tasks if task is not rerun)
    [(count,)] = stack.query(
        "SELECT count(*) FROM probe_tasks WHERE probe_run_id = %s AND condition = %s AND seed = %s",
        probe_id,
        killed.condition,
        killed.seed,
    )
    assert count == 1
    assert f"sweep: probe {probe_id}" in second.log.read_text()

    probe = client.get(f"/v1/jobs/{job_id}/probes/{probe_id}").json()
    assert probe["progress"]["fraction"] == 1
    assert probe["cost"]["steps"] == 5 * BUDGET["steps"]
    result = next(result for result in probe["results"] if result["condition"] == killed.condition)
    assert result["seeds"][0]["cost"]["steps"] == BUDGET["steps"]
    assert rerun.updated_at is not None
    recovered_s = round((rerun.updated_at - killed_at).total_seconds(), 2)
    print(
        json.dumps(
            {
                "test": "probe task killed mid-run",
                "condition": killed.condition,
                "killed_at_step": killed.progress_step,
                "points_at_kill": points_at_kill,
                "probe_timeout_s": PROBE_TIMEOUT_S,
                "recovered_s": recovered_s,
            }
        )
    )
