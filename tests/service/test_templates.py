"""Template names at the API's edge: every known name is scored end to end, an unknown one is refused before a job."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from core.templates import TEMPLATES
from service.db import session_scope
from service.models import Candidate, Job
from tests.services import TEST_CHUNK_SIZE, Deployment, as_jsonl, example_records
from workers import curation


def _jobs() -> int:
    with session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(Job)) or 0)


def _run(job_id: uuid.UUID, total: int) -> None:
    for index in range(-(-total // TEST_CHUNK_SIZE)):
        curation.score_chunk(job_id, index)
    assert curation.finalize(job_id) is True


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_name_is_scored_by_the_worker(
    deployment: Deployment, client: TestClient, small_student: Path, template: str
) -> None:
    response = client.post(
        "/v1/jobs",
        files={"file": ("data.jsonl", as_jsonl(example_records(3)), "application/x-ndjson")},
        data={"student": str(small_student), "template": template},
    )
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["template"] == template
    _run(uuid.UUID(job["id"]), 3)
    done = client.get(f"/v1/jobs/{job['id']}").json()
    assert done["status"] == "succeeded", done["error"]
    with session_scope() as session:
        used = set(session.scalars(select(Candidate.template).where(Candidate.job_id == uuid.UUID(job["id"]))))
        statuses = list(session.scalars(select(Candidate.status).where(Candidate.job_id == uuid.UUID(job["id"]))))
    # The tiny student has no chat template, so `chat` falls back to the Alpaca prompt (recorded as such).
    assert used == {"alpaca" if template == "chat" else template}
    assert set(statuses) <= {"scored", "unscored"}, statuses  # every candidate has its verdict from the engine
    if template in ("plain", "chat", "alpaca"):
        # Our own templates fit most candidates into the small student's context (the Alpaca prompt is longer).
        assert statuses.count("scored") > len(statuses) / 2, statuses
    # A research template applies its repository's truncation rule, which may leave candidates unscored here.


def test_alpaca_in_a_json_body_is_accepted(deployment: Deployment, client: TestClient, small_student: Path) -> None:
    body = {"samples": example_records(2), "student": str(small_student), "template": "alpaca"}
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    assert response.json()["template"] == "alpaca"


@pytest.mark.parametrize("form", ["multipart", "json"])
def test_an_unknown_template_is_a_422_naming_the_known_ones_and_writes_nothing(
    deployment: Deployment, client: TestClient, small_student: Path, form: str
) -> None:
    before = _jobs()
    if form == "multipart":
        response = client.post(
            "/v1/jobs",
            files={"file": ("data.jsonl", as_jsonl(example_records(2)), "application/x-ndjson")},
            data={"student": str(small_student), "template": "vicuna"},
        )
    else:
        body = {"samples": example_records(2), "student": str(small_student), "template": "vicuna"}
        response = client.post("/v1/jobs", json=body)
    assert response.status_code == 422, response.text
    text = response.text
    assert "template" in text
    assert all(name in text for name in TEMPLATES), text
    assert _jobs() == before
