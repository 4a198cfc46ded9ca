"""Stuck work: re-queue chunks whose worker is gone, fail a job whose chunk keeps failing, finalize a fully scored
job whose finalize task was lost, re-queue the ingest of an `ingesting` job that went silent.

Plain functions over a session (they flush, never commit): the worker's sweeper and `frontier sweep` call them
through workers.curation.sweep, one job per transaction. Every change is made under the job's row lock, so any
number of sweepers and workers may run at once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.files import SPOOL_PATTERN
from service.jobs import lifecycle, repository
from service.jobs.presenters import as_utc
from service.models import FINISHED_STATUSES, ChunkStatus, Job, JobStatus


@dataclass(frozen=True, slots=True)
class Recovery:
    """What one sweep did to one job: chunks re-queued, the failure it recorded, the finalize it ran, or its ingest
    re-queued."""

    job_id: uuid.UUID
    requeued: tuple[int, ...] = ()
    failed: str | None = None
    finalized: bool = False
    ingest_requeued: bool = False


def stalled_jobs(session: Session, *, now: datetime, timeout_s: float) -> list[uuid.UUID]:
    """Unfinished jobs with work that has made no progress for `timeout_s` seconds, oldest first."""
    return repository.stalled_jobs(session, cutoff=now - timedelta(seconds=timeout_s))


def recover_job(session: Session, job_id: uuid.UUID, *, now: datetime, timeout_s: float, max_attempts: int) -> Recovery:
    """Re-queue the job's stalled chunks, fail it when a stalled chunk is out of attempts, finalize it if scored.

    A chunk `running` since before the timeout lost its worker (killed, or hung): it goes back to `pending`
    and is re-sent, unless it has already been started `max_attempts` times, which fails the job with the
    chunk as the cause. When no chunk of the job has been claimed, finished or re-sent within the timeout,
    its `pending` chunks lost their messages (a broker restarted without persistence, or was down when the
    job was created): they are re-sent. Re-sending work that was merely slow or queued behind other jobs is
    harmless: a done chunk is skipped and writes are idempotent.

    An `ingesting` job silent for the timeout (no batch stored, nor its ingest started or re-sent) lost its ingest
    task (a worker killed, a broker down when the job was created): the caller re-sends it, and it resumes after the
    last stored batch (its starts are bounded by `max_attempts`, counted by the ingest itself). Its chunks wait for
    the ingest's end to be swept.
    """
    job = repository.locked_job(session, job_id)
    if job is None or job.status in FINISHED_STATUSES:
        return Recovery(job_id)
    cutoff = now - timedelta(seconds=timeout_s)
    if job.status == JobStatus.ingesting:
        heartbeat = as_utc(job.ingest_updated_at or job.created_at)
        assert heartbeat is not None
        if heartbeat >= cutoff:
            return Recovery(job_id)
        job.ingest_updated_at = now
        session.flush()
        return Recovery(job_id, ingest_requeued=True)
    chunks = repository.unfinished_chunks(session, job_id)
    if not chunks:
        scored_at = as_utc(job.scored_at or job.created_at)
        assert scored_at is not None
        if scored_at < cutoff and lifecycle.finalize_job(session, job_id):
            return Recovery(job_id, finalized=True)
        return Recovery(job_id)
    # While any chunk of the job is claimed or finished within the timeout, its pending chunks are still being
    # taken from the queue in order: re-sending them would only duplicate messages.
    last_activity = as_utc(repository.last_chunk_activity(session, job_id) or job.created_at)
    assert last_activity is not None
    stalled = last_activity < cutoff
    requeued: list[int] = []
    for chunk in chunks:
        started_at = as_utc(chunk.started_at)
        lost_worker = chunk.status == ChunkStatus.running and started_at is not None and started_at < cutoff
        lost_message = chunk.status == ChunkStatus.pending and stalled
        if not (lost_worker or lost_message):
            continue
        if lost_worker:
            assert started_at is not None
            if chunk.attempts >= max_attempts:
                cause = (
                    f"chunk {chunk.index}: no result after {chunk.attempts} attempts, the last started at "
                    f"{started_at:%Y-%m-%d %H:%M:%S} UTC (its worker died or hung each time; "
                    f"FRONTIER_CHUNK_TIMEOUT_S={timeout_s:g}, FRONTIER_MAX_CHUNK_ATTEMPTS={max_attempts})"
                )
                lifecycle.fail_job(session, job_id, cause, chunk_index=chunk.index)
                return Recovery(job_id, failed=cause)
            chunk.status = ChunkStatus.pending
        chunk.queued_at = now
        requeued.append(chunk.index)
    session.flush()
    return Recovery(job_id, requeued=tuple(requeued))


def claim_chunk(session: Session, job_id: uuid.UUID, index: int, *, max_attempts: int) -> lifecycle.ChunkWork | None:
    """Like lifecycle.claim_chunk, but fail the job instead once the chunk has been started `max_attempts` times.

    This is what stops a chunk that kills its worker (out of memory, a crash in native code) from being
    redelivered forever: each delivery counts as an attempt before the scoring starts.
    """
    job = repository.locked_job(session, job_id)
    if job is None or job.status in FINISHED_STATUSES:
        return None
    chunk = repository.get_chunk(session, job_id, index)
    if chunk is not None and chunk.status != ChunkStatus.done and chunk.attempts >= max_attempts:
        lifecycle.fail_job(
            session,
            job_id,
            f"chunk {index}: started {chunk.attempts} times without a result (its worker died or lost the "
            f"database each time; FRONTIER_MAX_CHUNK_ATTEMPTS={max_attempts})",
            chunk_index=index,
        )
        return None
    return lifecycle.claim_chunk(session, job_id, index)


def leftover_uploads(session: Session, folder: Path, *, now: datetime, older_than_s: float) -> list[Path]:
    """Spooled uploads that no ingesting job reads and nothing has written for `older_than_s`.

    An upload's file is the job's until its ingest ends and deletes it; one is left behind only when the request
    failed between spooling and committing its job (a database outage, a killed API) or a deletion failed. The age
    keeps a request that is still between the two from losing its file.
    """
    if not folder.is_dir():
        return []
    cutoff = now.timestamp() - older_than_s
    old: list[Path] = []
    for path in folder.glob(SPOOL_PATTERN):
        try:
            if path.stat().st_mtime < cutoff:
                old.append(path)
        except FileNotFoundError:
            continue
    if not old:
        return []
    reading = set(
        session.scalars(
            select(Job.source_path).where(
                Job.status == JobStatus.ingesting, Job.source_path.in_([str(path) for path in old])
            )
        )
    )
    return [path for path in old if str(path) not in reading]
