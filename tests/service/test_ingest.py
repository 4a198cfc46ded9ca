"""Background ingest (service.jobs.ingest) on both deployments: an `ingesting` job's file stored in batches whose
chunks are queued as they commit, a bad record or duplicate id mid-way failing the job with nothing left behind,
cancel, redelivery, the sweep, and the whole path through a real worker."""

from __future__ import annotations

import gzip
import json
import os
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text, update

from core.checkpoint import CheckpointError
from core.dataset import DatasetError, Limits, iter_dataset
from core.errors import ConflictError
from core.files import spool_path
from service.db import session_scope, unit_of_work
from service.jobs import ingest, presenters, recovery, repository
from service.models import Candidate, Chunk, ChunkStatus, Decision, Job, JobStatus, Sample
from service.queue import enqueue_ingest
from service.settings import Settings
from tests.services import TEST_INGEST_QUEUE, TEST_QUEUE, Deployment, configure, example_records
from workers import curation
from workers.local import local_worker

# FRONTIER_INGEST_BATCH_RECORDS in these tests: rounded up to whole chunks of TEST_CHUNK_SIZE = 4, a batch is 12.
BATCH_RECORDS = 10
BATCH = 12


@pytest.fixture(autouse=True)
def _drop_queued_tasks(deployment: Deployment) -> Iterator[None]:
    """Leave the session's Redis queues as found: no worker consumes most of these tests' messages, and a later
    test's worker would otherwise score every chunk they queued first."""
    yield
    if deployment.name == "postgres":
        redis.Redis.from_url(deployment.env["FRONTIER_BROKER_URL"]).delete(TEST_QUEUE, TEST_INGEST_QUEUE)


@pytest.fixture
def settings(deployment: Deployment, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The deployment's settings with small ingest batches (also in the environment a worker inherits)."""
    return configure(monkeypatch, {**deployment.env, "FRONTIER_INGEST_BATCH_RECORDS": str(BATCH_RECORDS)})


def record(index: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"r-{index}",
        "instruction": f"Write the number {index} in words.",
        "response": f"{index}",
        "refinements": [{"teacher": "near", "response": f"It is {index}."}, {"teacher": "far", "response": "Many."}],
        **extra,
    }


def spool(settings: Settings, lines: list[bytes], *, compress: bool = False) -> Path:
    """A spooled upload, as the API leaves one in the upload folder."""
    folder = settings.upload_folder
    folder.mkdir(parents=True, exist_ok=True)
    path = spool_path(folder)
    data = b"".join(line + b"\n" for line in lines)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def jsonl_lines(records: list[dict[str, Any]]) -> list[bytes]:
    return [json.dumps(r).encode() for r in records]


def create(
    settings: Settings,
    student: Path,
    path: Path,
    *,
    owned: bool = True,
    name: str = "data.jsonl",
    enqueue: Callable[[uuid.UUID], None] | None = None,
    **options: Any,
) -> uuid.UUID:
    with unit_of_work() as uow:
        job = ingest.create_ingesting_job(
            uow,
            settings,
            source=ingest.DatasetSource(path, None, name, owned),
            student_path=str(student),
            enqueue=enqueue,
            **options,
        )
    return job.id


def job_row(job_id: uuid.UUID) -> Job:
    with session_scope() as session:
        job = repository.get_job(session, job_id)
        assert job is not None
        return job


def rows_of(job_id: uuid.UUID) -> dict[str, int]:
    with session_scope() as session:
        return {
            model.__tablename__: int(session.scalar(select(func.count()).where(model.job_id == job_id)) or 0)
            for model in (Sample, Candidate, Chunk, Decision)
        }


def stored_ids(job_id: uuid.UUID) -> list[tuple[int, str]]:
    with session_scope() as session:
        rows = session.execute(
            select(Sample.ordinal, Sample.external_id).where(Sample.job_id == job_id).order_by(Sample.ordinal)
        ).all()
    return [(ordinal, external_id) for ordinal, external_id in rows]


def chunk_layout(job_id: uuid.UUID) -> list[tuple[int, int, int]]:
    with session_scope() as session:
        rows = session.execute(
            select(Chunk.index, Chunk.first_ordinal, Chunk.n_samples)
            .where(Chunk.job_id == job_id)
            .order_by(Chunk.index)
        ).all()
    return [(index, first, n) for index, first, n in rows]


def messages(deployment: Deployment, queue: str) -> int:
    """Messages waiting on one of the deployment's queues."""
    if deployment.name == "postgres":
        return int(redis.Redis.from_url(deployment.env["FRONTIER_BROKER_URL"]).llen(queue))
    folder = deployment.settings.broker_folder / "queue"
    return sum(1 for name in os.listdir(folder) if name.partition(".")[2] == f"{queue}.msg") if folder.exists() else 0


def test_ingest_stores_the_dataset_in_batches_and_queues_each_batchs_chunks(
    deployment: Deployment, settings: Settings, client: TestClient, small_student: Path
) -> None:
    records = [record(index) for index in range(30)]
    lines = jsonl_lines(records)
    path = spool(settings, [*lines[:5], b"", *lines[5:]])
    job_id = create(settings, small_student, path, enqueue=lambda job_id: enqueue_ingest(job_id, settings))
    created = client.get(f"/v1/jobs/{job_id}").json()
    assert (created["status"], created["ingested_records"], created["progress"]["total"]) == ("ingesting", 0, 0)
    assert created["dataset"]["name"] == "data.jsonl"
    # The ingest task went to the ingest queue (a CPU worker's), not to the GPU workers' queue.
    assert messages(deployment, TEST_INGEST_QUEUE) >= 1
    chunks_before = messages(deployment, TEST_QUEUE)

    ingest.ingest_job(job_id)

    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "queued"
    assert job["ingested_records"] == job["progress"]["total"] == job["dataset"]["samples"] == 30
    assert job["progress"]["candidates"] == 90
    assert job["error"] is None
    assert job["rejected_line"] is None
    assert stored_ids(job_id) == [(ordinal, f"r-{ordinal}") for ordinal in range(30)]
    # Batches of 12 records: whole chunks of 4, the last chunk the dataset's tail.
    assert chunk_layout(job_id) == [(index, index * 4, 4) for index in range(7)] + [(7, 28, 2)]
    assert messages(deployment, TEST_QUEUE) == chunks_before + 8
    with session_scope() as session:
        payload = session.scalars(select(Sample.payload).where(Sample.job_id == job_id, Sample.ordinal == 7)).one()
        texts = session.execute(
            select(Candidate.name, Candidate.teacher, Candidate.instruction, Candidate.response, Candidate.status)
            .join(Sample, Sample.id == Candidate.sample_id)
            .where(Sample.job_id == job_id, Sample.ordinal == 7)
            .order_by(Candidate.position)
        ).all()
    assert payload == records[7]
    assert [tuple(row) for row in texts] == [
        ("original", None, "Write the number 7 in words.", "7", "pending"),
        ("near", "near", "Write the number 7 in words.", "It is 7.", "pending"),
        ("far", "far", "Write the number 7 in words.", "Many.", "pending"),
    ]
    # The spooled upload is the job's: gone once stored. A dataset given by reference is never touched.
    assert not path.exists()
    referenced = spool(settings, lines[:3])
    other = create(settings, small_student, referenced, owned=False)
    ingest.ingest_job(other)
    assert job_row(other).total_samples == 3
    assert referenced.exists()


def test_a_big_ingest_refreshes_the_planners_statistics_of_what_it_wrote(
    deployment: Deployment, settings: Settings, small_student: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The threshold lowered so 20 records count as a bulk write. On Postgres the tables were analyzed in the ingest's
    # transaction: a small table is read whole, so the planner's row count is then exact (COPY alone never updates
    # it). SQLite plans without gathered statistics: nothing to check but that the ingest is unaffected.
    monkeypatch.setattr(repository, "ANALYZE_MIN_ROWS", 20)
    path = spool(settings, jsonl_lines([record(index) for index in range(20)]))
    job_id = create(settings, small_student, path)
    ingest.ingest_job(job_id)
    assert job_row(job_id).status == "queued"
    if deployment.name == "postgres":
        with session_scope() as session:
            for table in ("samples", "candidates", "chunks"):
                rows = session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
                estimate = session.execute(
                    text("SELECT reltuples FROM pg_class WHERE relname = :table"), {"table": table}
                ).scalar_one()
                assert (table, estimate) == (table, rows)


def test_stored_chunks_score_while_the_rest_is_ingested_and_the_job_finishes_after(
    deployment: Deployment, settings: Settings, client: TestClient, small_student: Path
) -> None:
    records = [record(index) for index in range(20)]
    path = spool(settings, jsonl_lines(records))
    job_id = create(settings, small_student, path)
    # The first batch, as the ingest stores it (an ingest interrupted after it: a worker killed, say).
    first = list(iter_dataset(path))[:BATCH]
    with unit_of_work() as uow:
        result = ingest.store_batch(uow.session, job_id, 0, first, last=False, unit="line")
    assert result.chunks == [0, 1, 2]
    listed = client.get("/v1/jobs", params={"status": "ingesting"}).json()["items"]
    assert str(job_id) in [item["id"] for item in listed]
    assert client.get(f"/v1/jobs/{job_id}").json()["ingested_records"] == BATCH

    # Its chunks score at once; the job stays `ingesting` (more chunks are coming) and cannot finalize yet.
    assert [curation.score_chunk(job_id, index) for index in range(3)] == [False, False, False]
    assert curation.finalize(job_id) is False
    job = job_row(job_id)
    assert (job.status, job.scored_samples, job.scored_at) == (JobStatus.ingesting, BATCH, None)
    assert job.started_at is not None

    # The redelivered ingest resumes after the stored batch; a chunk has started, so the job is now running.
    ingest.ingest_job(job_id)
    assert job_row(job_id).status == JobStatus.running
    assert stored_ids(job_id) == [(ordinal, f"r-{ordinal}") for ordinal in range(20)]
    assert [curation.score_chunk(job_id, index) for index in (3, 4)] == [False, True]
    assert curation.finalize(job_id) is True
    done = client.get(f"/v1/jobs/{job_id}").json()
    assert done["status"] == "succeeded"
    assert sum(done["counts"].values()) == done["ingested_records"] == 20
    assert not path.exists()
    # Delivered once more after the end: nothing happens.
    ingest.ingest_job(job_id)
    assert job_row(job_id).status == JobStatus.succeeded
    assert rows_of(job_id)["samples"] == 20


def test_an_ingest_that_ends_with_every_chunk_scored_queues_the_finalize(
    deployment: Deployment, settings: Settings, small_student: Path
) -> None:
    path = spool(settings, jsonl_lines([record(index) for index in range(8)]))
    job_id = create(settings, small_student, path)
    # Every record stored, but the ingest interrupted before it could end (its last batch not known to be the last).
    with unit_of_work() as uow:
        ingest.store_batch(uow.session, job_id, 0, list(iter_dataset(path)), last=False, unit="line")
    assert [curation.score_chunk(job_id, index) for index in (0, 1)] == [False, False]
    waiting = messages(deployment, TEST_QUEUE)
    ingest.ingest_job(job_id)
    job = job_row(job_id)
    assert (job.status, job.total_samples) == (JobStatus.running, 8)
    assert job.scored_at is not None
    assert messages(deployment, TEST_QUEUE) == waiting + 1  # the finalize task
    assert curation.finalize(job_id) is True
    assert job_row(job_id).status == JobStatus.succeeded


def test_a_bad_record_mid_way_fails_the_job_naming_it_and_leaves_no_samples(
    deployment: Deployment, settings: Settings, client: TestClient, small_student: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, {**deployment.env, "FRONTIER_INGEST_BATCH_RECORDS": "500"})
    records = [record(index) for index in range(10_000)]
    records[8_999] = record(8_999, response=42)
    path = spool(settings, jsonl_lines(records))
    job_id = create(settings, small_student, path)

    ingest.ingest_job(job_id)

    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "failed"
    assert job["error"] == "line 9000, field 'response': expected a string, got 42"
    assert job["rejected_line"] == 9000
    assert (job["ingested_records"], job["progress"]["total"], job["progress"]["candidates"]) == (0, 0, 0)
    # 8,999 records had been stored in batches: every row is gone, and the upload too.
    assert rows_of(job_id) == {"samples": 0, "candidates": 0, "chunks": 0, "decisions": 0}
    assert not path.exists()
    # The chunks queued for the stored batches find the job failed: nothing is scored, nothing raises.
    assert curation.score_chunk(job_id, 0) is False


def test_a_duplicate_id_is_named_with_the_line_of_its_first_use(
    deployment: Deployment, settings: Settings, small_student: Path
) -> None:
    records = [record(index) for index in range(40)]
    # In another batch than its first use (batches are 12 records), blank lines making lines differ from ordinals.
    records[33] = record(33, id="r-2")
    lines = jsonl_lines(records)
    path = spool(settings, [b"", *lines[:10], b"  ", *lines[10:]])
    job_id = create(settings, small_student, path)
    ingest.ingest_job(job_id)
    job = job_row(job_id)
    assert (job.status, job.error) == ("failed", "line 36, field 'id': duplicate id 'r-2' (first on line 4)")
    assert job.rejected_line == 36
    assert rows_of(job_id) == {"samples": 0, "candidates": 0, "chunks": 0, "decisions": 0}
    assert not path.exists()

    # Within one batch, and in a Parquet file (rows, not lines).
    rows = [record(index) for index in range(30)]
    rows[27] = record(27, id="r-25")
    parquet = settings.upload_folder / "data.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet, row_group_size=7)
    job_id = create(settings, small_student, parquet, name="data.parquet", dataset_format="parquet")
    ingest.ingest_job(job_id)
    job = job_row(job_id)
    assert (job.status, job.error) == ("failed", "row 28, field 'id': duplicate id 'r-25' (first on row 26)")
    assert rows_of(job_id)["samples"] == 0


def test_parquet_and_gzip_datasets_are_ingested_in_order(
    deployment: Deployment, settings: Settings, small_student: Path
) -> None:
    rows = [record(index) for index in range(25)]
    parquet = settings.upload_folder / "rows.parquet"
    settings.upload_folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), parquet, row_group_size=6)
    job_id = create(settings, small_student, parquet, name="rows.parquet", dataset_format="parquet")
    ingest.ingest_job(job_id)
    assert job_row(job_id).status == JobStatus.queued
    assert stored_ids(job_id) == [(ordinal, f"r-{ordinal}") for ordinal in range(25)]

    packed = spool(settings, jsonl_lines(rows[:13]), compress=True)
    job_id = create(settings, small_student, packed, name="rows.jsonl.gz")
    ingest.ingest_job(job_id)
    assert stored_ids(job_id) == [(ordinal, f"r-{ordinal}") for ordinal in range(13)]
    assert chunk_layout(job_id)[-1] == (3, 12, 1)


def test_a_dataset_over_a_limit_mid_way_names_the_setting(
    deployment: Deployment, small_student: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = configure(
        monkeypatch, {**deployment.env, "FRONTIER_INGEST_BATCH_RECORDS": "4", "FRONTIER_MAX_RECORDS": "25"}
    )
    path = spool(settings, jsonl_lines([record(index) for index in range(40)]))
    job_id = create(settings, small_student, path)
    ingest.ingest_job(job_id)
    job = job_row(job_id)
    assert job.error == "line 26: more than 25 records (limit: FRONTIER_MAX_RECORDS)"
    assert rows_of(job_id)["samples"] == 0
    assert Limits.setting("max_records") == "FRONTIER_MAX_RECORDS"


def test_cancel_during_ingest_stops_it_at_its_next_batch(
    deployment: Deployment, settings: Settings, client: TestClient, small_student: Path
) -> None:
    path = spool(settings, jsonl_lines([record(index) for index in range(6000)]))
    job_id = create(settings, small_student, path)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            ingest.ingest_job(job_id)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 120
    while job_row(job_id).ingested_records < 2 * BATCH:
        assert thread.is_alive()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    cancelled = client.post(f"/v1/jobs/{job_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    at_cancel = cancelled.json()["ingested_records"]
    thread.join(timeout=120)
    assert not thread.is_alive()
    assert errors == []

    job = job_row(job_id)
    assert job.status == JobStatus.cancelled
    # At most the batch being stored when the cancel came lands after it; then the ingest stops.
    assert at_cancel <= job.ingested_records <= at_cancel + BATCH < 6000
    assert rows_of(job_id)["samples"] == job.ingested_records == job.total_samples
    assert not path.exists()


def test_the_sweep_requeues_a_silent_ingest_and_starts_are_bounded(
    deployment: Deployment, settings: Settings, small_student: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Created while the broker was down: nothing queued its ingest.
    path = spool(settings, jsonl_lines([record(index) for index in range(5)]))
    job_id = create(settings, small_student, path, enqueue=None)
    created_at = presenters.as_utc(job_row(job_id).created_at)
    assert created_at is not None
    timeout = settings.chunk_timeout_s
    with unit_of_work() as uow:
        early = created_at + timedelta(seconds=timeout / 2)
        assert job_id not in recovery.stalled_jobs(uow.session, now=early, timeout_s=timeout)
        assert recovery.recover_job(uow.session, job_id, now=early, timeout_s=timeout, max_attempts=5) == (
            recovery.Recovery(job_id)
        )
    late = created_at + timedelta(seconds=timeout + 1)
    with unit_of_work() as uow:
        assert job_id in recovery.stalled_jobs(uow.session, now=late, timeout_s=timeout)
        result = recovery.recover_job(uow.session, job_id, now=late, timeout_s=timeout, max_attempts=5)
    assert result == recovery.Recovery(job_id, ingest_requeued=True)
    # Re-sent: the job's last sign of life is now, so the next sweep waits a whole timeout again.
    with unit_of_work() as uow:
        assert job_id not in recovery.stalled_jobs(uow.session, now=late, timeout_s=timeout)

    # Through the broker (a job whose clock is the real one): the worker's sweep re-sends the ingest to its queue.
    path = spool(settings, jsonl_lines([record(index) for index in range(5)]))
    job_id = create(settings, small_student, path, enqueue=None)
    configure(monkeypatch, {**deployment.env, "FRONTIER_CHUNK_TIMEOUT_S": "0.001"})
    waiting = messages(deployment, TEST_INGEST_QUEUE)
    time.sleep(0.01)
    assert recovery.Recovery(job_id, ingest_requeued=True) in curation.sweep()
    assert messages(deployment, TEST_INGEST_QUEUE) == waiting + 1
    ingest.ingest_job(job_id)
    assert job_row(job_id).status == JobStatus.queued

    # An ingest that kills its worker at every start: counted, and the job fails once they run out.
    looping = spool(settings, jsonl_lines([record(index) for index in range(5)]))
    job_id = create(settings, small_student, looping)
    with session_scope() as session:
        session.execute(update(Job).where(Job.id == job_id).values(ingest_attempts=settings.max_chunk_attempts))
    ingest.ingest_job(job_id)
    job = job_row(job_id)
    assert job.status == JobStatus.failed
    assert job.error == (
        f"ingest: started {settings.max_chunk_attempts} times without storing a batch (its worker died or lost the "
        f"database each time; FRONTIER_MAX_CHUNK_ATTEMPTS={settings.max_chunk_attempts})"
    )
    assert not looping.exists()


def test_create_ingesting_job_validates_like_create_job_and_replays_idempotency_keys(
    deployment: Deployment, settings: Settings, small_student: Path, tmp_path: Path
) -> None:
    lines = jsonl_lines([record(index) for index in range(3)])
    with session_scope() as session:
        jobs_before = int(session.scalar(select(func.count()).select_from(Job)) or 0)
    path = spool(settings, lines)
    with pytest.raises(CheckpointError):
        create(settings, tmp_path / "no-such-student", path)
    with pytest.raises(DatasetError, match="cannot read the dataset file") as caught:
        create(settings, small_student, tmp_path / "missing.jsonl", owned=False)
    assert caught.value.field == "dataset"
    # Nothing was written, and an upload no job took is deleted.
    with session_scope() as session:
        assert int(session.scalar(select(func.count()).select_from(Job)) or 0) == jobs_before
    assert not path.exists()

    # A replay returns the job the key created and queues nothing more; its own upload is not needed.
    sent: list[uuid.UUID] = []
    first = spool(settings, lines)
    job_id = create(settings, small_student, first, idempotency_key="k-1", request_hash="h-1", enqueue=sent.append)
    again = spool(settings, lines)
    assert create(settings, small_student, again, idempotency_key="k-1", request_hash="h-1", enqueue=sent.append) == (
        job_id
    )
    assert sent == [job_id]
    assert first.exists()
    assert not again.exists()
    other = spool(settings, lines)
    with pytest.raises(ConflictError, match="Idempotency-Key 'k-1' was already used"):
        create(settings, small_student, other, idempotency_key="k-1", request_hash="h-2")
    assert not other.exists()
    # By reference, the same file both times: replayed, not queued twice, and never deleted.
    referenced = spool(settings, lines)
    for _ in range(2):
        create(
            settings,
            small_student,
            referenced,
            owned=False,
            idempotency_key="k-2",
            request_hash="h",
            enqueue=sent.append,
        )
    assert len(sent) == 2
    assert referenced.exists()


def test_ingest_memory_does_not_grow_with_the_dataset(
    deployment: Deployment, small_student: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = configure(monkeypatch, {**deployment.env, "FRONTIER_INGEST_BATCH_RECORDS": "200"})
    padding = "p" * 800
    peaks = []
    for n in (800, 4000):
        path = spool(settings, jsonl_lines([record(index, input=padding) for index in range(n)]))
        job_id = create(settings, small_student, path)
        tracemalloc.start()
        try:
            ingest.ingest_job(job_id)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        assert job_row(job_id).total_samples == n
    # Five times the records, about the same peak: a few batches in flight, never the dataset (4 MB at 4,000).
    assert peaks[1] < peaks[0] * 1.5 + 1_000_000, peaks


@pytest.mark.slow
def test_a_real_worker_ingests_and_scores_a_job(
    deployment: Deployment, settings: Settings, client: TestClient, small_student: Path
) -> None:
    records = example_records(16)
    path = spool(settings, jsonl_lines(records), compress=True)
    if deployment.name == "postgres":
        # Earlier tests' messages on the session's queues would keep this worker busy first.
        redis.Redis.from_url(deployment.env["FRONTIER_BROKER_URL"]).delete(TEST_QUEUE, TEST_INGEST_QUEUE)
    with local_worker(settings, env=os.environ.copy()) as worker:
        job_id = create(settings, small_student, path, enqueue=lambda job_id: enqueue_ingest(job_id, settings))
        assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "ingesting"
        deadline = time.monotonic() + 600
        while (job := client.get(f"/v1/jobs/{job_id}").json())["status"] not in {"succeeded", "failed", "cancelled"}:
            assert worker.poll() is None, f"the worker exited with {worker.returncode}"
            assert time.monotonic() < deadline, job
            time.sleep(0.25)
    assert job["status"] == "succeeded", job["error"]
    assert job["ingested_records"] == job["progress"]["scored"] == 16
    assert sum(job["counts"].values()) == 16
    assert stored_ids(uuid.UUID(job["id"])) == [(ordinal, r["id"]) for ordinal, r in enumerate(records)]
    with session_scope() as session:
        statuses = session.scalars(select(Chunk.status).where(Chunk.job_id == uuid.UUID(job["id"]))).all()
        pending = session.scalar(
            select(func.count()).where(Candidate.job_id == uuid.UUID(job["id"]), Candidate.status == "pending")
        )
    assert statuses == [ChunkStatus.done] * 4
    assert pending == 0
    samples = client.get(f"/v1/jobs/{job['id']}/samples", params={"limit": 100}).json()["items"]
    assert [s["sample_id"] for s in samples] == [r["id"] for r in records]
    assert not path.exists()


def test_the_sweep_removes_leftover_uploads_but_not_an_ingesting_jobs_file_nor_a_fresh_one(
    deployment: Deployment, settings: Settings, small_student: Path
) -> None:
    lines = jsonl_lines([record(index) for index in range(3)])
    # A request that spooled its upload and died before committing its job, long ago.
    leftover = spool(settings, lines)
    # The file of a job still ingesting (its worker is slow or gone: the ingest sweep re-queues it, the file stays).
    reading = spool(settings, lines)
    create(settings, small_student, reading)
    # A request between spooling and committing, now.
    fresh = spool(settings, lines)
    hour_ago = time.time() - 3600
    for path in (leftover, reading):
        os.utime(path, (hour_ago, hour_ago))
    sweep_settings = settings.model_copy(update={"chunk_timeout_s": 600.0})

    assert curation.sweep_uploads(sweep_settings) == [leftover]
    assert not leftover.exists()
    assert reading.exists()
    assert fresh.exists()
    assert curation.sweep_uploads(sweep_settings) == []
