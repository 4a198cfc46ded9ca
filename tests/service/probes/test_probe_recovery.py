"""A probe task's life on both deployments, driven directly: results stored exactly once, a stale start's points
dropped, engine errors failing the run with their cause, and the sweep re-queuing or failing stuck tasks."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from service.db import session_scope
from service.models import ProbeRun, ProbeTask
from service.probes import lifecycle
from tests.service.probes.helpers import CONDITIONS, TINY, succeeded_job, tasks_of
from tests.service.test_jobs_api import queued
from tests.services import Deployment
from workers import probes

OUTCOME: dict[str, Any] = {
    "curve": [{"step": 0, "loss": 2.0, "exact_match": 0.0}, {"step": 4, "loss": 1.5, "exact_match": 0.25}],
    "final": {"step": 4, "loss": 1.5, "exact_match": 0.25},
    "cost": {
        "method": "full",
        "parameters": 10,
        "trainable_parameters": 10,
        "examples": 3,
        "steps": 4,
        "tokens": 99,
        "train_seconds": 0.1,
        "eval_seconds": 0.1,
        "seconds": 0.2,
    },
    "completions": [{"answer": "5", "completion": "Answer: 5"}],
}


def new_probe(client: TestClient, student: Path, **params: Any) -> tuple[str, dict[str, Any]]:
    job_id = succeeded_job(client, student)
    created = client.post(f"/v1/jobs/{job_id}/probes", json={**TINY, **params})
    assert created.status_code == 202, created.text
    return job_id, created.json()


def finish(probe_id: int, condition: str, outcome: dict[str, Any] = OUTCOME) -> bool:
    """Claim a task and store `outcome` as its result (the engine's part is tested through run_probe_task)."""
    with session_scope() as session:
        assert lifecycle.claim_probe_task(session, probe_id, condition, 0, max_attempts=3, timeout_s=60) is not None
        return lifecycle.record_probe_result(session, probe_id, condition, 0, outcome)


def age(probe_id: int, seconds: float) -> None:
    """Move the run's and its tasks' timestamps `seconds` into the past (as if that long had passed)."""
    with session_scope() as session:
        back = timedelta(seconds=seconds)
        run = session.get(ProbeRun, probe_id)
        assert run is not None
        run.created_at -= back
        for task in session.scalars(select(ProbeTask).where(ProbeTask.probe_run_id == probe_id)):
            for column in ("started_at", "updated_at", "queued_at", "finished_at"):
                moment = getattr(task, column)
                if moment is not None:
                    setattr(task, column, moment - back)


def test_a_result_is_stored_exactly_once_and_a_stale_start_is_ignored(
    deployment: Deployment, client: TestClient, small_student: Path
) -> None:
    _, probe = new_probe(client, small_student)
    probe_id, condition = probe["id"], CONDITIONS[0]
    with session_scope() as session:
        first = lifecycle.claim_probe_task(session, probe_id, condition, 0, max_attempts=3, timeout_s=60)
    assert first is not None
    assert first.attempt == 1
    assert first.examples
    assert len(first.eval_items) == 4
    assert first.budget.steps == 4
    with session_scope() as session:
        assert lifecycle.record_curve_point(session, probe_id, condition, 0, OUTCOME["curve"][0], attempt=1)
    # A duplicate delivery while the start is alive is dropped: hours of training are not restarted.
    with session_scope() as session:
        assert lifecycle.claim_probe_task(session, probe_id, condition, 0, max_attempts=3, timeout_s=60) is None
    # Redelivered once the start has been silent past the timeout (its worker is presumed dead): a second start
    # begins its curve again.
    age(probe_id, 61)
    with session_scope() as session:
        second = lifecycle.claim_probe_task(session, probe_id, condition, 0, max_attempts=3, timeout_s=60)
    assert second is not None
    assert second.attempt == 2
    with session_scope() as session:
        assert not lifecycle.record_curve_point(
            session, probe_id, condition, 0, {"step": 2, "loss": 9.0, "exact_match": 0.0}, attempt=1
        )
        assert lifecycle.should_stop(session, probe_id, condition, 0, attempt=1)
        assert not lifecycle.should_stop(session, probe_id, condition, 0, attempt=2)
    [task] = [task for task in tasks_of(probe_id) if task.condition == condition]
    assert (task.curve, task.progress_step, task.attempts) == ([], 0, 2)

    with session_scope() as session:
        assert lifecycle.record_probe_result(session, probe_id, condition, 0, OUTCOME) is False  # others still pending
    with session_scope() as session:
        changed = {**OUTCOME, "final": {"step": 4, "loss": 0.1, "exact_match": 1.0}}
        assert lifecycle.record_probe_result(session, probe_id, condition, 0, changed) is False
        assert lifecycle.fail_probe_task(session, probe_id, condition, 0, "late failure") is False
    [task] = [task for task in tasks_of(probe_id) if task.condition == condition]
    assert (task.status, task.final, task.cost, task.curve) == (
        "done",
        OUTCOME["final"],
        OUTCOME["cost"],
        OUTCOME["curve"],
    )
    assert (task.progress_step, task.completions, task.error) == (4, OUTCOME["completions"], None)

    # The last task to settle finishes the run.
    for other in CONDITIONS[1:]:
        with session_scope() as session:
            assert lifecycle.claim_probe_task(session, probe_id, other, 0, max_attempts=3, timeout_s=60) is not None
            finished = lifecycle.record_probe_result(session, probe_id, other, 0, OUTCOME)
        assert finished is (other == CONDITIONS[-1])
    body = client.get(f"/v1/jobs/{probe['job_id']}/probes/{probe_id}").json()
    assert body["status"] == "succeeded"
    assert body["progress"]["fraction"] == 1
    assert body["cost"] == {"steps": 20, "tokens": 495, "seconds": 1.0}
    assert body["results"][0]["exact_match"] == {"mean": 0.25, "sd": None}


def test_an_engine_error_fails_the_task_and_then_the_run_with_its_cause(
    deployment: Deployment, client: TestClient, small_student: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id, probe = new_probe(client, small_student)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("CUDA out of memory")

    import workers.probing

    monkeypatch.setattr(workers.probing, "run_probe", broken, raising=False)
    assert probes.run_probe_task(probe["id"], "union", 0) is False
    running = client.get(f"/v1/jobs/{job_id}/probes/{probe['id']}").json()
    # The other conditions still run: their results are worth keeping.
    assert running["status"] == "running"
    union = next(result for result in running["results"] if result["condition"] == "union")
    assert union["seeds"][0]["status"] == "failed"
    assert union["seeds"][0]["error"] == "RuntimeError: CUDA out of memory"
    monkeypatch.undo()
    finished = [finish(probe["id"], condition) for condition in CONDITIONS if condition != "union"]
    assert finished == [False, False, False, True]
    body = client.get(f"/v1/jobs/{job_id}/probes/{probe['id']}").json()
    assert body["status"] == "failed"
    assert body["error"] == "union seed 0: RuntimeError: CUDA out of memory"
    assert body["progress"]["tasks_done"] == 4
    for result in body["results"]:
        assert (result["exact_match"]["mean"] is None) is (result["condition"] == "union")


def test_the_sweep_requeues_a_silent_task_and_fails_it_out_of_attempts(
    deployment: Deployment, client: TestClient, small_student: Path
) -> None:
    job_id, probe = new_probe(client, small_student)
    probe_id, condition = probe["id"], "original"
    settings = deployment.settings.model_copy(update={"probe_timeout_s": 60.0, "probe_max_attempts": 2})
    with session_scope() as session:
        assert lifecycle.claim_probe_task(session, probe_id, condition, 0, max_attempts=2, timeout_s=60) is not None
    # Nothing stalled yet: the sweep leaves the run alone.
    assert probes.sweep_probes(settings) == []

    # Its worker died: no sign of life for longer than the timeout. The task goes back to pending and is re-sent;
    # so are the pending tasks, since no task of the run has moved within the timeout either.
    age(probe_id, 120)
    waiting = queued(deployment)
    [recovered] = probes.sweep_probes(settings)
    assert set(recovered.requeued) == {(c, 0) for c in CONDITIONS}
    assert recovered.failed == ()
    assert queued(deployment) == waiting + 5
    assert {task.status for task in tasks_of(probe_id)} == {"pending"}
    # Re-sent just now: the next sweep does not send them again.
    assert probes.sweep_probes(settings) == []

    # The second start goes silent too: out of attempts, the task fails with the cause.
    with session_scope() as session:
        assert lifecycle.claim_probe_task(session, probe_id, condition, 0, max_attempts=2, timeout_s=60) is not None
    age(probe_id, 120)
    [recovered] = probes.sweep_probes(settings)
    [cause] = recovered.failed
    assert cause.startswith("original seed 0: no result after 2 attempts")
    assert "FRONTIER_PROBE_TIMEOUT_S=60" in cause
    assert "FRONTIER_PROBE_MAX_ATTEMPTS=2" in cause
    for other in CONDITIONS:
        if other != condition:
            assert finish(probe_id, other) is (other == CONDITIONS[-1])
    body = client.get(f"/v1/jobs/{job_id}/probes/{probe_id}").json()
    assert body["status"] == "failed"
    assert body["error"].startswith("original seed 0: no result after 2 attempts")
    # A late delivery of the failed task changes nothing.
    assert probes.run_probe_task(probe_id, condition, 0) is False
    assert client.get(f"/v1/jobs/{job_id}/probes/{probe_id}").json() == body


def test_a_task_that_kills_its_worker_every_time_fails_on_its_next_delivery(
    deployment: Deployment, client: TestClient, small_student: Path
) -> None:
    _, probe = new_probe(client, small_student)
    for _ in range(3):
        with session_scope() as session:
            claimed = lifecycle.claim_probe_task(session, probe["id"], "union", 0, max_attempts=3, timeout_s=60)
        assert claimed is not None
        # Killed at once: silent from here on.
        age(probe["id"], 61)
    with session_scope() as session:
        assert lifecycle.claim_probe_task(session, probe["id"], "union", 0, max_attempts=3, timeout_s=60) is None
    [task] = [task for task in tasks_of(probe["id"]) if task.condition == "union"]
    assert task.status == "failed"
    assert task.attempts == 3
    assert task.error is not None
    assert "FRONTIER_PROBE_MAX_ATTEMPTS=3" in task.error


def test_the_sweep_resends_the_tasks_of_a_run_whose_messages_were_lost(
    deployment: Deployment, client: TestClient, small_student: Path
) -> None:
    _, probe = new_probe(client, small_student)
    settings = deployment.settings.model_copy(update={"probe_timeout_s": 60.0})
    age(probe["id"], 30)
    assert probes.sweep_probes(settings) == []
    age(probe["id"], 60)
    waiting = queued(deployment)
    [recovered] = probes.sweep_probes(settings)
    assert len(recovered.requeued) == 5
    assert queued(deployment) == waiting + 5
    # A run with a task running recently is left alone, however old the run.
    with session_scope() as session:
        session.execute(update(ProbeTask).where(ProbeTask.probe_run_id == probe["id"]).values(queued_at=None))
        assert lifecycle.claim_probe_task(session, probe["id"], "union", 0, max_attempts=3, timeout_s=60) is not None
    assert probes.sweep_probes(settings) == []
