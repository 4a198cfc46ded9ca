"""`GET /metrics` on both deployments: Prometheus text with jobs by state, scoring totals, queue depth, latency."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from alembic import command
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from core.scores import TOKEN_COUNT_FIELDS
from service import migrate
from service.db import get_engine
from tests.service.test_jobs_api import create, run_job
from tests.services import Deployment, example_records


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_metrics_follow_a_job(deployment: Deployment, client: TestClient, small_student: Path) -> None:
    before = scrape(client)
    job = create(client, small_student, example_records(3, start=170))
    queued = scrape(client)
    assert queued[("frontier_jobs", (("status", "queued"),))] == before[("frontier_jobs", (("status", "queued"),))] + 1
    assert queued[("frontier_queue_depth", ())] >= 1  # the job's chunk tasks are on the broker

    run_job(job)
    after = scrape(client)
    succeeded = ("frontier_jobs", (("status", "succeeded"),))
    assert after[succeeded] == before[succeeded] + 1
    scored = after[("frontier_candidates_scored_total", ())] - before[("frontier_candidates_scored_total", ())]
    assert scored == job["progress"]["candidates"]
    # Tokens: exactly the four scored spans of every scored candidate of this job (the job row's running total).
    samples = client.get(f"/v1/jobs/{job['id']}/samples", params={"limit": 100}).json()["items"]
    spans = TOKEN_COUNT_FIELDS
    expected_tokens = sum(c[n] for s in samples for c in s["candidates"] if c["status"] == "scored" for n in spans)
    tokens = after[("frontier_scored_tokens_total", ())] - before[("frontier_scored_tokens_total", ())]
    assert tokens == expected_tokens > 0
    assert after[("frontier_scoring_seconds_total", ())] > 0
    assert after[("frontier_scoring_tokens_per_second", ())] > 0
    # Latency is recorded per route template, not per job id.
    routes = {dict(labels).get("route") for (name, labels) in after if name.startswith("frontier_http_request")}
    assert "/v1/jobs" in routes
    assert all(job["id"] not in (route or "") for route in routes)


@pytest.mark.parametrize("deployment", ["embedded"], indirect=True)
def test_migration_0005_backfills_the_jobs_scoring_totals(
    deployment: Deployment, client: TestClient, small_student: Path
) -> None:
    # The totals a job accumulated chunk by chunk equal what migration 0005 computes from its candidates.
    job = create(client, small_student, example_records(3, start=173))
    run_job(job)
    url = deployment.settings.database_dsn

    def totals() -> tuple[int, int]:
        with get_engine(url).connect() as connection:
            row = connection.execute(
                text("SELECT scored_candidates, scored_tokens FROM jobs WHERE id = :id"),
                {"id": uuid.UUID(job["id"]).hex},
            ).one()
        return int(row[0]), int(row[1])

    accumulated = totals()
    assert accumulated[0] == job["progress"]["candidates"]
    command.downgrade(migrate.alembic_config(url), "0004")
    migrate.upgrade(url)
    assert totals() == accumulated
