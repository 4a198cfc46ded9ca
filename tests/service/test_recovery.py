"""Stuck work on both deployments, without a worker: the sweep's plain functions over real databases, with the
clock passed in, and `frontier sweep` once through the real broker."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from frontier import cli
from service.db import session_scope, unit_of_work
from service.jobs import guards, lifecycle, presenters, recovery
from service.models import Chunk, ChunkStatus, Decision, DecisionSet, JobStatus
from service.settings import get_settings
from tests.service.test_jobs_api import create
from tests.services import TEST_QUEUE, Deployment, example_records
from workers import curation

TIMEOUT_S = 600.0
MAX_ATTEMPTS = 3
N_SAMPLES = 10  # three chunks of TEST_CHUNK_SIZE = 4


@pytest.fixture(autouse=True)
def _drop_queued_chunks(deployment: Deployment) -> Iterator[None]:
    """Leave the session's Redis queue as found: no worker consumes these jobs' messages."""
    yield
    if deployment.name == "postgres":
        redis.Redis.from_url(deployment.env["FRONTIER_BROKER_URL"]).delete(TEST_QUEUE)


def chunk_rows(job_id: uuid.UUID) -> list[tuple[int, str, int]]:
    with session_scope() as session:
        rows = session.execute(
            select(Chunk.index, Chunk.status, Chunk.attempts).where(Chunk.job_id == job_id).order_by(Chunk.index)
        ).all()
    return [(index, status, attempts) for index, status, attempts in rows]


def created_at(job_id: uuid.UUID) -> datetime:
    with session_scope() as session:
        moment = presenters.as_utc(guards.get_job(session, job_id).created_at)
    assert moment is not None
    return moment


def recover(job_id: uuid.UUID, now: datetime) -> recovery.Recovery:
    with unit_of_work() as uow:
        stalled = recovery.stalled_jobs(uow.session, now=now, timeout_s=TIMEOUT_S)
        result = recovery.recover_job(uow.session, job_id, now=now, timeout_s=TIMEOUT_S, max_attempts=MAX_ATTEMPTS)
    assert (job_id in stalled) == bool(result.requeued or result.failed or result.finalized)
    return result


def claim(job_id: uuid.UUID, index: int) -> lifecycle.ChunkWork | None:
    with session_scope() as session:
        return recovery.claim_chunk(session, job_id, index, max_attempts=MAX_ATTEMPTS)


def new_job(client: TestClient, student: Path) -> uuid.UUID:
    return uuid.UUID(create(client, student, example_records(N_SAMPLES))["id"])


def test_a_chunk_whose_worker_is_gone_is_requeued_after_the_timeout(
    deployment: Deployment, client: TestClient, small_student: Path
) -> None:
    job_id = new_job(client, small_student)
    assert claim(job_id, 0) is not None
    start = created_at(job_id)
    # Within the timeout nothing is stalled: the worker may still be scoring, the other chunks still queued.
    assert recover(job_id, start + timedelta(seconds=TIMEOUT_S / 2)) == recovery.Recovery(job_id)
    assert chunk_rows(job_id) == [(0, "running", 1), (1, "pending", 0), (2, "pending", 0)]

    later = start + timedelta(seconds=TIMEOUT_S + 5)
    assert recover(job_id, later).requeued == (0, 1, 2)
    assert chunk_rows(job_id) == [(0, "pending", 1), (1, "pending", 0), (2, "pending", 0)]
    # Re-sent once per timeout, not once per sweep.
    assert recover(job_id, later + timedelta(seconds=1)) == recovery.Recovery(job_id)
    assert recover(job_id, later + timedelta(seconds=TIMEOUT_S + 1)).requeued == (0, 1, 2)
    # The redelivered chunk is claimed again: the second attempt.
    assert claim(job_id, 0) is not None
    assert chunk_rows(job_id)[0] == (0, "running", 2)


def test_pending_chunks_are_resent_only_once_their_job_stops_making_progress(
    deployment: Deployment, client: TestClient, small_student: Path
) -> None:
    job_id = new_job(client, small_student)
    with session_scope() as session:
        # A job that waited in the queue for a long time before its first chunk was taken.
        guards.get_job(session, job_id).created_at = created_at(job_id) - timedelta(seconds=3 * TIMEOUT_S)
    work = claim(job_id, 0)
    assert work is not None
    with session_scope() as session:
        lifecycle.record_chunk_scores(
            session,
            job_id,
            0,
            [{"id": c.id, "status": "unscored", "error": "test"} for c in work.candidates],
            scoring_seconds=0.0,
        )
        finished_at = presenters.as_utc(
            session.scalars(select(Chunk.finished_at).where(Chunk.job_id == job_id, Chunk.index == 0)).first()
        )
    assert finished_at is not None
    # Chunks are being taken: the pending ones are still on their way through the queue.
    assert recover(job_id, finished_at + timedelta(seconds=TIMEOUT_S / 2)) == recovery.Recovery(job_id)
    # No chunk taken for a whole timeout: their messages are lost, and they are re-sent.
    assert recover(job_id, finished_at + timedelta(seconds=TIMEOUT_S + 1)).requeued == (1, 2)


def test_a_chunk_that_keeps_losing_its_worker_fails_the_job_with_its_cause(
    deployment: Deployment, client: TestClient, small_student: Path
) -> None:
    job_id = new_job(client, small_student)
    for _ in range(MAX_ATTEMPTS):
        assert claim(job_id, 1) is not None
    result = recover(job_id, datetime.now().astimezone() + timedelta(seconds=TIMEOUT_S + 5))
    assert result.failed is not None
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "failed"
    assert job["error"] == result.failed
    assert job["error"].startswith(f"chunk 1: no result after {MAX_ATTEMPTS} attempts")
    assert f"FRONTIER_MAX_CHUNK_ATTEMPTS={MAX_ATTEMPTS}" in job["error"]
    assert chunk_rows(job_id)[1] == (1, "failed", MAX_ATTEMPTS)
    # A failed job is finished: never swept again, never claimed again.
    assert recover(job_id, datetime.now().astimezone() + timedelta(days=1)) == recovery.Recovery(job_id)
    assert claim(job_id, 0) is None


def test_a_chunk_redelivered_after_its_last_attempt_fails_the_job_instead_of_scoring(
    deployment: Deployment, client: TestClient, small_student: Path
) -> None:
    job_id = new_job(client, small_student)
    for _ in range(MAX_ATTEMPTS):
        assert claim(job_id, 2) is not None
    # What a worker killed on this chunk every time would see: one more delivery, out of attempts.
    assert claim(job_id, 2) is None
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "failed"
    assert job["error"].startswith(f"chunk 2: started {MAX_ATTEMPTS} times without a result")


def test_a_scored_job_whose_finalize_was_lost_is_finalized_once(
    deployment: Deployment, client: TestClient, small_student: Path
) -> None:
    job_id = new_job(client, small_student)
    for index in range(3):
        work = claim(job_id, index)
        assert work is not None
        rows: list[dict[str, Any]] = [{"id": c.id, "status": "unscored", "error": "test"} for c in work.candidates]
        with session_scope() as session:
            lifecycle.record_chunk_scores(session, job_id, index, rows, scoring_seconds=0.0)
    with session_scope() as session:
        scored_at = presenters.as_utc(guards.get_job(session, job_id).scored_at)
    assert scored_at is not None
    assert recover(job_id, scored_at + timedelta(seconds=1)) == recovery.Recovery(job_id)
    assert recover(job_id, scored_at + timedelta(seconds=TIMEOUT_S + 1)).finalized
    assert recover(job_id, scored_at + timedelta(seconds=2 * TIMEOUT_S)) == recovery.Recovery(job_id)
    # The finalize task arriving late changes nothing: one decision set, one decision per sample.
    assert curation.finalize(job_id) is False
    with session_scope() as session:
        assert session.scalar(select(func.count()).where(DecisionSet.job_id == job_id)) == 1
        assert session.scalar(select(func.count()).where(Decision.job_id == job_id)) == N_SAMPLES
    assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "succeeded"


def test_cancelled_jobs_are_never_swept(deployment: Deployment, client: TestClient, small_student: Path) -> None:
    job_id = new_job(client, small_student)
    assert claim(job_id, 0) is not None
    assert client.post(f"/v1/jobs/{job_id}/cancel").status_code == 200
    assert recover(job_id, datetime.now().astimezone() + timedelta(days=1)) == recovery.Recovery(job_id)
    with session_scope() as session:
        assert guards.get_job(session, job_id).status == JobStatus.cancelled
        chunk = session.scalars(select(Chunk).where(Chunk.job_id == job_id, Chunk.index == 0)).one()
        assert chunk.status == ChunkStatus.running


def test_frontier_sweep_requeues_through_the_broker(
    deployment: Deployment,
    client: TestClient,
    small_student: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    job_id = new_job(client, small_student)
    assert claim(job_id, 0) is not None
    assert cli.main(["sweep"]) == 0
    assert str(job_id) not in capsys.readouterr().out
    # A timeout shorter than the time since the claim: the next sweep finds the chunk stalled.
    monkeypatch.setenv("FRONTIER_CHUNK_TIMEOUT_S", "0.001")
    get_settings.cache_clear()
    assert cli.main(["sweep"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    ours = [line for line in lines if line["job_id"] == str(job_id)]
    assert ours == [
        {"job_id": str(job_id), "requeued": [0, 1, 2], "failed": None, "finalized": False, "ingest_requeued": False}
    ]
    assert chunk_rows(job_id) == [(0, "pending", 1), (1, "pending", 0), (2, "pending", 0)]
