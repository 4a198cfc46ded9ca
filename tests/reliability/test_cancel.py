"""Cancel a job mid-run with a real worker: its remaining chunks are skipped and what was scored is kept."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.reliability.conftest import Stack, create_job, wait_until

pytestmark = pytest.mark.slow


def test_cancel_mid_job_stops_its_chunks_and_keeps_what_was_scored(
    stack: Stack, client: TestClient, small_student: Path
) -> None:
    n_samples = 32  # eight chunks of four
    worker = stack.start_worker(SWEEP_INTERVAL_S="0")
    job_id = create_job(client, small_student, n_samples, start=144)
    wait_until(
        lambda: sum(chunk.status == "done" for chunk in stack.chunks(job_id)) >= 2, 240, "two chunks to be scored"
    )

    cancelled = client.post(f"/v1/jobs/{job_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    cancelled_at = datetime.fromisoformat(cancelled.json()["timings"]["finished_at"])
    done_at_cancel = {chunk.index for chunk in stack.chunks(job_id) if chunk.status == "done"}
    drain_started = time.monotonic()
    # Every message of the job is taken and acknowledged, and the worker is idle.
    wait_until(lambda: stack.queue_drained() and stack.worker_outside_transactions(), 120, "the queue to drain")
    drained_s = round(time.monotonic() - drain_started, 2)

    chunks = stack.chunks(job_id)
    # Workers stopped taking its chunks: none was claimed after the cancel, none finished after it.
    assert [chunk.index for chunk in chunks if chunk.started_at is not None and chunk.started_at > cancelled_at] == []
    assert {chunk.index for chunk in chunks if chunk.status == "done"} == done_at_cancel
    assert len(done_at_cancel) < len(chunks)
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "cancelled"
    assert job["error"] is None
    # What was scored is kept and readable: every sample of the chunks done before the cancel has its scores.
    [(scored_samples,)] = stack.query("SELECT scored_samples FROM jobs WHERE id = %s", job_id)
    assert scored_samples == 4 * len(done_at_cancel)
    samples = client.get(f"/v1/jobs/{job_id}/samples", params={"limit": 500}).json()["items"]
    assert len(samples) == n_samples
    scored = {
        sample["ordinal"] // 4 for sample in samples if all(c["status"] != "pending" for c in sample["candidates"])
    }
    assert scored == done_at_cancel
    assert all(sample["decision"] is None for sample in samples)
    assert stack.query("SELECT count(*) FROM decision_sets WHERE job_id = %s", job_id) == [(0,)]
    assert client.post(f"/v1/jobs/{job_id}/cancel").status_code == 409
    assert worker.process.poll() is None
    print(json.dumps({"test": "cancel", "chunks_done_before_cancel": len(done_at_cancel), "drained_s": drained_s}))
