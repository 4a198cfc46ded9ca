"""Real Celery workers on the example student: Postgres + Redis over HTTP, the embedded default over HTTP and
through `frontier curate`, and the same decisions from both deployments."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service import migrate
from service.app import create_app
from service.settings import Settings
from tests.services import TEST_CHUNK_SIZE, TEST_QUEUE, as_jsonl, configure, example_records
from workers.local import local_worker

pytestmark = pytest.mark.slow

N_SAMPLES = 16
JOB_TIMEOUT_S = 600


def wait_for(client: TestClient, job_id: str, worker: subprocess.Popen[bytes]) -> dict[str, Any]:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in {"succeeded", "failed", "cancelled"}:
            return job
        assert worker.poll() is None, f"the worker exited with {worker.returncode}"
        time.sleep(0.25)
    pytest.fail(f"job {job_id} did not finish within {JOB_TIMEOUT_S}s")


def run_over_http(settings: Settings, student: Path, records: list[dict[str, Any]], pool: str) -> dict[str, Any]:
    """POST a job, let a real worker process run it, and collect the job, its samples and its export."""
    with local_worker(settings, env=os.environ.copy(), pool=pool) as worker, TestClient(create_app()) as client:
        created = client.post(
            "/v1/jobs",
            files={"file": ("data.jsonl", as_jsonl(records))},
            data={"student": str(student)},
        )
        assert created.status_code == 202, created.text
        job = wait_for(client, created.json()["id"], worker)
        samples = client.get(f"/v1/jobs/{job['id']}/samples", params={"limit": 500}).json()["items"]
        details = {s["sample_id"]: client.get(f"/v1/jobs/{job['id']}/samples/{s['sample_id']}").json() for s in samples}
        export = client.get(f"/v1/jobs/{job['id']}/export", params={"decision": "retained"}).text
    return {"job": job, "samples": samples, "details": details, "export": export}


def check_run(run: dict[str, Any], records: list[dict[str, Any]]) -> None:
    """The job succeeded, every sample is decided, and the export is the retained samples' chosen texts."""
    job = run["job"]
    assert job["status"] == "succeeded", job["error"]
    progress = job["progress"]
    assert progress == {"scored": N_SAMPLES, "total": N_SAMPLES, "candidates": progress["candidates"], "cached": 0}
    assert sum(job["counts"].values()) == N_SAMPLES
    assert job["counts"]["retained"] > 0
    assert all(sample["reason"] for sample in run["samples"])
    exported = [json.loads(line) for line in run["export"].splitlines()]
    retained = [s for s in run["samples"] if s["decision"] == "retained"]
    assert [line["id"] for line in exported] == [s["sample_id"] for s in retained]
    for line, sample in zip(exported, retained, strict=True):
        chosen = next(c for c in run["details"][line["id"]]["candidates"] if c["name"] == sample["chosen_candidate"])
        original = next(r for r in records if r["id"] == line["id"])
        assert line == {
            "id": original["id"],
            "instruction": chosen["instruction"],
            "input": chosen["input"],
            "response": chosen["response"],
        }


def verdicts(samples: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(s["sample_id"], s["decision"], s["reason"], s["chosen_candidate"]) for s in samples]


def test_celery_worker_on_postgres_and_redis_matches_embedded_curate(
    monkeypatch: pytest.MonkeyPatch, postgres_url: str, redis_url: str, student_dir: Path, tmp_path: Path
) -> None:
    records = example_records(N_SAMPLES)
    settings = configure(
        monkeypatch,
        {
            "FRONTIER_DATABASE_URL": postgres_url,
            "FRONTIER_BROKER_URL": redis_url,
            "FRONTIER_DATA_DIR": str(tmp_path / "data"),
            "FRONTIER_CHUNK_SIZE": str(TEST_CHUNK_SIZE),
            "FRONTIER_GPU_QUEUE": TEST_QUEUE,
        },
    )
    # Production's worker shape: a prefork parent that never loads the student, one child that does.
    production = run_over_http(settings, student_dir, records, pool="prefork")
    check_run(production, records)

    # The embedded default, through the CLI, on the same data and student: the same decisions and scores.
    data = tmp_path / "data.jsonl"
    data.write_bytes(as_jsonl(records))
    out = tmp_path / "curated"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTIER_")}
    env["FRONTIER_CHUNK_SIZE"] = str(TEST_CHUNK_SIZE)
    result = subprocess.run(
        [sys.executable, "-m", "frontier.cli", "curate", str(data), "--student", str(student_dir), "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=JOB_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == str(out.resolve())
    decisions = [json.loads(line) for line in (out / "decisions.jsonl").read_text().splitlines()]
    assert verdicts(decisions) == verdicts(production["samples"])
    for embedded, served in zip(decisions, production["samples"], strict=True):
        assert [(c["name"], c["ifd"], c["rifd"]) for c in embedded["candidates"]] == [
            (c["name"], c["ifd"], c["rifd"]) for c in served["candidates"]
        ]
    retained = [json.loads(line) for line in (out / "retained.jsonl").read_text().splitlines()]
    assert retained == [json.loads(line) for line in production["export"].splitlines()]
    rejected = (out / "rejected.jsonl").read_text().splitlines()
    assert len(retained) + len(rejected) == N_SAMPLES - production["job"]["counts"]["unscored"]

    # The run's provenance and teacher comparison sit next to the data; `frontier report` reads the same job back.
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["student"]["fingerprint"] == production["job"]["student"]["fingerprint"]
    assert manifest["decision_set"]["policy"] == production["job"]["policy"]
    assert sum(n for reasons in manifest["reasons"].values() for n in reasons.values()) == N_SAMPLES
    assert (out / "README.md").read_text().startswith("# Curated dataset")
    report = json.loads((out / "report.json").read_text())
    assert (out / "report.md").read_text().startswith(f"# Teacher comparison: job {manifest['job_id']}")
    # Whatever the report warns about, curate says on stderr too (and nothing it does not).
    said = [line for line in result.stderr.splitlines() if line.startswith("frontier curate: warning: ")]
    assert said == [f"frontier curate: warning: {warning['message']}" for warning in report["warnings"]]
    state = str(out / ".frontier")
    printed = subprocess.run(
        [sys.executable, "-m", "frontier.cli", "report", manifest["job_id"], "--data-dir", state, "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert printed.returncode == 0, printed.stderr[-3000:]
    assert json.loads(printed.stdout)["ranking"] == report["ranking"]


def test_embedded_default_lifecycle_with_a_local_worker(
    monkeypatch: pytest.MonkeyPatch, student_dir: Path, tmp_path: Path
) -> None:
    settings = configure(
        monkeypatch,
        {
            "FRONTIER_DATA_DIR": str(tmp_path / "data"),
            "FRONTIER_CHUNK_SIZE": str(TEST_CHUNK_SIZE),
            "FRONTIER_GPU_QUEUE": TEST_QUEUE,
        },
    )
    assert settings.database_dsn.startswith("sqlite:///")
    assert settings.embedded_broker
    migrate.upgrade()
    records = example_records(N_SAMPLES, start=N_SAMPLES)
    check_run(run_over_http(settings, student_dir, records, pool="solo"), records)
