"""What the report's teacher ranking rests on: dataset RSR when every teacher has rank statistics, frontier fit
for jobs scored before they existed, and each signal's own ranking beside it."""

from __future__ import annotations

import uuid
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import update

from service.db import session_scope
from service.models import Candidate
from tests.service.test_jobs_api import create, run_job
from tests.services import Deployment, example_records


def test_the_ranking_rests_on_rsr_and_falls_back_to_frontier_fit(
    deployment: Deployment, client: TestClient, small_student: Path
) -> None:
    job = create(client, small_student, example_records(12))
    run_job(job)
    report = client.get(f"/v1/jobs/{job['id']}/report").json()
    teachers = [t for t in report["teachers"] if not t["is_original"]]
    assert report["ranking_basis"] == "rsr"
    assert report["ranking"] == report["rankings"]["rsr"] == [t["teacher"] for t in teachers]
    assert [t["rsr"] for t in teachers] == sorted(t["rsr"] for t in teachers)
    assert sorted(report["rankings"]["frontier"]) == sorted(report["ranking"])
    assert report["signals_agree"] == (report["rankings"]["frontier"][0] == report["ranking"][0])
    markdown = client.get(f"/v1/jobs/{job['id']}/report", params={"format": "markdown"}).text
    assert "Ranked by dataset RSR, lower first" in markdown

    # A job scored before rank statistics existed (scoring version 1): the frontier ranking, as before.
    with session_scope() as session:
        session.execute(
            update(Candidate).where(Candidate.job_id == uuid.UUID(job["id"])).values(rank_mean=None, rsr=None)
        )
    old = client.get(f"/v1/jobs/{job['id']}/report").json()
    assert old["ranking_basis"] == "frontier"
    assert old["ranking"] == old["rankings"]["frontier"] == report["rankings"]["frontier"]
    assert "rsr" not in old["rankings"]
    assert old["signals_agree"] is True
    assert old["recommendation"].startswith(f"{old['ranking'][0]} sits closest to this student's frontier")
