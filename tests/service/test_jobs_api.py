"""The v1 jobs API over HTTP on both deployments, with chunk tasks run directly (a real worker is in tests/workers)."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select

from service.db import session_scope
from service.jobs import lifecycle
from service.models import Candidate, Chunk, Decision, Job, Sample, ScoreCacheEntry
from service.settings import get_settings
from tests.services import TEST_CHUNK_SIZE, TEST_QUEUE, Deployment, as_jsonl, example_records
from workers import curation

JOB_FIELDS = {"id", "status", "progress", "counts", "student", "policy", "error"}


def row_counts() -> dict[str, int]:
    with session_scope() as session:
        return {
            model.__tablename__: int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Job, Sample, Candidate, Chunk, Decision)
        }


def queued(deployment: Deployment) -> int:
    """Chunk messages waiting on the deployment's broker."""
    if deployment.name == "postgres":
        return int(redis.Redis.from_url(deployment.env["FRONTIER_BROKER_URL"]).llen(TEST_QUEUE))
    folder = deployment.settings.broker_folder / "queue"
    return len(list(folder.iterdir())) if folder.exists() else 0


def create(client: TestClient, student: Path, records: list[dict[str, Any]], **form: str) -> dict[str, Any]:
    response = client.post(
        "/v1/jobs",
        files={"file": ("data.jsonl", as_jsonl(records), "application/x-ndjson")},
        data={"student": str(student), **form},
    )
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def run_job(job: dict[str, Any]) -> None:
    """Do what the workers would: score every chunk, then finalize (tasks' functions called directly)."""
    job_id = uuid.UUID(job["id"])
    n_chunks = -(-job["progress"]["total"] // TEST_CHUNK_SIZE)
    done = [curation.score_chunk(job_id, index) for index in range(n_chunks)]
    assert done == [False] * (n_chunks - 1) + [True]
    assert curation.finalize(job_id) is True


def test_create_job_answers_202_and_queues_one_task_per_chunk(
    deployment: Deployment, client: TestClient, small_student: Path
) -> None:
    waiting = queued(deployment)
    job = create(client, small_student, example_records(10))
    assert set(job) >= JOB_FIELDS
    assert job["status"] == "queued"
    assert job["progress"] == {"scored": 0, "total": 10, "candidates": job["progress"]["candidates"], "cached": 0}
    assert job["counts"] == {"retained": 0, "rejected": 0, "unscored": 0}
    assert job["student"]["path"] == str(small_student.resolve())
    assert len(job["student"]["fingerprint"]) == 64
    assert job["policy"] == {
        "name": "reflection",
        "version": "1",
        "params": {"variant": "code", "ifd_max": 1.0, "rifd_max": 1.0, "reject_overconfident": False},
    }
    assert client.get(f"/v1/jobs/{job['id']}").json()["id"] == job["id"]
    # The chunk messages really are on the broker: 10 samples / 4 per chunk = 3 tasks (beside whatever
    # earlier tests left there: the queue lasts the session).
    assert queued(deployment) == waiting + 3


def test_job_lifecycle_decisions_samples_and_exports(
    deployment: Deployment, client: TestClient, small_student: Path
) -> None:
    records = example_records(10)
    # The Postgres database lasts the session: earlier tests' jobs over the same records would serve every score
    # from the cache, and this test measures a job the engine scores.
    with session_scope() as session:
        session.execute(delete(ScoreCacheEntry))
    job = create(client, small_student, records, policy="reflection")
    run_job(job)

    done = client.get(f"/v1/jobs/{job['id']}").json()
    assert done["status"] == "succeeded"
    assert done["progress"]["scored"] == 10
    counts = done["counts"]
    assert sum(counts.values()) == 10
    assert done["timings"]["finished_at"] is not None
    assert done["timings"]["scoring_seconds"] > 0

    # Every sample has a decision and a reason, and every candidate its scores.
    page = client.get(f"/v1/jobs/{job['id']}/samples", params={"limit": 100}).json()
    assert [item["sample_id"] for item in page["items"]] == [record["id"] for record in records]
    for item in page["items"]:
        assert item["decision"] in {"retained", "rejected", "unscored"}
        assert item["reason"]
        record = next(r for r in records if r["id"] == item["sample_id"])
        assert [c["name"] for c in item["candidates"]] == ["original"] + [r["teacher"] for r in record["refinements"]]
        assert all(c["status"] == "scored" and c["ifd"] is not None for c in item["candidates"])
        if item["decision"] == "retained":
            assert item["chosen_candidate"] in [c["name"] for c in item["candidates"]]

    # Filters and keyset pagination agree with the full page.
    retained_ids = [i["sample_id"] for i in page["items"] if i["decision"] == "retained"]
    filtered = client.get(f"/v1/jobs/{job['id']}/samples", params={"decision": "retained"}).json()
    assert [i["sample_id"] for i in filtered["items"]] == retained_ids
    walked: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        chunk = client.get(f"/v1/jobs/{job['id']}/samples", params=params).json()
        walked += [i["sample_id"] for i in chunk["items"]]
        cursor = chunk["next_cursor"]
        if cursor is None:
            break
    assert walked == [r["id"] for r in records]
    far = client.get(f"/v1/jobs/{job['id']}/samples", params={"teacher": "teacher-far"}).json()
    assert {i["sample_id"] for i in far["items"]} == {
        r["id"] for r in records if any(x["teacher"] == "teacher-far" for x in r["refinements"])
    }
    reason = page["items"][0]["reason"]
    by_reason = client.get(f"/v1/jobs/{job['id']}/samples", params={"reason": reason}).json()
    assert {i["reason"] for i in by_reason["items"]} == {reason}

    # One sample carries every candidate's texts.
    one = client.get(f"/v1/jobs/{job['id']}/samples/{records[1]['id']}").json()
    assert one["candidates"][0]["response"] == records[1]["response"]
    assert client.get(f"/v1/jobs/{job['id']}/samples/nope").status_code == 404

    # The export holds exactly the retained samples, each with its chosen candidate's text, in its layout.
    exported = client.get(f"/v1/jobs/{job['id']}/export", params={"format": "jsonl", "decision": "retained"})
    assert exported.status_code == 200
    lines = [json.loads(line) for line in exported.text.splitlines()]
    assert [line["id"] for line in lines] == retained_ids
    for line in lines:
        item = next(i for i in page["items"] if i["sample_id"] == line["id"])
        chosen = client.get(f"/v1/jobs/{job['id']}/samples/{line['id']}").json()["candidates"]
        text = next(c for c in chosen if c["name"] == item["chosen_candidate"])
        assert (line["instruction"], line["response"]) == (text["instruction"], text["response"])
        assert set(line) == {"id", "instruction", "input", "response"}

    everything = client.get(f"/v1/jobs/{job['id']}/export", params={"decision": "all", "scores": "true"}).text
    rows = [json.loads(line) for line in everything.splitlines()]
    assert len(rows) == 10
    assert {row["curation"]["decision"] for row in rows} <= {"retained", "rejected", "unscored"}
    assert all(row["curation"]["policy"]["name"] == "reflection" for row in rows)

    parquet = client.get(f"/v1/jobs/{job['id']}/export", params={"format": "parquet", "decision": "rejected"})
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.column_names == ["id", "instruction", "input", "response"]
    assert table.column("id").to_pylist() == [i["sample_id"] for i in page["items"] if i["decision"] == "rejected"]

    listed = client.get("/v1/jobs", params={"status": "succeeded"}).json()
    assert job["id"] in [item["id"] for item in listed["items"]]


def test_alpaca_and_chat_exports_keep_their_layout(
    deployment: Deployment, client: TestClient, small_student: Path
) -> None:
    records = example_records(6)
    alpaca = [
        {
            "id": r["id"],
            "instruction": r["instruction"],
            "input": "",
            "output": r["response"],
            "refinements": r["refinements"],
        }
        for r in records[:3]
    ]
    chat = [
        {
            "id": r["id"],
            "messages": [
                {"role": "user", "content": r["instruction"]},
                {"role": "assistant", "content": r["response"]},
            ],
            "refinements": r["refinements"],
        }
        for r in records[3:]
    ]
    job = create(client, small_student, alpaca + chat, params=json.dumps({"ifd_max": 10, "rifd_max": 10}))
    run_job(job)
    lines = [json.loads(line) for line in client.get(f"/v1/jobs/{job['id']}/export").text.splitlines()]
    assert len(lines) == 6  # thresholds of 10 keep everything
    assert all("output" in line and "response" not in line for line in lines[:3])
    assert all(line["messages"][-1]["role"] == "assistant" for line in lines[3:])
    assert all("refinements" not in line for line in lines)


def test_json_body_creates_the_same_job(deployment: Deployment, client: TestClient, small_student: Path) -> None:
    response = client.post(
        "/v1/jobs",
        json={
            "samples": example_records(3),
            "student": str(small_student),
            "policy": "ifd_topk",
            "params": {"k_percent": 50},
        },
    )
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["policy"]["params"] == {
        "k_percent": 50.0,
        "score": "ifd",
        "candidates": "all",
        "reject_overconfident": False,
    }
    run_job(job)
    done = client.get(f"/v1/jobs/{job['id']}").json()
    assert done["counts"]["retained"] <= 2


def test_redelivered_chunk_changes_nothing(deployment: Deployment, client: TestClient, small_student: Path) -> None:
    job = create(client, small_student, example_records(5))
    job_id = uuid.UUID(job["id"])

    def snapshot() -> tuple[int, list[tuple[int, float | None, float | None]]]:
        with session_scope() as session:
            rows = session.scalars(select(Candidate).where(Candidate.job_id == job_id).order_by(Candidate.id)).all()
            job_row = session.get(Job, job_id)
            assert job_row is not None
            return job_row.scored_samples, [(c.id, c.ifd, c.rifd) for c in rows]

    assert curation.score_chunk(job_id, 0) is False
    first = snapshot()
    assert first[0] == TEST_CHUNK_SIZE
    # Redelivered after its commit (the worker died before acknowledging): skipped, nothing changes.
    assert curation.score_chunk(job_id, 0) is False
    assert snapshot() == first

    # The same chunk's scores written twice (two workers raced on one message) count once.
    with session_scope() as session:
        work = lifecycle.claim_chunk(session, job_id, 1)
    assert work is not None
    rows = [{"id": c.id, "status": "scored", "template": "plain", "ifd": 0.5, "rifd": 0.5} for c in work.candidates]
    for _ in range(2):
        with session_scope() as session:
            assert lifecycle.record_chunk_scores(session, job_id, 1, rows, scoring_seconds=0.1) is True
    assert snapshot()[0] == 5
    assert curation.finalize(job_id) is True
    assert curation.finalize(job_id) is False  # a second finalize is a no-op
    with session_scope() as session:
        assert session.scalar(select(func.count()).where(Decision.job_id == job_id)) == 5


def test_cancel_stops_remaining_chunks(deployment: Deployment, client: TestClient, small_student: Path) -> None:
    job = create(client, small_student, example_records(9))
    job_id = uuid.UUID(job["id"])
    curation.score_chunk(job_id, 0)
    cancelled = client.post(f"/v1/jobs/{job['id']}/cancel").json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["progress"]["scored"] == TEST_CHUNK_SIZE
    assert curation.score_chunk(job_id, 1) is False
    assert curation.finalize(job_id) is False
    assert client.get(f"/v1/jobs/{job['id']}").json()["progress"]["scored"] == TEST_CHUNK_SIZE
    assert client.post(f"/v1/jobs/{job['id']}/cancel").status_code == 409
    assert client.get(f"/v1/jobs/{job['id']}/export").status_code == 409


def test_unknown_job_is_404(deployment: Deployment, client: TestClient) -> None:
    missing = uuid.uuid4()
    for path in (f"/v1/jobs/{missing}", f"/v1/jobs/{missing}/samples", f"/v1/jobs/{missing}/export"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert str(missing) in response.json()["detail"]["message"]


def test_scoring_failure_fails_the_job_with_its_cause(
    deployment: Deployment, client: TestClient, small_student: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    student = tmp_path / "student"
    shutil.copytree(small_student, student)
    # With the cache on, texts other tests scored with this (identical) checkpoint would not need the student.
    monkeypatch.setenv("FRONTIER_SCORE_CACHE", "false")
    get_settings.cache_clear()
    job = create(client, student, example_records(3))
    # The checkpoint changes under the job's feet: the worker must refuse to score with another student.
    (student / "config.json").write_text(
        json.dumps({**json.loads((student / "config.json").read_text()), "n_layer": 1}), encoding="utf-8"
    )
    assert curation.score_chunk(uuid.UUID(job["id"]), 0) is False
    failed = client.get(f"/v1/jobs/{job['id']}").json()
    assert failed["status"] == "failed"
    assert "chunk 0" in failed["error"]


def test_health_and_readiness(deployment: Deployment, client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready", "database": "ok", "broker": "ok"}
    assert "/v1/jobs" in client.get("/openapi.json").json()["paths"]


def test_readiness_fails_when_the_broker_is_unreachable(
    monkeypatch: pytest.MonkeyPatch, postgres_url: str, tmp_path: Path
) -> None:
    from tests.services import configure

    configure(
        monkeypatch,
        {
            "FRONTIER_DATABASE_URL": postgres_url,
            "FRONTIER_BROKER_URL": "redis://127.0.0.1:1/0",
            "FRONTIER_DATA_DIR": str(tmp_path),
        },
    )
    from service.app import create_app

    with TestClient(create_app()) as client:
        response = client.get("/readyz")
    get_settings.cache_clear()
    assert response.status_code == 503
    assert response.json()["database"] == "ok"
    assert response.json()["broker"].startswith("unreachable")


def bad_student(tmp_path: Path) -> str:
    (tmp_path / "not-a-checkpoint").mkdir()
    return str(tmp_path / "not-a-checkpoint")


GOOD = {"id": "a", "instruction": "Add 2 and 3.", "response": "5"}


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("not_json", {"line": 2, "field": None, "text": "line 2: not valid JSON"}),
        ("missing_id", {"line": 2, "field": "id", "text": "line 2, field 'id': missing"}),
        ("missing_response", {"line": 1, "field": "response", "text": "field 'response': missing"}),
        ("wrong_type", {"line": 2, "field": "response", "text": "expected a string, got 42"}),
        ("duplicate_id", {"line": 2, "field": "id", "text": "duplicate id 'a' (first on line 1)"}),
        ("empty", {"line": None, "field": None, "text": "the file is empty"}),
        ("latin1", {"line": 2, "field": None, "text": "invalid UTF-8"}),
        ("no_student", {"field": "student", "text": "does not exist"}),
        ("not_checkpoint", {"field": "student", "text": "config.json"}),
        ("unknown_policy", {"field": "policy", "text": "unknown policy 'best'"}),
        ("bad_params", {"field": "params", "text": "k_percent"}),
        ("params_not_json", {"field": "params", "text": "not valid JSON"}),
    ],
)
def test_bad_upload_is_a_4xx_naming_line_and_field_and_creates_nothing(
    deployment: Deployment,
    client: TestClient,
    small_student: Path,
    tmp_path: Path,
    case: str,
    expected: dict[str, Any],
) -> None:
    good = json.dumps(GOOD).encode() + b"\n"
    data, student, form = good + json.dumps({**GOOD, "id": "b"}).encode(), str(small_student), {}
    if case == "not_json":
        data = good + b"{nope\n"
    elif case == "missing_id":
        data = good + json.dumps({"instruction": "x", "response": "y"}).encode()
    elif case == "missing_response":
        data = json.dumps({"id": "a", "instruction": "x"}).encode()
    elif case == "wrong_type":
        data = good + json.dumps({**GOOD, "id": "b", "response": 42}).encode()
    elif case == "duplicate_id":
        data = good + good
    elif case == "empty":
        data = b""
    elif case == "latin1":
        data = good + json.dumps({**GOOD, "id": "b", "response": "café"}).encode().replace(
            b"caf\\u00e9", "café".encode("latin-1")
        )
    elif case == "no_student":
        student = str(tmp_path / "missing")
    elif case == "not_checkpoint":
        student = bad_student(tmp_path)
    elif case == "unknown_policy":
        form = {"policy": "best"}
    elif case == "bad_params":
        form = {"policy": "ifd_topk", "params": json.dumps({"k_percent": 0})}
    elif case == "params_not_json":
        form = {"params": "{k"}
    before = row_counts()
    response = client.post("/v1/jobs", files={"file": ("d.jsonl", data)}, data={"student": student, **form})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert expected["text"] in detail["message"]
    for key in ("line", "field"):
        if key in expected:
            assert detail[key] == expected[key]
    assert row_counts() == before


def test_job_list_walks_every_job_once_with_its_cursor(
    deployment: Deployment, client: TestClient, small_student: Path
) -> None:
    created = [create(client, small_student, example_records(1, start=i))["id"] for i in range(3)]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/jobs", params=params).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen))
    assert seen[:3] == created[::-1]  # newest first
    assert client.get("/v1/jobs", params={"cursor": "garbage!"}).status_code == 422
