"""`GET /metrics` on both deployments: Prometheus text with jobs by state, scoring totals, queue depth, latency."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

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
    assert after[("frontier_scored_tokens_total", ())] > before[("frontier_scored_tokens_total", ())]
    assert after[("frontier_scoring_seconds_total", ())] > 0
    assert after[("frontier_scoring_tokens_per_second", ())] > 0
    # Latency is recorded per route template, not per job id.
    routes = {dict(labels).get("route") for (name, labels) in after if name.startswith("frontier_http_request")}
    assert "/v1/jobs" in routes
    assert all(job["id"] not in (route or "") for route in routes)
