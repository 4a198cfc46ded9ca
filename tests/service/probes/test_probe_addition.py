"""A probe run on the experiment's addition task, through a real worker on both deployments."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bench.experiment.student import StudentPlan, pretrain_student
from bench.experiment.task import TEACHERS, build_task
from tests.service.probes.helpers import TINY
from tests.service.probes.test_probes_api import held_out_answers, wait_for_probe
from tests.service.test_jobs_api import create, run_job
from tests.services import Deployment
from workers.local import local_worker


@pytest.fixture(scope="session")
def addition_student(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The experiment's character-level student, pre-trained for a few steps (enough to load and train)."""
    return pretrain_student(tmp_path_factory.mktemp("addition-student"), 0, StudentPlan(steps=4))


@pytest.mark.slow
def test_a_probe_run_on_the_addition_task(deployment: Deployment, client: TestClient, addition_student: Path) -> None:
    """Every teacher, the originals and the union train and are measured on held-out sums of the job's own."""
    task = build_task(0, n_train=24, n_eval=4, weak_error_rate=0.1)
    job = create(client, addition_student, task.records)
    run_job(job)
    with local_worker(deployment.settings, env=os.environ.copy()) as worker:
        created = client.post(f"/v1/jobs/{job['id']}/probes", json={**TINY, "max_new_tokens": 24})
        assert created.status_code == 202, created.text
        probe, _ = wait_for_probe(client, job["id"], created.json()["id"], worker)
    assert probe["status"] == "succeeded", probe["error"]
    assert probe["conditions"] == [*(f"teacher:{t}" for t in sorted(TEACHERS)), "original", "union"]
    sums = {record["id"]: record["response"].removeprefix("Answer: ") for record in task.records}
    answers = held_out_answers(probe["id"])
    assert len(answers) == 4
    assert all(sums[external_id] == answer for external_id, answer in answers.items())
    for result in probe["results"]:
        [seed] = result["seeds"]
        assert seed["status"] == "done"
        assert [point["step"] for point in seed["curve"]] == [0, 2, 4]
        assert 0 <= seed["final"]["exact_match"] <= 1
        assert seed["cost"]["tokens"] > 0
    report = client.get(f"/v1/jobs/{job['id']}/report").json()
    assert report["probe"]["probe_id"] == probe["id"]
