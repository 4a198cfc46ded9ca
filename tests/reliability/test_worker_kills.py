"""SIGKILL real prefork workers at each point of a chunk's life; lose the whole worker for good; kill a worker on
the same chunk until it runs out of attempts. Nothing is lost, nothing is decided twice, nothing runs forever.

The kill points are made deterministic by what the database shows (a claimed chunk, a worker with no
transaction open, a worker blocked on a lock the test holds) and by holding locks: with the job's row lock
held, a chunk killed "mid-scoring" cannot have committed; with Redis paused, a worker that has committed its
last chunk cannot have sent the finalize task or acknowledged the chunk.
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.settings import get_settings
from tests.reliability.conftest import (
    ChunkState,
    Stack,
    assert_decided_exactly_once,
    create_job,
    job_finished,
    wait_until,
)

pytestmark = pytest.mark.slow

JOB_TIMEOUT_S = 240.0


def running_chunk(stack: Stack, job_id: uuid.UUID, since: datetime, attempts: int | None = None) -> ChunkState | None:
    """The one chunk claimed after `since` that is running while the worker has no transaction open (it is loading
    the student or scoring); chunks whose pool process was killed stay `running` until redelivered, so are older."""
    running = [chunk for chunk in stack.chunks(job_id) if chunk.status == "running" and chunk.started_at > since]
    if len(running) != 1 or (attempts is not None and running[0].attempts != attempts):
        return None
    return running[0] if stack.worker_outside_transactions() else None


def chunk_done(stack: Stack, job_id: uuid.UUID, index: int) -> bool:
    return stack.chunks(job_id)[index].status == "done"


def seconds_since(moment: datetime, later: datetime) -> float:
    return round((later - moment).total_seconds(), 2)


def test_a_pool_process_killed_at_five_points_of_a_job_loses_and_duplicates_nothing(
    stack: Stack, client: TestClient, small_student: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    n_samples = 48
    # Six chunks of eight: long enough (a few hundred ms of scoring each) to be caught mid-scoring.
    monkeypatch.setenv("FRONTIER_CHUNK_SIZE", "8")
    get_settings.cache_clear()
    # The sweeper is off: what recovers here is Celery's acks_late + task_reject_on_worker_lost alone.
    worker = stack.start_worker(SWEEP_INTERVAL_S="0")
    job_id = create_job(client, small_student, n_samples, start=0)
    kills: list[dict[str, Any]] = []
    since = datetime.now(UTC)

    def kill(point: str, chunk: ChunkState | None) -> datetime:
        pid = worker.kill_child()
        at = datetime.now(UTC)
        kills.append({"point": point, "chunk": chunk and chunk.index, "pid": pid, "at": at})
        return at

    # 1. Student load: the first chunk of a fresh pool process, claimed, before torch is even imported.
    first = wait_until(lambda: running_chunk(stack, job_id, since, attempts=1), 60, "the first chunk to be claimed")
    with stack.job_lock(job_id):
        assert not worker.child_has_torch()
        since = kill("student load (first chunk of a fresh pool process, torch not yet imported)", first)

    # 2. Mid-scoring: once the replacement process has scored a chunk (its student is loaded). With the job lock
    # held, the chunk cannot commit, and a worker with no transaction open has not started writing.
    def scored_since() -> bool:
        return any(chunk.status == "done" and chunk.finished_at > since for chunk in stack.chunks(job_id))

    wait_until(scored_since, 120, "the replacement pool process to score a chunk")
    while True:
        scoring = wait_until(
            functools.partial(running_chunk, stack, job_id, since, attempts=1), 60, "a chunk being scored"
        )
        with stack.job_lock(job_id):
            if stack.worker_outside_transactions():
                since = kill("mid-scoring (student loaded, engine running, nothing written)", scoring)
                break
        # It finished scoring between the two looks: let it commit and take the next chunk.

    # 3. Just before the commit: a chunk is scored and its write waits on the job lock.
    writing = wait_until(lambda: running_chunk(stack, job_id, since, attempts=1), 120, "another chunk being scored")
    with stack.job_lock(job_id):
        wait_until(stack.worker_waits_on_a_lock, 60, "the worker to write the chunk's scores")
        since = kill("just before the chunk's commit (scores computed, write blocked)", writing)

    def last_chunk_claimed() -> ChunkState | None:
        left = [chunk for chunk in stack.chunks(job_id) if chunk.status != "done"]
        claimed = len(left) == 1 and left[0].status == "running" and left[0].started_at > since
        return left[0] if claimed else None

    last = wait_until(last_chunk_claimed, JOB_TIMEOUT_S, "the last chunk to be claimed")
    # Held until step 5: the finalize task can compute its decisions but not insert them.
    with stack.hold("LOCK TABLE decision_sets IN EXCLUSIVE MODE"):
        # 4. Just after the last chunk's commit: with Redis paused, the chunk is not acknowledged and the
        # finalize task it queues is not sent.
        with stack.job_lock(job_id):
            stack.redis.pause()
        try:
            wait_until(lambda: chunk_done(stack, job_id, last.index), 60, "the last chunk to commit")
            kill("just after the last chunk's commit (not acknowledged, finalize not sent)", last)
        finally:
            stack.redis.resume()

        # 5. Finalize: the redelivered last chunk (already done: skipped) queues the finalize task, which waits to
        # insert its decision set.
        wait_until(stack.worker_waits_on_a_lock, 60, "the finalize task to insert its decisions")
        assert stack.job_status(job_id) == "running"
        kill("finalize, before its commit (decisions computed, insert blocked)", None)

    assert wait_until(lambda: job_finished(stack, job_id), JOB_TIMEOUT_S, "the job to finish") == "succeeded", (
        worker.tail()
    )
    assert_decided_exactly_once(stack, job_id, n_samples)
    chunks = {chunk.index: chunk for chunk in stack.chunks(job_id)}
    # Each chunk killed before its commit was scored once more; the one killed after its commit was not.
    assert len({first.index, scoring.index, writing.index}) == 3
    assert [chunks[c.index].attempts for c in (first, scoring, writing)] == [2, 2, 2]
    assert chunks[last.index].attempts == last.attempts
    assert sum(chunk.attempts for chunk in chunks.values()) == len(chunks) + 3
    assert len({kill["pid"] for kill in kills}) == 5

    [(job_finished_at,)] = stack.query("SELECT finished_at FROM jobs WHERE id = %s", job_id)
    # Recovered: the killed chunk scored and committed again (points 1-3), or the job decided (points 4-5).
    redone = [chunks[chunk.index].finished_at for chunk in (first, scoring, writing)]
    for entry, until in zip(kills, [*redone, None, None], strict=True):
        entry["recovered_s"] = seconds_since(entry.pop("at"), until or job_finished_at)
    print(json.dumps({"test": "kill points", "samples": n_samples, "kills": kills}, default=str))


def test_a_worker_gone_for_good_has_its_chunk_requeued_by_the_sweep(
    stack: Stack, client: TestClient, small_student: Path
) -> None:
    n_samples = 16
    first = stack.start_worker(SWEEP_INTERVAL_S="0")
    since = datetime.now(UTC)
    job_id = create_job(client, small_student, n_samples, start=48)
    stuck = wait_until(lambda: running_chunk(stack, job_id, since), 60, "a chunk being scored")
    # The whole worker, main process included: nothing rejects the message, it stays unacknowledged in Redis
    # (Redis would only hand it out again after its one-hour visibility timeout).
    first.kill()
    killed_at = datetime.now(UTC)
    time.sleep(0.5)
    assert stack.chunks(job_id)[stuck.index].status == "running"

    second = stack.start_worker(CHUNK_TIMEOUT_S="3", SWEEP_INTERVAL_S="0.5")
    status = wait_until(lambda: job_finished(stack, job_id), JOB_TIMEOUT_S, "the job to finish")
    assert status == "succeeded", second.tail()
    assert_decided_exactly_once(stack, job_id, n_samples)
    chunk = stack.chunks(job_id)[stuck.index]
    assert chunk.attempts == 2
    assert f"sweep: job {job_id}" in second.log.read_text()
    recovered_s = seconds_since(killed_at, chunk.finished_at)
    print(json.dumps({"test": "worker gone for good", "chunk_timeout_s": 3, "recovered_s": recovered_s}))


def test_a_chunk_that_kills_its_worker_every_time_fails_the_job_with_its_cause(
    stack: Stack, client: TestClient, small_student: Path
) -> None:
    # The sweeper runs (and never times the chunk out): the main process forks each replacement pool process
    # while its sweeper thread is alive.
    worker = stack.start_worker(SWEEP_INTERVAL_S="0.2", CHUNK_TIMEOUT_S="600", MAX_CHUNK_ATTEMPTS="3")
    since = datetime.now(UTC)
    job_id = create_job(client, small_student, 8, start=64)
    for attempt in (1, 2, 3):
        claimed = partial(running_chunk, stack, job_id, since, attempts=attempt)
        poisoned = wait_until(claimed, 60, f"attempt {attempt} to be claimed")
        assert poisoned.index == 0
        worker.kill_child()
        since = datetime.now(UTC)
    # The fourth delivery finds the chunk out of attempts: the job fails instead of looping forever.
    assert wait_until(lambda: job_finished(stack, job_id), 60, "the job to fail") == "failed"
    [(error,)] = stack.query("SELECT error FROM jobs WHERE id = %s", job_id)
    assert error.startswith("chunk 0: started 3 times without a result")
    assert "FRONTIER_MAX_CHUNK_ATTEMPTS=3" in error
    assert client.get(f"/v1/jobs/{job_id}").json()["error"] == error
