"""Stop and restart the broker and the database under a running job, with the API and a prefork worker up."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.reliability.conftest import Stack, create_job, wait_decided_exactly_once, wait_until
from tests.services import as_jsonl, example_records

pytestmark = pytest.mark.slow

JOB_TIMEOUT_S = 240.0
# The sweep re-sends what the restarted broker lost once it has waited this long.
CHUNK_TIMEOUT_S = "10"


def chunks_done(stack: Stack, job_id: uuid.UUID) -> int:
    return sum(chunk.status == "done" for chunk in stack.chunks(job_id))


def test_redis_restarted_mid_job_loses_no_job(stack: Stack, client: TestClient, small_student: Path) -> None:
    worker = stack.start_worker(CHUNK_TIMEOUT_S=CHUNK_TIMEOUT_S, SWEEP_INTERVAL_S="1")
    running = create_job(client, small_student, 24, start=80)
    wait_until(lambda: chunks_done(stack, running) >= 2, JOB_TIMEOUT_S, "two chunks to be scored")

    # Without persistence: every queued message is gone with it.
    stack.redis.stop()
    stopped_at = time.monotonic()
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["broker"].startswith("unreachable")
    # A job created meanwhile is stored and accepted; its chunks wait for the sweep.
    accepted = create_job(client, small_student, 8, start=104)
    time.sleep(max(0.0, 2.0 - (time.monotonic() - stopped_at)))
    stack.redis.start()
    restarted_at = time.monotonic()

    wait_decided_exactly_once(stack, worker, {running: 24, accepted: 8}, JOB_TIMEOUT_S)
    recovered_s = round(time.monotonic() - restarted_at, 2)
    assert client.get("/readyz").status_code == 200
    assert "sweep: job" in worker.log.read_text()
    outage_s = round(restarted_at - stopped_at, 2)
    print(json.dumps({"test": "redis restart", "outage_s": outage_s, "both_jobs_done_after_restart_s": recovered_s}))


def test_postgres_stopped_answers_503_recovers_by_itself_and_loses_no_job(
    stack: Stack, client: TestClient, small_student: Path
) -> None:
    worker = stack.start_worker(CHUNK_TIMEOUT_S=CHUNK_TIMEOUT_S, SWEEP_INTERVAL_S="1")
    running = create_job(client, small_student, 24, start=112)
    wait_until(lambda: chunks_done(stack, running) >= 1, JOB_TIMEOUT_S, "a chunk to be scored")

    stack.postgres.stop()
    stopped_at = time.monotonic()
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["database"].startswith("unreachable")
    valid = as_jsonl(example_records(8, start=136))
    refused = client.post("/v1/jobs", files={"file": ("data.jsonl", valid)}, data={"student": str(small_student)})
    assert refused.status_code == 503, refused.text
    assert refused.json()["detail"]["message"].startswith("the database is unavailable; nothing was changed")
    assert refused.headers["Retry-After"] == "5"
    assert client.get(f"/v1/jobs/{running}").status_code == 503
    time.sleep(max(0.0, 2.0 - (time.monotonic() - stopped_at)))

    stack.postgres.start()
    restarted_at = time.monotonic()
    # The same API process answers again by itself: the pool drops dead connections and reconnects.
    wait_until(lambda: client.get("/readyz").status_code == 200, 60, "/readyz to answer 200 again", interval=0.1)
    ready_s = round(time.monotonic() - restarted_at, 2)
    accepted = create_job(client, small_student, 8, start=136)

    wait_decided_exactly_once(stack, worker, {running: 24, accepted: 8}, JOB_TIMEOUT_S)
    recovered_s = round(time.monotonic() - restarted_at, 2)
    # The worker met the outage (its tasks retried on OperationalError) and came through it.
    assert "OperationalError" in worker.log.read_text()
    outage_s = round(restarted_at - stopped_at, 2)
    figures = {"outage_s": outage_s, "readyz_200_after_s": ready_s, "both_jobs_done_after_restart_s": recovered_s}
    print(json.dumps({"test": "postgres stop", **figures}))
