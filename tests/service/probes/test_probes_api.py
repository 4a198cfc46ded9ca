"""Probe runs over HTTP on both deployments: one run through a real worker, the rest with tasks run in-process."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from core.probes import extract_answer
from service.app import create_app
from service.db import session_scope
from service.models import ProbeRun, Sample
from service.settings import get_settings
from tests.service.probes.helpers import (
    CONDITIONS,
    N_SAMPLES,
    TINY,
    TINY_BUDGET,
    probe_rows,
    run_tasks,
    succeeded_job,
    tasks_of,
)
from tests.service.test_auth import new_key
from tests.service.test_jobs_api import queued, run_job
from tests.services import Deployment, as_jsonl, example_records
from workers import probes
from workers.local import local_worker

PROBE_TIMEOUT_S = 420


def wait_for_probe(
    client: TestClient, job_id: str, probe_id: int, worker: subprocess.Popen[bytes]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Poll the probe until it finishes; returns it and every running view seen on the way."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + PROBE_TIMEOUT_S
    while time.monotonic() < deadline:
        probe: dict[str, Any] = client.get(f"/v1/jobs/{job_id}/probes/{probe_id}").json()
        if probe["status"] in {"succeeded", "failed", "cancelled"}:
            return probe, seen
        seen.append(probe)
        assert worker.poll() is None, f"the worker exited with {worker.returncode}"
        time.sleep(0.2)
    pytest.fail(f"probe {probe_id} did not finish within {PROBE_TIMEOUT_S}s")


def held_out_answers(probe_id: int) -> dict[str, str]:
    """The external id of each held-out sample -> the answer its eval item holds."""
    with session_scope() as session:
        run = session.get(ProbeRun, probe_id)
        assert run is not None
        samples = session.scalars(select(Sample).where(Sample.id.in_(run.held_out_sample_ids))).all()
        by_id = {sample.id: sample.external_id for sample in samples}
        pairs = zip(run.held_out_sample_ids, run.eval_items, strict=True)
        return {by_id[sample_id]: item["answer"] for sample_id, item in pairs}


@pytest.mark.slow
def test_a_probe_run_through_a_real_worker(deployment: Deployment, client: TestClient, small_student: Path) -> None:
    job_id = succeeded_job(client, small_student)
    with local_worker(deployment.settings, env=os.environ.copy()) as worker:
        created = client.post(f"/v1/jobs/{job_id}/probes", json=TINY)
        assert created.status_code == 202, created.text
        assert created.json()["status"] == "queued"
        probe, seen = wait_for_probe(client, job_id, created.json()["id"], worker)
    assert probe["status"] == "succeeded", probe["error"]
    assert probe["job_id"] == job_id
    assert probe["budget"] == {**TINY_BUDGET, "peak_lr": None, "schedule_steps": None, "seeds": 1}
    assert probe["conditions"] == CONDITIONS
    assert probe["progress"] == {"tasks_total": 5, "tasks_done": 5, "steps_total": 20, "steps_done": 20, "fraction": 1}
    assert probe["error"] is None
    assert probe["started_at"] is not None
    assert probe["finished_at"] is not None

    # Held out: four of the job's samples whose original response carries an answer, each measured against it.
    assert probe["eval"]["source"] == "held_out"
    assert (probe["eval"]["n_items"], probe["eval"]["held_out_samples"]) == (4, 4)
    assert "held out" in probe["eval"]["note"]
    records = {record["id"]: record for record in example_records(N_SAMPLES)}
    answers = held_out_answers(probe["id"])
    assert len(answers) == 4
    for external_id, answer in answers.items():
        assert extract_answer(records[external_id]["response"]) == answer

    # Every condition trains on the job's data minus the held-out samples; the curve is steps 0, 2 and 4.
    kept = [record for external_id, record in records.items() if external_id not in answers]
    expected = {
        f"teacher:{teacher}": sum(any(r["teacher"] == teacher for r in record["refinements"]) for record in kept)
        for teacher in ("teacher-far", "teacher-near", "teacher-terse")
    }
    expected["original"] = len(kept)
    expected["union"] = sum(len(record["refinements"]) for record in kept)
    assert [result["condition"] for result in probe["results"]] == CONDITIONS
    for result in probe["results"]:
        assert result["n_examples"] == expected[result["condition"]]
        [seed] = result["seeds"]
        assert seed["status"] == "done"
        assert seed["error"] is None
        assert [point["step"] for point in seed["curve"]] == [0, 2, 4]
        assert seed["final"] == seed["curve"][-1]
        assert result["exact_match"] == {"mean": seed["final"]["exact_match"], "sd": None}
        assert result["loss"] == {"mean": seed["final"]["loss"], "sd": None}
        assert seed["cost"]["method"] == "full"
        # No learning rate asked for: the engine's choice for this student's width, recorded with the cost.
        assert 0 < seed["cost"]["peak_lr"] <= 3e-3
        assert seed["cost"]["steps"] == 4
        assert seed["cost"]["tokens"] > 0
        assert seed["cost"]["examples"] == result["n_examples"]
    costs = [result["seeds"][0]["cost"] for result in probe["results"]]
    assert probe["cost"]["steps"] == 20
    assert probe["cost"]["tokens"] == sum(cost["tokens"] for cost in costs)
    assert probe["cost"]["seconds"] > 0
    # The first completions are kept for inspection.
    for task in tasks_of(probe["id"]):
        assert task.completions
        assert set(task.completions[0]) == {"answer", "completion"}
    # Progress only grows while it runs.
    fractions = [view["progress"]["fraction"] for view in seen]
    assert fractions == sorted(fractions)

    listed = client.get(f"/v1/jobs/{job_id}/probes").json()
    assert [item["id"] for item in listed["items"]] == [probe["id"]]
    assert listed["items"][0] == probe


def test_an_uploaded_eval_set_and_two_seeds(deployment: Deployment, client: TestClient, small_student: Path) -> None:
    job_id = succeeded_job(client, small_student)
    items = [
        {"instruction": "Add 2 and 3.", "answer": "5"},
        {"instruction": "What is 10 minus 4?", "input": "", "answer": 6, "response": "10 - 4 = 6. Answer: 6"},
        {"id": "x", "instruction": "Double 1,200.", "answer": "2,400"},
    ]
    upload = b"".join(json.dumps(item).encode() + b"\n" for item in items)
    # Two steps, two seeds: ten short tasks, each curve two points.
    params = {**TINY, "steps": 2, "seeds": 2, "held_out": None, "answer_pattern": r"Answer:\s*(\S+)"}
    created = client.post(
        f"/v1/jobs/{job_id}/probes",
        files={"eval_set": ("eval.jsonl", upload, "application/x-ndjson")},
        data={"params": json.dumps(params)},
    )
    assert created.status_code == 202, created.text
    probe = created.json()
    assert probe["eval"]["source"] == "uploaded"
    assert (probe["eval"]["n_items"], probe["eval"]["held_out_samples"]) == (3, 0)
    assert probe["answer_pattern"] == r"Answer:\s*(\S+)"
    assert probe["budget"]["seeds"] == 2
    assert probe["budget"]["held_out"] == 64
    assert probe["progress"]["tasks_total"] == 10
    # Nothing held out: every sample is training data.
    original = next(result for result in probe["results"] if result["condition"] == "original")
    assert original["n_examples"] == N_SAMPLES
    with session_scope() as session:
        run = session.get(ProbeRun, probe["id"])
        assert run is not None
        assert [item["answer"] for item in run.eval_items] == ["5", "6", "2400"]

    finished = run_tasks(probe)
    assert finished == [False] * 9 + [True]
    done = client.get(f"/v1/jobs/{job_id}/probes/{probe['id']}").json()
    assert done["status"] == "succeeded"
    for result in done["results"]:
        assert [seed["seed"] for seed in result["seeds"]] == [0, 1]
        finals = [seed["final"]["loss"] for seed in result["seeds"]]
        assert result["loss"]["mean"] == pytest.approx(sum(finals) / 2)
        assert result["loss"]["sd"] is not None
    # A redelivered task is skipped: the result is stored once.
    assert run_tasks(done) == [False] * 10
    assert client.get(f"/v1/jobs/{job_id}/probes/{probe['id']}").json() == done

    # The same eval set inline in a JSON body.
    inline = client.post(f"/v1/jobs/{job_id}/probes", json={**TINY, "eval_set": items})
    assert inline.status_code == 202, inline.text
    assert inline.json()["eval"] == {**probe["eval"], "note": inline.json()["eval"]["note"]}
    listed = client.get(f"/v1/jobs/{job_id}/probes").json()["items"]
    assert [item["id"] for item in listed] == [inline.json()["id"], probe["id"]]


def test_a_decision_set_adds_its_retained_set_as_a_condition(
    deployment: Deployment, client: TestClient, small_student: Path
) -> None:
    job_id = succeeded_job(client, small_student)
    decided = client.post(f"/v1/jobs/{job_id}/decide", json={"policy": "best_candidate"})
    assert decided.status_code == 201, decided.text
    decision_set = decided.json()
    created = client.post(f"/v1/jobs/{job_id}/probes", json={**TINY, "decision_sets": [decision_set["id"]] * 2})
    assert created.status_code == 202, created.text
    probe = created.json()
    condition = f"decision_set:{decision_set['id']}"
    assert probe["conditions"] == [*CONDITIONS, condition]
    # Its training set: each retained sample's chosen candidate, held-out samples left out.
    held_out = set(held_out_answers(probe["id"]))
    samples = client.get(f"/v1/jobs/{job_id}/samples", params={"decision_set": decision_set["id"], "limit": 100})
    retained = [
        item for item in samples.json()["items"] if item["decision"] == "retained" and item["sample_id"] not in held_out
    ]
    result = next(result for result in probe["results"] if result["condition"] == condition)
    assert result["n_examples"] == len(retained) > 0
    assert probes.run_probe_task(probe["id"], condition, 0) is False
    running = client.get(f"/v1/jobs/{job_id}/probes/{probe['id']}").json()
    assert running["status"] == "running"
    [seed] = running["results"][-1]["seeds"]
    assert seed["status"] == "done", seed["error"]
    assert seed["cost"]["examples"] == len(retained)


def test_by_default_only_the_teachers_train(deployment: Deployment, client: TestClient, small_student: Path) -> None:
    """By default (`baselines` not given) only the teachers train: `original` and `union` are on request."""
    job_id = succeeded_job(client, small_student)
    created = client.post(f"/v1/jobs/{job_id}/probes", json=TINY_BUDGET)
    assert created.status_code == 202, created.text
    probe = created.json()
    assert probe["conditions"] == [c for c in CONDITIONS if c.startswith("teacher:")]
    assert probe["progress"]["tasks_total"] == 3
    refused = client.post(f"/v1/jobs/{job_id}/probes", json={**TINY, "baselines": "no"})
    assert refused.status_code == 422
    assert refused.json()["detail"]["field"] == "baselines"
    # A follow-up names the teachers it trains, in the job's order whatever the request's.
    teachers = [c.removeprefix("teacher:") for c in CONDITIONS if c.startswith("teacher:")]
    chosen = client.post(f"/v1/jobs/{job_id}/probes", json={**TINY_BUDGET, "teachers": teachers[:0:-1]})
    assert chosen.status_code == 202, chosen.text
    assert chosen.json()["conditions"] == [f"teacher:{t}" for t in teachers[1:]]
    assert chosen.json()["progress"]["tasks_total"] == len(teachers) - 1


def test_cancel_stops_a_run_and_a_second_cancel_is_a_conflict(
    deployment: Deployment, client: TestClient, small_student: Path
) -> None:
    job_id = succeeded_job(client, small_student)
    waiting = queued(deployment)
    probe = client.post(f"/v1/jobs/{job_id}/probes", json=TINY).json()
    # One message per (condition, seed) reached the broker.
    assert queued(deployment) == waiting + 5

    cancelled = client.post(f"/v1/jobs/{job_id}/probes/{probe['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["status"] == "cancelled"
    assert body["finished_at"] is not None
    assert {seed["status"] for result in body["results"] for seed in result["seeds"]} == {"failed"}
    assert "cancelled" in body["results"][0]["seeds"][0]["error"]

    again = client.post(f"/v1/jobs/{job_id}/probes/{probe['id']}/cancel")
    assert again.status_code == 409
    assert "already cancelled" in again.json()["detail"]["message"]
    # Its messages, delivered now, are skipped: nothing is trained or written.
    before = probe_rows()
    assert run_tasks(probe) == [False] * 5
    assert probe_rows() == before
    assert client.get(f"/v1/jobs/{job_id}/probes/{probe['id']}").json() == body
    assert all(task.attempts == 0 for task in tasks_of(probe["id"]))


def test_unknown_probes_and_other_jobs_probes_are_not_found(
    deployment: Deployment, client: TestClient, small_student: Path
) -> None:
    job_id = succeeded_job(client, small_student)
    other = succeeded_job(client, small_student, n=8, start=16)
    probe = client.post(f"/v1/jobs/{job_id}/probes", json=TINY).json()
    for path in (f"/v1/jobs/{other}/probes/{probe['id']}", f"/v1/jobs/{job_id}/probes/{probe['id'] + 1000}"):
        assert client.get(path).status_code == 404
        assert client.post(f"{path}/cancel").status_code == 404
    assert client.get(f"/v1/jobs/{other}/probes").json() == {"items": []}
    assert client.get("/v1/jobs/00000000-0000-0000-0000-000000000000/probes").status_code == 404
    assert client.get(f"/v1/jobs/{job_id}/probes/0").status_code == 422
    assert client.get(f"/v1/jobs/{job_id}/probes/{2**63}").status_code == 422
    # A task message for a probe that does not exist is skipped.
    assert probes.run_probe_task(probe["id"] + 1000, "original", 0) is False


def test_another_tenants_job_and_probes_do_not_exist(
    deployment: Deployment, small_student: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRONTIER_AUTH", "keys")
    get_settings.cache_clear()
    alice, bob = new_key("alice"), new_key("bob")
    with TestClient(create_app()) as keyed:
        created = keyed.post(
            "/v1/jobs",
            files={"file": ("d.jsonl", as_jsonl(example_records(N_SAMPLES)))},
            data={"student": str(small_student)},
            headers=alice,
        )
        assert created.status_code == 202, created.text
        run_job(created.json())
        job_id = created.json()["id"]
        rows = probe_rows()
        assert keyed.post(f"/v1/jobs/{job_id}/probes", json=TINY).status_code == 401
        assert keyed.post(f"/v1/jobs/{job_id}/probes", json=TINY, headers=bob).status_code == 404
        assert probe_rows() == rows
        probe = keyed.post(f"/v1/jobs/{job_id}/probes", json=TINY, headers=alice)
        assert probe.status_code == 202, probe.text
        path = f"/v1/jobs/{job_id}/probes/{probe.json()['id']}"
        for method, url in (("GET", f"/v1/jobs/{job_id}/probes"), ("GET", path), ("POST", f"{path}/cancel")):
            assert keyed.request(method, url, headers=bob).status_code == 404
        assert keyed.get(path, headers=alice).json()["status"] == "queued"
