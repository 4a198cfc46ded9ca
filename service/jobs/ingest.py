"""Datasets stored in the background: an `ingesting` job's file is read as a stream, validated and stored in
batches, and each batch's chunks are queued as soon as it commits, so scoring starts long before the file ends.

`create_ingesting_job` (the API) stores the job with its source and queues `ingest_job`, the body of the
`frontier.ingest_job` task on the ingest queue. How the ingest behaves:

- Memory is bounded by one batch whatever the dataset's size: core.dataset.iter_dataset reads JSONL a line at a
  time (gzip inflated as it is read) and Parquet a batch of rows at a time.
- A batch is FRONTIER_INGEST_BATCH_RECORDS records rounded up to whole chunks, so every batch but the last ends on
  a chunk boundary and all its chunks can be queued at once. It is stored in one transaction under the job's row
  lock: samples and candidates (COPY on Postgres, bulk INSERTs on SQLite), chunk rows, the job's totals. The last
  batch also ends the ingest: the job becomes `queued`, or `running` when one of its chunks has started.
- A bad record, or an id an earlier record has, fails the job with the record's line (or row) and field, and
  every row stored for the job is deleted: nothing is left half-written.
- At-least-once delivery: an ingest of a job no longer `ingesting` does nothing; one of a job still `ingesting`
  resumes after its last stored batch (`ingested_records`), skipping the records before it without validating
  them again. Two deliveries at once cannot both store a batch: each batch checks `ingested_records` under the
  lock, and the one that fell behind stops. Starts since the last stored batch are bounded by
  FRONTIER_MAX_CHUNK_ATTEMPTS, so a dataset that kills its worker is not retried forever.
- Cancelling the job stops the ingest at its next batch (what was stored stays, as a cancelled job's scores do).
- An owned source (a spooled upload) is deleted once the ingest ends, whichever way; not during an outage, when
  the retry resumes from it.
"""

from __future__ import annotations

import gc
import logging
import math
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from core.dataset import (
    DatasetError,
    DatasetFormat,
    SampleRecord,
    duplicate_id_error,
    iter_dataset,
    record_line,
    record_unit,
    sniff_file,
)
from service.db import UnitOfWork, session_scope, unit_of_work
from service.jobs import lifecycle, repository
from service.models import Candidate, Chunk, ChunkStatus, Job, JobStatus, Sample, utcnow
from service.queue import enqueue_chunk_indexes, enqueue_finalize
from service.settings import Settings, get_settings

log = logging.getLogger(__name__)

# Worth a retry (the task's, then the sweep's): the database or the network was briefly away, so the file is kept.
# The same classes the task retries (workers.tasks.TRANSIENT_ERRORS; the broker's own never reach here).
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OperationalError, ConnectionError, TimeoutError)
# Ids looked up per query when naming a duplicate.
_LOOKUP_IDS = 1000


@dataclass(frozen=True, slots=True)
class DatasetSource:
    """A dataset file to ingest: a spooled upload (`owned`: deleted once ingest ends) or a referenced file."""

    path: Path
    # "jsonl" | "parquet" | None: by the name, then the magic bytes (gzip JSONL is found by its own magic).
    fmt: DatasetFormat | None
    # Shown as the job's dataset name.
    name: str
    owned: bool


def create_ingesting_job(
    uow: UnitOfWork,
    settings: Settings,
    *,
    source: DatasetSource,
    student_path: str,
    policy: str | None = None,
    params: dict[str, Any] | None = None,
    template: str | None = None,
    rank_clip: int | None = None,
    dataset_format: str = "jsonl",
    tenant_id: int | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    enqueue: Callable[[uuid.UUID], None] | None = None,
) -> Job:
    """Validate the student, policy and template as lifecycle.create_job does, store the job `ingesting` with its
    source, then queue its ingest (`enqueue(job_id)`) once the transaction commits.

    Idempotency-Key replays as create_job's do (the earlier job, or ConflictError). An owned source that no new job
    takes (a replay, or an error raised here) is deleted here; if the caller's transaction fails after this
    returns, the caller deletes it.
    """
    try:
        job, created = _create(
            uow,
            settings,
            source=source,
            student_path=student_path,
            policy=policy,
            params=params,
            template=template,
            rank_clip=rank_clip,
            dataset_format=dataset_format,
            tenant_id=tenant_id,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
        )
    except BaseException:
        _remove_owned(source.path, source.owned)
        raise
    if not created:
        _remove_owned(source.path, source.owned)
    elif enqueue is not None:
        job_id = job.id
        uow.after_commit(lambda: enqueue(job_id))
    return job


def _create(
    uow: UnitOfWork,
    settings: Settings,
    *,
    source: DatasetSource,
    student_path: str,
    policy: str | None,
    params: dict[str, Any] | None,
    template: str | None,
    rank_clip: int | None,
    dataset_format: str,
    tenant_id: int | None,
    idempotency_key: str | None,
    request_hash: str | None,
) -> tuple[Job, bool]:
    """The new job and True, or the job an Idempotency-Key already created and False."""
    session = uow.session
    if idempotency_key is not None:
        earlier = repository.job_by_idempotency_key(session, tenant_id, idempotency_key)
        if earlier is not None:
            return lifecycle.replayed(earlier, idempotency_key, request_hash), False
    job = lifecycle.new_job(
        session,
        settings,
        status=JobStatus.ingesting,
        student_path=student_path,
        policy=policy,
        params=params,
        template=template,
        rank_clip=rank_clip,
        dataset_name=source.name,
        dataset_format=dataset_format,
        tenant_id=tenant_id,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
    )
    try:
        fmt = source.fmt or sniff_file(source.path, source.name)
    except OSError as exc:
        raise DatasetError(f"cannot read the dataset file: {exc.strerror or exc}", field="dataset") from exc
    job.source_path = str(source.path)
    job.source_format = fmt
    job.source_owned = source.owned
    job.ingest_updated_at = utcnow()
    stored = lifecycle.add_job(session, job)
    if stored is not job:
        return lifecycle.replayed(stored, idempotency_key or "", request_hash), False
    return job, True


@dataclass(frozen=True, slots=True)
class _Start:
    """What one run of a job's ingest reads, and where it resumes."""

    path: Path
    fmt: DatasetFormat
    owned: bool
    chunk_size: int
    resume_at: int


class _Stop(Enum):
    """Why a batch was not stored."""

    # The job is no longer ingesting (cancelled, failed, or its ingest already ended): the ingest is over.
    finished = "finished"
    # Another delivery of this ingest stored this batch first: that one goes on, with the file.
    superseded = "superseded"


@dataclass(frozen=True, slots=True)
class BatchResult:
    """A batch stored (its chunks to queue, and whether the job is now fully scored) or why it was not."""

    chunks: list[int] = field(default_factory=list)
    finalize: bool = False
    stop: _Stop | None = None


def ingest_job(job_id: uuid.UUID, settings: Settings | None = None) -> None:
    """Read an `ingesting` job's dataset file and store it in batches, queueing each batch's chunks as it commits.

    The body of the `frontier.ingest_job` task. A bad dataset fails the job (line, field; nothing stored stays)
    instead of raising; an outage of the database raises (the task retries, and resumes after the last batch).
    """
    settings = settings or get_settings()
    with session_scope() as session:
        start = _begin(session, job_id, settings.max_chunk_attempts)
    if start is None:
        return
    if isinstance(start, Path):
        # The job's ingest is over (a redelivered task): only a leftover upload may remain.
        _remove_owned(start, owned=True)
        return
    began = time.perf_counter()
    try:
        stop = _ingest(job_id, start, settings)
    except TRANSIENT_ERRORS:
        raise
    except DatasetError as exc:
        log.warning("job %s: ingest refused the dataset: %s", job_id, exc, extra={"job_id": str(job_id)})
        _record_failure(job_id, str(exc), line=exc.line)
        stop = _Stop.finished
    except Exception as exc:
        log.exception("job %s: ingest failed", job_id, extra={"job_id": str(job_id)})
        _record_failure(job_id, f"ingest: {type(exc).__name__}: {exc}")
        stop = _Stop.finished
    if stop is _Stop.finished:
        _remove_owned(start.path, start.owned)
    log.info(
        "job %s: ingest %s after %.1fs",
        job_id,
        "superseded" if stop is _Stop.superseded else "ended",
        time.perf_counter() - began,
        extra={"job_id": str(job_id)},
    )


def _begin(session: Session, job_id: uuid.UUID, max_attempts: int) -> _Start | Path | None:
    """Count a start of the job's ingest and say what it reads; an owned file's path when there is nothing to do."""
    job = repository.locked_job(session, job_id)
    if job is None:
        return None
    if job.status != JobStatus.ingesting or job.source_path is None or job.source_format is None:
        return Path(job.source_path) if job.source_owned and job.source_path else None
    job.ingest_attempts += 1
    if job.ingest_attempts > max_attempts:
        fail_ingest(
            session,
            job_id,
            f"ingest: started {job.ingest_attempts - 1} times without storing a batch (its worker died or lost the "
            f"database each time; FRONTIER_MAX_CHUNK_ATTEMPTS={max_attempts})",
        )
        return Path(job.source_path) if job.source_owned else None
    job.ingest_updated_at = utcnow()
    fmt: DatasetFormat = "parquet" if job.source_format == "parquet" else "jsonl"
    return _Start(Path(job.source_path), fmt, job.source_owned, job.chunk_size, job.ingested_records)


def _ingest(job_id: uuid.UUID, start: _Start, settings: Settings) -> _Stop:
    """Store the dataset batch by batch from `start.resume_at`; how the ingest stopped.

    The reading and validating happen here while a writer thread stores the previous batch: the database works on
    one batch while Python parses the next (the driver releases the GIL while it waits on the server).
    """
    batch_size = math.ceil(settings.ingest_batch_records / start.chunk_size) * start.chunk_size
    records = iter_dataset(start.path, fmt=start.fmt, limits=settings.limits, skip=start.resume_at)
    unit = record_unit(start.fmt)
    with _cyclic_gc_paused():
        writer = _Writer(job_id, start.resume_at, unit, settings)
        try:
            for batch, last in _batches(records, batch_size, resumed=start.resume_at > 0):
                if not writer.put(batch, last):
                    break
        except BaseException:
            # A record the reader refused comes after every batch handed over: a writer's error among those is first.
            writer.close(abandon=True)
            _raise_writer_error(job_id, writer, start, settings)
            raise
        finally:
            records.close()
        writer.close(abandon=False)
    _raise_writer_error(job_id, writer, start, settings)
    return writer.stop or _Stop.finished


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the block (the process's, so also its other threads).

    Records are trees of dicts, lists and strings that reference counting frees as each batch is dropped; the
    cyclic collector finds nothing among them, but every collection re-walks the two live batches' millions of
    objects. Paused, the ingest ran at 21,700-23,700 samples/s instead of 16,900-17,400 (100,000 samples, direct
    A/B on this 2-core machine). What few cycles the ingest's sessions leave are collected once it ends.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


def _raise_writer_error(job_id: uuid.UUID, writer: _Writer, start: _Start, settings: Settings) -> None:
    """Raise what stopped the writer, if anything did: a duplicate id as the DatasetError naming its line."""
    error = writer.error
    if error is None:
        return
    if isinstance(error, IntegrityError) and writer.failed_batch is not None:
        duplicate = _duplicate(job_id, writer.failed_batch, start, writer.unit, settings)
        if duplicate is not None:
            raise duplicate from error
    raise error


class _Writer:
    """Stores handed-over batches in order, each in its own transaction, in a thread of its own (one batch queued)."""

    def __init__(self, job_id: uuid.UUID, first_ordinal: int, unit: str, settings: Settings) -> None:
        self.job_id = job_id
        self.unit = unit
        self.settings = settings
        self.stored = first_ordinal
        self.stop: _Stop | None = None
        self.error: BaseException | None = None
        self.failed_batch: Sequence[SampleRecord] | None = None
        self._abandon = threading.Event()
        self._queue: queue.Queue[tuple[list[SampleRecord], bool] | None] = queue.Queue(maxsize=1)
        # Committed batches' tasks are sent from a thread of their own: publishing a task costs about a millisecond
        # of Python (a 5,000-record batch has 40 chunks), time in which this writer would keep Postgres idle.
        # Sending chunks never raises (a broker outage leaves them to the sweep), and close() waits for every send.
        self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"ingest-send-{job_id}")
        self._sends: list[Future[None]] = []
        self._thread = threading.Thread(target=self._run, name=f"ingest-{job_id}", daemon=True)
        self._thread.start()

    def put(self, batch: list[SampleRecord], last: bool) -> bool:
        """Hand a batch over (waiting while one is queued); False once the writer has stopped."""
        return self._put((batch, last))

    def close(self, *, abandon: bool) -> None:
        """Wait for the writer to store what it was handed (or, abandoning, only the batch in hand) and end."""
        if abandon:
            self._abandon.set()
        self._put(None)
        self._thread.join()
        self._sender.shutdown(wait=True)
        # A send that failed other than by a broker outage fails the ingest, as it did when sent from this thread.
        failed = next((send.exception() for send in self._sends if send.exception() is not None), None)
        if failed is not None and self.error is None:
            self.error = failed

    def _send_chunks(self, chunks: list[int]) -> None:
        """Queue the scoring tasks of a committed batch's chunks, from the sender thread."""
        self._sends.append(self._sender.submit(enqueue_chunk_indexes, self.job_id, chunks, self.settings))

    def _put(self, item: tuple[list[SampleRecord], bool] | None) -> bool:
        while self._thread.is_alive():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        while (item := self._queue.get()) is not None and not self._abandon.is_set():
            batch, last = item
            try:
                with unit_of_work() as uow:
                    result = store_batch(uow.session, self.job_id, self.stored, batch, last=last, unit=self.unit)
                    if result.chunks:
                        uow.after_commit(partial(self._send_chunks, result.chunks))
                    if result.finalize:
                        uow.after_commit(partial(enqueue_finalize, self.job_id, self.settings))
            except BaseException as exc:
                self.error, self.failed_batch = exc, batch
                return
            if result.stop is not None:
                self.stop = result.stop
                return
            self.stored += len(batch)


def _batches(records: Iterable[SampleRecord], size: int, *, resumed: bool) -> Iterator[tuple[list[SampleRecord], bool]]:
    """Consecutive batches of `size` records, each with whether it is the last (known by reading one record on).

    A resumed read with no record left yields one empty last batch: the ingest still has to end.
    """
    batch: list[SampleRecord] = []
    for record in records:
        if len(batch) == size:
            yield batch, False
            batch = []
        batch.append(record)
    if batch or resumed:
        yield batch, True


def store_batch(
    session: Session, job_id: uuid.UUID, first_ordinal: int, records: Sequence[SampleRecord], *, last: bool, unit: str
) -> BatchResult:
    """Store one batch of records as the job's samples from `first_ordinal`, with their candidates and chunks.

    Under the job's row lock: nothing is stored unless the job is still ingesting and has exactly `first_ordinal`
    records (a cancelled job, or another delivery ahead, stops this one). The last batch ends the ingest. Raises
    DatasetError for an id twice in the batch, IntegrityError for one an earlier batch stored.
    """
    job = repository.locked_job(session, job_id)
    if job is None or job.status != JobStatus.ingesting:
        return BatchResult(stop=_Stop.finished)
    if job.ingested_records != first_ordinal:
        return BatchResult(stop=_Stop.superseded)
    first_line: dict[str, int] = {}
    for record in records:
        if record.id in first_line:
            raise duplicate_id_error(record, first_line[record.id], unit)
        first_line[record.id] = record.line
    sample_ids = repository.bulk_insert_samples(session, job_id, first_ordinal, records)
    repository.bulk_insert_candidates(session, job_id, sample_ids, records)
    now = utcnow()
    chunk_size = job.chunk_size
    end = first_ordinal + len(records)
    # Batches start on chunk boundaries (their size is whole chunks), so these chunks are complete unless last.
    indexes = list(range(first_ordinal // chunk_size, math.ceil(end / chunk_size)))
    repository.insert_chunks(
        session,
        [
            {
                "job_id": job_id,
                "index": index,
                "first_ordinal": index * chunk_size,
                "n_samples": min(chunk_size, end - index * chunk_size),
                "status": ChunkStatus.pending,
                "attempts": 0,
                # Sent now: the sweep counts from here, not from the job's creation (an ingest can outlast the timeout).
                "queued_at": now,
            }
            for index in indexes
        ],
    )
    job.ingested_records = job.total_samples = end
    # The original and each refinement (core.dataset.candidate_rows).
    job.total_candidates += sum(1 + len(record.refinements) for record in records)
    job.n_chunks = max(job.n_chunks, indexes[-1] + 1) if indexes else job.n_chunks
    job.ingest_updated_at = now
    job.ingest_attempts = 0
    finalize = False
    if last:
        job.status = JobStatus.running if job.started_at is not None else JobStatus.queued
        if end >= repository.ANALYZE_MIN_ROWS:
            repository.analyze(session, Sample, Candidate, Chunk)
        if repository.chunks_left(session, job_id) == 0:
            # Every chunk scored while the ingest ran (only when a resumed ingest found nothing left to store).
            job.scored_at = job.scored_at or now
            finalize = True
    return BatchResult(chunks=indexes, finalize=finalize)


def fail_ingest(session: Session, job_id: uuid.UUID, error: str, *, line: int | None = None) -> Job | None:
    """Fail an ingesting job with `error` and delete everything stored for it; the job (None if no such job).

    A job past ingesting keeps its state: its ingest has ended, so this failure is not the job's.
    """
    job = repository.locked_job(session, job_id)
    if job is None:
        return None
    if job.status != JobStatus.ingesting:
        return job
    repository.delete_job_rows(session, job_id)
    job.status = JobStatus.failed
    job.error = error[:4000]
    job.rejected_line = line
    job.finished_at = utcnow()
    job.ingested_records = job.total_samples = job.total_candidates = job.n_chunks = job.scored_samples = 0
    return job


def record_ingest_failure(job_id: uuid.UUID, error: str) -> None:
    """Fail an ingesting job (its task gave up) and delete what it stored and its owned file."""
    source = _record_failure(job_id, error)
    if source is not None:
        _remove_owned(source, owned=True)


def _record_failure(job_id: uuid.UUID, error: str, *, line: int | None = None) -> Path | None:
    """fail_ingest in its own transaction; the job's owned file, if the job has one."""
    with session_scope() as session:
        job = fail_ingest(session, job_id, error, line=line)
        # Failed now, or its ingest had already ended: either way the upload is no longer needed.
        return Path(job.source_path) if job is not None and job.source_owned and job.source_path else None


def _duplicate(
    job_id: uuid.UUID, batch: Sequence[SampleRecord], start: _Start, unit: str, settings: Settings
) -> DatasetError | None:
    """The error naming the first record of `batch` whose id an earlier batch stored (None: not a duplicate id)."""
    ids = list(dict.fromkeys(record.id for record in batch))
    stored: dict[str, int] = {}
    with session_scope() as session:
        for offset in range(0, len(ids), _LOOKUP_IDS):
            rows = session.execute(
                select(Sample.external_id, Sample.ordinal).where(
                    Sample.job_id == job_id, Sample.external_id.in_(ids[offset : offset + _LOOKUP_IDS])
                )
            ).all()
            stored.update({external_id: ordinal for external_id, ordinal in rows})
    record = next((record for record in batch if record.id in stored), None)
    if record is None:
        return None
    first = record_line(start.path, stored[record.id], fmt=start.fmt, limits=settings.limits)
    return duplicate_id_error(record, first, unit)


def _remove_owned(path: Path, owned: bool) -> None:
    """Delete a spooled upload once nothing needs it (a referenced dataset is never touched)."""
    if owned:
        try:
            path.unlink(missing_ok=True)
        except OSError:
            log.warning("could not delete the spooled upload %s", path, exc_info=True)
