"""Re-deciding over stored scores, decision sets, what-if sweeps, the report, manifest, card and bundle over HTTP."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.db import session_scope
from service.models import Candidate, Decision, DecisionSet, Job
from tests.service.test_jobs_api import create, run_job
from tests.services import TEST_QUEUE, Deployment, example_records


def row_counts() -> dict[str, int]:
    with session_scope() as session:
        return {
            model.__tablename__: int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Job, Candidate, DecisionSet, Decision)
        }


@pytest.fixture(autouse=True)
def _drop_queued_chunks(deployment: Deployment) -> Iterator[None]:
    """Leave the session's Redis queue as found: these jobs' chunks run directly, their messages stay unconsumed."""
    yield
    if deployment.name == "postgres":
        redis.Redis.from_url(deployment.env["FRONTIER_BROKER_URL"]).delete(TEST_QUEUE)


# Records no other service test uses: the Postgres score cache lasts the session, and the job tests expect to score.
START = 150


def records(n: int) -> list[dict[str, Any]]:
    return example_records(n, start=START)


@pytest.fixture
def finished(deployment: Deployment, client: TestClient, small_student: Path) -> dict[str, Any]:
    """A succeeded 10-sample job decided by the default policy."""
    job = create(client, small_student, records(10))
    run_job(job)
    return job


def test_policies_are_listed_with_versions_and_defaults(client: TestClient) -> None:
    listed = {p["name"]: p for p in client.get("/v1/policies").json()}
    assert list(listed) == ["reflection", "ifd_topk", "frontier_band", "best_candidate", "rsr"]
    band = listed["frontier_band"]
    assert band["version"] == "1"
    assert band["defaults"]["high"] == 0.8416
    assert set(band["params_schema"]["properties"]) == set(band["defaults"])
    assert "below_frontier" in band["reason_codes"]


def test_redecide_lists_sets_and_reads_any_of_them(client: TestClient, finished: dict[str, Any]) -> None:
    job_id = finished["id"]
    own = client.get(f"/v1/jobs/{job_id}/decision-sets").json()["items"]
    assert len(own) == 1
    assert (own[0]["own"], own[0]["latest"], own[0]["policy"]["name"]) == (True, True, "reflection")

    created = client.post(f"/v1/jobs/{job_id}/decide", json={"policy": "ifd_topk", "params": {"k_percent": 30}})
    assert created.status_code == 201, created.text
    redecided = created.json()
    assert redecided["policy"] == {
        "name": "ifd_topk",
        "version": "1",
        "params": {"k_percent": 30.0, "score": "ifd", "candidates": "all", "reject_overconfident": False},
    }
    assert redecided["counts"]["retained"] == 3  # ceil(10 * 30%)
    sets = client.get(f"/v1/jobs/{job_id}/decision-sets").json()["items"]
    assert [(s["id"], s["own"], s["latest"]) for s in sets] == [
        (own[0]["id"], True, False),
        (redecided["id"], False, True),
    ]

    # The latest set is the default; the job's own stays readable by id, side by side.
    latest = client.get(f"/v1/jobs/{job_id}/samples", params={"limit": 100}).json()
    first = client.get(f"/v1/jobs/{job_id}/samples", params={"limit": 100, "decision_set": own[0]["id"]}).json()
    assert latest["decision_set"] == redecided["id"]
    assert latest["policy"]["name"] == "ifd_topk"
    assert {i["reason"] for i in latest["items"]} <= {"top_k_ifd", "below_top_k", "misaligned_ifd_ge_1"}
    assert first["decision_set"] == own[0]["id"]
    assert first["policy"]["name"] == "reflection"
    one = client.get(
        f"/v1/jobs/{job_id}/samples/{first['items'][0]['sample_id']}", params={"decision_set": own[0]["id"]}
    )
    assert one.json()["reason"] == first["items"][0]["reason"]

    exported = client.get(f"/v1/jobs/{job_id}/export", params={"decision_set": own[0]["id"], "scores": "true"})
    assert exported.headers["x-frontier-decision-set"] == str(own[0]["id"])
    lines = [json.loads(line) for line in exported.text.splitlines()]
    assert [line["id"] for line in lines] == [i["sample_id"] for i in first["items"] if i["decision"] == "retained"]
    assert {line["curation"]["policy"]["decision_set"] for line in lines} == {own[0]["id"]}
    newest = client.get(f"/v1/jobs/{job_id}/export")
    assert newest.headers["x-frontier-decision-set"] == str(redecided["id"])
    assert len(newest.text.splitlines()) == 3


def test_what_if_sweeps_in_memory_and_writes_nothing(client: TestClient, finished: dict[str, Any]) -> None:
    job_id = finished["id"]
    before = row_counts()
    response = client.post(
        f"/v1/jobs/{job_id}/what-if",
        json={
            "policy": "ifd_topk",
            "params": {"score": "ifd"},
            "sweep": {"param": "k_percent", "values": [10, 50, 100]},
        },
    )
    assert response.status_code == 200, response.text
    sweep = response.json()
    assert (sweep["policy"], sweep["param"]) == ("ifd_topk", "k_percent")
    kept = [point["counts"]["retained"] for point in sweep["points"]]
    assert kept[0] == 1
    assert kept[0] <= kept[1] <= kept[2]
    assert [point["retained_fraction"] for point in sweep["points"]] == [k / 10 for k in kept]
    for point in sweep["points"]:
        teachers = point["teachers"]
        assert next(iter(teachers)) == "original"
        assert sum(t["accepted"] for t in teachers.values()) == point["counts"]["retained"]
        assert teachers["original"]["candidates"] == 10
    assert sweep["points"][1]["params"]["k_percent"] == 50.0
    assert row_counts() == before


@pytest.mark.parametrize(
    ("path", "body", "code", "field", "text"),
    [
        ("decide", {"policy": "best"}, 422, "policy", "unknown policy 'best'"),
        ("decide", {"policy": "frontier_band", "params": {"high": -2}}, 422, "params", "low (-0.8416) must be below"),
        ("decide", {"policy": "ifd_topk", "params": {"topk": 5}}, 422, "params", "topk: Extra inputs"),
        ("what-if", {"policy": "nope", "sweep": {"param": "x", "values": [1]}}, 422, "policy", "unknown policy"),
        (
            "what-if",
            {"policy": "frontier_band", "sweep": {"param": "width", "values": [1]}},
            422,
            "sweep.param",
            "policy 'frontier_band' has no parameter 'width' to sweep (known: high, ifd_max",
        ),
        (
            "what-if",
            {"policy": "ifd_topk", "sweep": {"param": "k_percent", "values": [10, 500]}},
            422,
            "sweep.values",
            "sweep value 500: policy 'ifd_topk': invalid params: k_percent",
        ),
        ("what-if", {"policy": "ifd_topk", "sweep": {"param": "k_percent", "values": []}}, 422, None, None),
        (
            "what-if",
            {"policy": "ifd_topk", "params": {"k": 5}, "sweep": {"param": "k_percent", "values": [5]}},
            422,
            "params",
            "policy 'ifd_topk': invalid params: k: Extra inputs are not permitted",
        ),
    ],
)
def test_bad_decide_and_what_if_requests_are_4xx_and_write_nothing(
    client: TestClient,
    finished: dict[str, Any],
    path: str,
    body: dict[str, Any],
    code: int,
    field: str | None,
    text: str | None,
) -> None:
    before = row_counts()
    response = client.post(f"/v1/jobs/{finished['id']}/{path}", json=body)
    assert response.status_code == code, response.text
    detail = response.json()["detail"]
    if text is not None:
        assert text in detail["message"]
        assert detail["field"] == field
    assert row_counts() == before


def test_unknown_decision_set_job_or_unfinished_job(
    client: TestClient, finished: dict[str, Any], small_student: Path
) -> None:
    job_id = finished["id"]
    for path in ("samples", "export", "report", "manifest", "card", f"samples/{records(1)[0]['id']}"):
        response = client.get(f"/v1/jobs/{job_id}/{path}", params={"decision_set": 987654})
        assert response.status_code == 404, path
        assert f"job {job_id} has no decision set 987654" in response.json()["detail"]["message"]
    missing = uuid.uuid4()
    assert client.post(f"/v1/jobs/{missing}/decide", json={"policy": "reflection"}).status_code == 404
    assert client.get(f"/v1/jobs/{missing}/decision-sets").status_code == 404
    queued = create(client, small_student, records(2))
    before = row_counts()
    conflict = client.post(f"/v1/jobs/{queued['id']}/decide", json={"policy": "reflection"})
    assert conflict.status_code == 409
    assert "only a succeeded job can be re-decided" in conflict.json()["detail"]["message"]
    sweep = {"policy": "reflection", "sweep": {"param": "rifd_max", "values": [1.0]}}
    assert client.post(f"/v1/jobs/{queued['id']}/what-if", json=sweep).status_code == 409
    for path in ("report", "manifest", "card"):
        assert client.get(f"/v1/jobs/{queued['id']}/{path}").status_code == 409, path
    assert row_counts() == before


def test_report_manifest_card_and_bundle(client: TestClient, finished: dict[str, Any]) -> None:
    job_id = finished["id"]
    report = client.get(f"/v1/jobs/{job_id}/report").json()
    teachers = {t["teacher"]: t for t in report["teachers"]}
    assert teachers["original"]["candidates"] == 10
    for name, entry in teachers.items():
        expected = sum(1 for r in records(10) for x in r["refinements"] if x["teacher"] == name)
        assert entry["candidates"] == (10 if name == "original" else expected)
        assert sum(entry["zones"].values()) == pytest.approx(1.0)
    assert report["ranking"] == [t["teacher"] for t in report["teachers"] if not t["is_original"]]
    assert [t["rank"] for t in report["teachers"][1:]] == list(range(1, len(report["ranking"]) + 1))
    assert report["recommendation"].startswith(report["ranking"][0])
    assert report["frontier"]["from_decision_set"] is False
    accepted = sum(t["accepted"] for t in report["teachers"])
    assert accepted == client.get(f"/v1/jobs/{job_id}").json()["counts"]["retained"]
    markdown = client.get(f"/v1/jobs/{job_id}/report", params={"format": "markdown"})
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert "| rank | teacher |" in markdown.text

    manifest = client.get(f"/v1/jobs/{job_id}/manifest").json()
    assert manifest["job_id"] == job_id
    assert manifest["student"]["fingerprint"] == finished["student"]["fingerprint"]
    assert manifest["template"] == "plain"
    assert manifest["scoring_versions"]
    assert manifest["decision_set"]["policy"]["name"] == "reflection"
    counted = sum(n for reasons in manifest["reasons"].values() for n in reasons.values())
    assert counted == 10
    assert manifest["code"]["package"] == "frontier-curator"
    assert manifest["code"]["version"] == "0.1.0"
    card = client.get(f"/v1/jobs/{job_id}/card").text
    assert finished["student"]["fingerprint"] in card
    assert '"policy": "reflection"' in card

    bundle = client.get(f"/v1/jobs/{job_id}/export", params={"bundle": "true", "decision": "all"})
    assert bundle.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(bundle.content))
    assert sorted(archive.namelist()) == ["README.md", "all.jsonl", "manifest.json"]
    assert len(archive.read("all.jsonl").decode().splitlines()) == 10
    assert json.loads(archive.read("manifest.json"))["decision_set"]["id"] == manifest["decision_set"]["id"]
    assert archive.read("README.md").decode().startswith("# Curated dataset")


def test_report_warns_when_a_cut_rejects_nearly_everything(client: TestClient, finished: dict[str, Any]) -> None:
    job_id = finished["id"]
    samples = client.get(f"/v1/jobs/{job_id}/samples", params={"limit": 100}).json()["items"]
    rifds = sorted(c["rifd"] for s in samples for c in s["candidates"] if c["status"] == "scored")
    # The job's own decision set (reflection, r-IFD < 1): a warning about the r-IFD cut exactly when 90% fail it.
    own = client.get(f"/v1/jobs/{job_id}/report").json()
    fails = sum(r >= 1.0 for r in rifds) / len(rifds)
    assert any(w["param"] == "rifd_max" for w in own["warnings"]) == (fails >= 0.9)

    # A cut below every r-IFD: nothing is kept, and the report says so and suggests the job's median.
    client.post(f"/v1/jobs/{job_id}/decide", json={"policy": "frontier_band", "params": {"rifd_max": 0.01}})
    report = client.get(f"/v1/jobs/{job_id}/report").json()
    low_yield, cut = report["warnings"]
    assert (low_yield["code"], low_yield["param"], low_yield["suggested"]) == ("low_yield", None, None)
    assert low_yield["message"].startswith("This decision set keeps 0 of 10 samples (0.0%)")
    middle = len(rifds) // 2
    median = rifds[middle] if len(rifds) % 2 else (rifds[middle - 1] + rifds[middle]) / 2
    assert (cut["code"], cut["param"], cut["suggested"]) == ("cut_fails_most", "rifd_max", round(median, 3))
    message = cut["message"]
    assert message.startswith(f"r-IFD >= rifd_max (0.01) for 100% of scored candidates (median r-IFD {median:.3f})")
    assert f"rifd_max = {median:.3f}" in message
    markdown = client.get(f"/v1/jobs/{job_id}/report", params={"format": "markdown"}).text
    assert f"**Warnings.**\n\n- {low_yield['message']}\n- {message}\n" in markdown

    # The suggestion, taken: about half of the candidates pass the r-IFD cut again.
    retry = client.post(f"/v1/jobs/{job_id}/decide", json={"policy": "frontier_band", "params": {"rifd_max": median}})
    assert retry.status_code == 201, retry.text
    assert not any(w["param"] == "rifd_max" for w in client.get(f"/v1/jobs/{job_id}/report").json()["warnings"])

    # ifd_topk keeps its k% by design: no low-yield warning for k = 1 (one sample of ten).
    client.post(f"/v1/jobs/{job_id}/decide", json={"policy": "ifd_topk", "params": {"k_percent": 1}})
    assert not any(w["code"] == "low_yield" for w in client.get(f"/v1/jobs/{job_id}/report").json()["warnings"])
