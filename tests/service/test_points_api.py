"""GET /v1/jobs/{id}/points (the dashboard's plot data) on both deployments, checked against samples and report."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from tests.service.test_jobs_api import create, run_job
from tests.services import TEST_QUEUE, Deployment, example_records

# Records no other service test scores: the Postgres score cache lasts the session.
START = 185


@pytest.fixture(autouse=True)
def _drop_queued_chunks(deployment: Deployment) -> Iterator[None]:
    """Leave the session's Redis queue as found: these jobs' chunks run directly, their messages stay unconsumed."""
    yield
    if deployment.name == "postgres":
        redis.Redis.from_url(deployment.env["FRONTIER_BROKER_URL"]).delete(TEST_QUEUE)


def test_points_have_one_entry_per_candidate_matching_samples_and_decisions(
    client: TestClient, small_student: Path
) -> None:
    records = example_records(8, start=START)
    job = create(client, small_student, records)
    job_id = job["id"]
    assert client.get(f"/v1/jobs/{job_id}/points").status_code == 409  # not scored yet
    run_job(job)

    body = client.get(f"/v1/jobs/{job_id}/points").json()
    samples = client.get(f"/v1/jobs/{job_id}/samples", params={"limit": 100}).json()["items"]
    expected = [(s["sample_id"], c["name"]) for s in samples for c in s["candidates"]]
    assert [(p["sample_id"], p["candidate"]) for p in body["points"]] == expected
    assert body["decision_set"]["policy"]["name"] == "reflection"
    assert body["frontier"]["high"] == 0.8416

    by_sample = {s["sample_id"]: s for s in samples}
    for point in body["points"]:
        sample = by_sample[point["sample_id"]]
        candidate = next(c for c in sample["candidates"] if c["name"] == point["candidate"])
        assert point["ifd"] == pytest.approx(candidate["ifd"])
        assert point["rifd"] == pytest.approx(candidate["rifd"])
        assert (point["sample_decision"], point["reason"]) == (sample["decision"], sample["reason"])
        chosen = sample["decision"] == "retained" and sample["chosen_candidate"] == point["candidate"]
        assert point["decision"] == ("retained" if chosen else "rejected")
        assert point["frontier_score"] is not None
    assert (
        sum(p["decision"] == "retained" for p in body["points"])
        == client.get(f"/v1/jobs/{job_id}").json()["counts"]["retained"]
    )

    # The frontier scores are the report's: each teacher's median matches.
    report = client.get(f"/v1/jobs/{job_id}/report").json()
    for teacher in report["teachers"]:
        name = None if teacher["is_original"] else teacher["teacher"]
        scores = sorted(p["frontier_score"] for p in body["points"] if p["teacher"] == name)
        middle = len(scores) // 2
        median = scores[middle] if len(scores) % 2 else (scores[middle - 1] + scores[middle]) / 2
        assert median == pytest.approx(teacher["frontier_score"]["p50"])

    # A re-decision is what the points show by default; the job's own set stays readable by id.
    own = body["decision_set"]["id"]
    redecided = client.post(f"/v1/jobs/{job_id}/decide", json={"policy": "frontier_band"}).json()
    latest = client.get(f"/v1/jobs/{job_id}/points").json()
    assert latest["decision_set"]["id"] == redecided["id"]
    assert {p["zone"] for p in latest["points"] if p["decision"] == "retained"} == {"inside"}
    assert client.get(f"/v1/jobs/{job_id}/points", params={"decision_set": own}).json()["points"] == body["points"]
    assert client.get(f"/v1/jobs/{job_id}/points", params={"decision_set": own + 999}).status_code == 404


def test_max_points_sends_every_kth_sample_with_the_whole_jobs_frontier_scores(
    client: TestClient, small_student: Path
) -> None:
    job = create(client, small_student, example_records(9, start=START + 8))
    run_job(job)
    url = f"/v1/jobs/{job['id']}/points"
    everything = client.get(url).json()
    total = len(everything["points"])
    assert (everything["total_points"], everything["stride"]) == (total, 1)
    assert client.get(url, params={"max_points": total}).json()["points"] == everything["points"]

    sampled = client.get(url, params={"max_points": total // 3}).json()
    stride = sampled["stride"]
    assert stride == -(-total // (total // 3)) > 1
    assert sampled["total_points"] == total
    samples = list(dict.fromkeys(p["sample_id"] for p in everything["points"]))
    kept = samples[::stride]
    # Whole samples, every stride-th in input order, each point exactly as in the full answer (scores included).
    assert sampled["points"] == [p for p in everything["points"] if p["sample_id"] in kept]
    assert client.get(url, params={"max_points": 0}).status_code == 422
