"""The `rsr` policy and the teacher allow-list over HTTP: re-deciding a real job, what-if per teacher, the report's
RSR, and bad allow-lists refused with nothing written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from tests.service.test_decisions_api import records, row_counts
from tests.service.test_jobs_api import create, run_job
from tests.services import TEST_QUEUE, Deployment

REFLECTION = {"variant": "code", "ifd_max": 1.0, "rifd_max": 1.0, "reject_overconfident": False}


@pytest.fixture(autouse=True)
def _drop_queued_chunks(deployment: Deployment) -> Iterator[None]:
    """Leave the session's Redis queue as found: these jobs' chunks run directly, their messages stay unconsumed."""
    yield
    if deployment.name == "postgres":
        redis.Redis.from_url(deployment.env["FRONTIER_BROKER_URL"]).delete(TEST_QUEUE)


@pytest.fixture
def finished(deployment: Deployment, client: TestClient, small_student: Path) -> dict[str, Any]:
    """A succeeded 10-sample job (the decisions API tests' records, so the score cache is shared)."""
    job = create(client, small_student, records(10))
    run_job(job)
    return job


def samples_of(client: TestClient, job_id: str) -> list[dict[str, Any]]:
    page: dict[str, Any] = client.get(f"/v1/jobs/{job_id}/samples", params={"limit": 100}).json()
    items: list[dict[str, Any]] = page["items"]
    return items


def test_every_policy_lists_the_allow_list(client: TestClient) -> None:
    listed = {p["name"]: p for p in client.get("/v1/policies").json()}
    assert listed["rsr"]["reason_codes"] == ["lowest_rsr", "overconfident_style", "teacher_not_allowed", "unscored"]
    assert listed["rsr"]["defaults"] == {"reject_overconfident": False, "teachers": None}
    for policy in listed.values():
        assert "teacher_not_allowed" in policy["reason_codes"]
        assert policy["defaults"]["teachers"] is None
        assert "teachers" in policy["params_schema"]["properties"]


def test_rsr_keeps_each_samples_lowest_ratio(client: TestClient, finished: dict[str, Any]) -> None:
    job_id = finished["id"]
    made = client.post(f"/v1/jobs/{job_id}/decide", json={"policy": "rsr"})
    assert made.status_code == 201, made.text
    assert made.json()["policy"] == {"name": "rsr", "version": "1", "params": {"reject_overconfident": False}}
    items = samples_of(client, job_id)
    assert {item["reason"] for item in items} == {"lowest_rsr"}
    for item in items:
        ratios = {c["name"]: c["rsr"] for c in item["candidates"] if c["status"] == "scored"}
        assert item["detail"]["rsr"] == ratios
        assert ratios[item["chosen_candidate"]] == min(ratios.values())


def test_reflection_under_one_teacher(client: TestClient, finished: dict[str, Any]) -> None:
    job_id = finished["id"]
    body = {"policy": "reflection", "params": {"teachers": ["teacher-near"]}}
    made = client.post(f"/v1/jobs/{job_id}/decide", json=body)
    assert made.status_code == 201, made.text
    assert made.json()["policy"]["params"] == {"teachers": ["teacher-near"], **REFLECTION}
    items = samples_of(client, job_id)
    without = {item["sample_id"] for item in items if "teacher-near" not in {c["teacher"] for c in item["candidates"]}}
    assert without == {"s-0155", "s-0158"}
    for item in items:
        if item["sample_id"] in without:
            assert (item["decision"], item["reason"], item["chosen_candidate"]) == (
                "rejected",
                "teacher_not_allowed",
                None,
            )
            assert item["detail"] == {"teachers": ["teacher-near"]}
        elif item["decision"] == "retained":
            assert item["chosen_candidate"] == "teacher-near"
    # The report credits teacher-near alone, and gives every teacher's RSR.
    report = client.get(f"/v1/jobs/{job_id}/report").json()
    teachers = {t["teacher"]: t for t in report["teachers"]}
    assert {name for name, t in teachers.items() if t["accepted"]} <= {"teacher-near"}
    assert teachers["teacher-near"]["accepted"] == sum(item["decision"] == "retained" for item in items)
    for name, teacher in teachers.items():
        scored = [c for item in items for c in item["candidates"] if (c["teacher"] or "original") == name]
        ranked = [c for c in scored if c["status"] == "scored" and c["rank_mean"] is not None]
        assert teacher["rank_mean"] == pytest.approx(sum(c["rank_mean"] for c in ranked) / len(ranked))
        mean_surprisal = sum(c["nll_response_given_instruction"] for c in ranked) / len(ranked)
        assert teacher["rsr"] == pytest.approx(teacher["rank_mean"] / mean_surprisal)
    markdown = client.get(f"/v1/jobs/{job_id}/report", params={"format": "markdown"}).text
    assert "| median frontier | RSR |" in markdown
    # The job's own decision set keeps its parameters exactly as stored before the allow-list existed.
    own = client.get(f"/v1/jobs/{job_id}/decision-sets").json()["items"][0]
    assert own["policy"]["params"] == REFLECTION


def test_what_if_per_teacher(client: TestClient, finished: dict[str, Any]) -> None:
    sweep = {"param": "teachers", "values": [["teacher-near"], ["original"], None]}
    response = client.post(f"/v1/jobs/{finished['id']}/what-if", json={"policy": "best_candidate", "sweep": sweep})
    assert response.status_code == 200, response.text
    near, original, anyone = response.json()["points"]
    assert near["params"] == {"teachers": ["teacher-near"], "ifd_max": None, "reject_overconfident": False}
    assert anyone["params"] == {"ifd_max": None, "reject_overconfident": False}
    assert {name for name, t in near["teachers"].items() if t["accepted"]} == {"teacher-near"}
    assert near["counts"]["rejected"] == 2  # the two samples teacher-near did not refine
    assert {name for name, t in original["teachers"].items() if t["accepted"]} == {"original"}
    assert original["counts"]["retained"] == 10
    assert anyone["counts"]["retained"] == 10


@pytest.mark.parametrize(
    ("teachers", "text"),
    [
        ([], "teachers: List should have at least 1 item"),
        ([1], "teachers.0: Input should be a valid string"),
        ([""], "teachers.0: String should have at least 1 character"),
    ],
)
def test_bad_teachers_are_422_naming_the_field(
    client: TestClient, finished: dict[str, Any], teachers: object, text: str
) -> None:
    before = row_counts()
    for policy in ("rsr", "reflection"):
        response = client.post(
            f"/v1/jobs/{finished['id']}/decide", json={"policy": policy, "params": {"teachers": teachers}}
        )
        assert response.status_code == 422, response.text
        detail = response.json()["detail"]
        assert detail["field"] == "params.teachers"
        assert text in detail["message"]
    assert row_counts() == before
