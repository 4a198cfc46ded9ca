"""Rank statistics through the API: the job's rank clip reaches the engine, the scores come back per candidate,
a bad clip is refused before a job exists, and the score cache never mixes clips."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from core.scores import DEFAULT_RANK_CLIP
from service.db import session_scope
from service.models import Job
from tests.services import TEST_CHUNK_SIZE, Deployment, as_jsonl, example_records
from workers import curation


def _submit(client: TestClient, student: Path, n: int, **form: str) -> dict[str, object]:
    response = client.post(
        "/v1/jobs",
        files={"file": ("data.jsonl", as_jsonl(example_records(n)), "application/x-ndjson")},
        data={"student": str(student), **form},
    )
    assert response.status_code == 202, response.text
    job: dict[str, object] = response.json()
    job_id = uuid.UUID(str(job["id"]))
    for index in range(-(-n // TEST_CHUNK_SIZE)):
        curation.score_chunk(job_id, index)
    assert curation.finalize(job_id) is True
    return job


def _candidates(client: TestClient, job_id: object) -> list[dict[str, object]]:
    page = client.get(f"/v1/jobs/{job_id}/samples", params={"limit": 100}).json()
    return [c for item in page["items"] for c in item["candidates"]]


def test_rank_statistics_come_back_with_the_jobs_clip(
    deployment: Deployment, client: TestClient, small_student: Path
) -> None:
    default = _submit(client, small_student, 3)
    assert default["rank_clip"] == DEFAULT_RANK_CLIP
    clipped = _submit(client, small_student, 3, rank_clip="5")
    assert clipped["rank_clip"] == 5
    wide, narrow = _candidates(client, default["id"]), _candidates(client, clipped["id"])
    assert [c["name"] for c in wide] == [c["name"] for c in narrow]
    for broad, tight in zip(wide, narrow, strict=True):
        assert broad["status"] == tight["status"] == "scored"
        assert broad["rank_clip"] == DEFAULT_RANK_CLIP
        assert tight["rank_clip"] == 5
        assert isinstance(tight["rank_mean"], float)
        assert isinstance(broad["rank_mean"], float)
        assert 1.0 <= tight["rank_mean"] <= 5.0
        # A lower clip can only lower the mean rank, and with it the ratio (same surprisal).
        assert tight["rank_mean"] <= broad["rank_mean"] + 1e-9
        assert isinstance(tight["rsr"], float)
        assert isinstance(broad["rsr"], float)
        assert tight["rsr"] <= broad["rsr"] + 1e-9
        # Same texts, another clip: the score cache must not hand back the other job's ranks.
        assert broad["ifd"] == pytest.approx(tight["ifd"], rel=1e-9)

    # The export's curation block carries the chosen candidate's rank statistics, in JSONL and Parquet alike.
    for fmt in ("jsonl", "parquet"):
        exported = client.get(
            f"/v1/jobs/{clipped['id']}/export", params={"format": fmt, "decision": "all", "scores": "true"}
        )
        assert exported.status_code == 200, exported.text
        if fmt == "jsonl":
            rows = [json.loads(line) for line in exported.text.splitlines()]
            chosen = [row["curation"]["scores"] for row in rows if row["curation"]["scores"] is not None]
        else:
            # Parquet flattens the curation block into columns (one file, one schema).
            rows = pq.read_table(io.BytesIO(exported.content)).to_pylist()
            chosen = [row for row in rows if row["rank_mean"] is not None]
        assert chosen
        assert all(1.0 <= score["rank_mean"] <= 5.0 and score["rsr"] > 0 for score in chosen)
        assert {score["rank_clip"] for score in chosen} == {5}


@pytest.mark.parametrize("clip", ["0", "-3", "many", str(10**7)])
def test_a_bad_rank_clip_is_a_422_and_writes_nothing(
    deployment: Deployment, client: TestClient, small_student: Path, clip: str
) -> None:
    with session_scope() as session:
        before = session.scalar(select(func.count()).select_from(Job))
    response = client.post(
        "/v1/jobs",
        files={"file": ("data.jsonl", as_jsonl(example_records(2)), "application/x-ndjson")},
        data={"student": str(small_student), "rank_clip": clip},
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"]["field"] == "rank_clip"
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == before


def test_a_bad_rank_clip_in_a_json_body_is_a_422(
    deployment: Deployment, client: TestClient, small_student: Path
) -> None:
    body = {"samples": example_records(2), "student": str(small_student), "rank_clip": 0}
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 422, response.text
    assert "rank_clip" in response.text
