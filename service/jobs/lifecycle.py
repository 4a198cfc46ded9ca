"""A job's life: create it whole or not at all, claim and record its chunks, finalize it with its policy, fail or
cancel it.

Every change after creation is made under the job's row lock (`repository.locked_job`), so any number of workers,
sweepers and API requests may touch one job at once.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.checkpoint import inspect_checkpoint
from core.dataset import SampleRecord, candidate_texts
from core.errors import ConflictError, NotFoundError
from core.scores import SCORE_FIELDS, TOKEN_COUNT_FIELDS, check_rank_clip
from core.templates import check_template
from service.db import UnitOfWork
from service.jobs import repository
from service.jobs.decisions import decide
from service.models import FINISHED_STATUSES, CandidateStatus, ChunkStatus, Job, JobStatus, utcnow
from service.policies import resolve_params
from service.settings import Settings

# Columns a chunk write may set on a candidate row: the engine's output, nothing else.
WRITABLE_SCORE_COLUMNS = frozenset({"status", "error", "template", "scoring_version", *SCORE_FIELDS})


def create_job(
    uow: UnitOfWork,
    settings: Settings,
    *,
    records: Sequence[SampleRecord],
    student_path: str,
    policy: str | None = None,
    params: dict[str, Any] | None = None,
    template: str | None = None,
    rank_clip: int | None = None,
    dataset_name: str = "",
    dataset_format: str = "jsonl",
    tenant_id: int | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    enqueue: Callable[[uuid.UUID, int], None] | None = None,
) -> Job:
    """Validate the student, policy and template, store the job with its samples and candidates, then queue it.

    Raises CheckpointError, PolicyError or ValueError before anything is written; the chunks are queued only
    after the transaction commits (`enqueue(job_id, n_chunks)`), so a worker never sees a half-written job.
    With an `idempotency_key` already used by this tenant, returns that job when `request_hash` matches (and
    queues nothing) and raises ConflictError when it does not.
    """
    if idempotency_key is not None:
        earlier = repository.job_by_idempotency_key(uow.session, tenant_id, idempotency_key)
        if earlier is not None:
            return replayed(earlier, idempotency_key, request_hash)
    session = uow.session
    chunk_size = settings.chunk_size
    n_chunks = math.ceil(len(records) / chunk_size)
    job = new_job(
        session,
        settings,
        status=JobStatus.queued,
        student_path=student_path,
        policy=policy,
        params=params,
        template=template,
        rank_clip=rank_clip,
        dataset_name=dataset_name,
        dataset_format=dataset_format,
        tenant_id=tenant_id,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
    )
    texts = [candidate_texts(record) for record in records]
    job.n_chunks = n_chunks
    job.total_samples = job.ingested_records = len(records)
    job.total_candidates = sum(len(candidates) for candidates in texts)
    stored = add_job(session, job)
    if stored is not job:
        return replayed(stored, idempotency_key or "", request_hash)

    sample_ids = repository.insert_samples(
        session,
        job.id,
        [
            {"ordinal": ordinal, "external_id": record.id, "layout": record.layout, "payload": record.raw}
            for ordinal, record in enumerate(records)
        ],
    )
    repository.insert_candidates(
        session,
        [
            {
                "job_id": job.id,
                "sample_id": sample_id,
                "position": position,
                "name": text.name,
                "teacher": text.teacher,
                "instruction": text.instruction,
                "input": text.input,
                "response": text.response,
                "status": CandidateStatus.pending,
            }
            for sample_id, candidates in zip(sample_ids, texts, strict=True)
            for position, text in enumerate(candidates)
        ],
    )
    repository.insert_chunks(
        session,
        [
            {
                "job_id": job.id,
                "index": index,
                "first_ordinal": index * chunk_size,
                "n_samples": min(chunk_size, len(records) - index * chunk_size),
                "status": ChunkStatus.pending,
                "attempts": 0,
            }
            for index in range(n_chunks)
        ],
    )
    if enqueue is not None:
        job_id = job.id
        uow.after_commit(lambda: enqueue(job_id, n_chunks))
    return job


def new_job(
    session: Session,
    settings: Settings,
    *,
    status: JobStatus,
    student_path: str,
    policy: str | None,
    params: dict[str, Any] | None,
    template: str | None,
    rank_clip: int | None,
    dataset_name: str,
    dataset_format: str,
    tenant_id: int | None,
    idempotency_key: str | None,
    request_hash: str | None,
) -> Job:
    """A new job row (not yet added) with no samples, after validating its policy, template, rank clip and student.

    Raises CheckpointError, PolicyError or ValueError before anything is written (the student row aside, which is
    shared and idempotent).
    """
    policy_impl, policy_params = resolve_params(policy or settings.default_policy, params)
    template = check_template(template or settings.template)
    rank_clip = check_rank_clip(settings.rank_clip if rank_clip is None else rank_clip)
    info = inspect_checkpoint(student_path, allowed_roots=settings.student_roots)
    student = repository.get_or_create_student(session, info)
    job = Job(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        status=status,
        student_id=student.id,
        policy=policy_impl.name,
        policy_params=policy_params,
        template=template,
        rank_clip=rank_clip,
        dataset_name=dataset_name[:300],
        dataset_format=dataset_format,
        chunk_size=settings.chunk_size,
        n_chunks=0,
        total_samples=0,
        total_candidates=0,
        scored_samples=0,
        retained_count=0,
        rejected_count=0,
        unscored_count=0,
        scoring_seconds=0.0,
        ingested_records=0,
        ingest_attempts=0,
        source_owned=False,
    )
    job.student = student
    return job


def add_job(session: Session, job: Job) -> Job:
    """Insert a new job row; returns the tenant's earlier job instead when its Idempotency-Key was taken meanwhile."""
    try:
        # A savepoint: a concurrent request with the same Idempotency-Key may have committed first.
        with session.begin_nested():
            session.add(job)
            session.flush()
    except IntegrityError:
        earlier = repository.job_by_idempotency_key(session, job.tenant_id, job.idempotency_key or "")
        if job.idempotency_key is None or earlier is None:
            raise
        return earlier
    return job


def replayed(job: Job, idempotency_key: str, request_hash: str | None) -> Job:
    """The job an Idempotency-Key created, when this request is the same one; ConflictError when it is not."""
    if job.request_hash != request_hash:
        raise ConflictError(
            f"Idempotency-Key {idempotency_key!r} was already used for job {job.id} with a different request"
        )
    return job


@dataclass(frozen=True, slots=True)
class ChunkWork:
    """What a worker needs to score one chunk: the student, the template and the candidates' texts."""

    job_id: uuid.UUID
    index: int
    student_path: str
    student_fingerprint: str
    template: str
    rank_clip: int
    candidates: list[repository.StoredCandidate]


def claim_chunk(session: Session, job_id: uuid.UUID, index: int) -> ChunkWork | None:
    """Mark a chunk running and return its work; None when the job is finished or the chunk already done."""
    job = repository.locked_job(session, job_id)
    if job is None or job.status in FINISHED_STATUSES:
        return None
    chunk = repository.get_chunk(session, job_id, index)
    if chunk is None:
        raise NotFoundError(f"job {job_id} has no chunk {index}")
    if chunk.status == ChunkStatus.done:
        return None
    now = utcnow()
    # An `ingesting` job stays so until its ingest ends (which then makes it `running`); its stored chunks score.
    if job.status == JobStatus.queued:
        job.status = JobStatus.running
    if job.started_at is None:
        job.started_at = now
    chunk.status = ChunkStatus.running
    chunk.attempts += 1
    chunk.started_at = now
    candidates = repository.chunk_candidates(session, job_id, chunk.first_ordinal, chunk.n_samples)
    return ChunkWork(job_id, index, job.student.path, job.student.fingerprint, job.template, job.rank_clip, candidates)


def record_chunk_scores(
    session: Session,
    job_id: uuid.UUID,
    index: int,
    scores: Sequence[Mapping[str, Any]],
    *,
    scoring_seconds: float,
    cached_candidates: int = 0,
) -> bool:
    """Store a chunk's scores (rows keyed by candidate `id`) and mark it done; True when the job is fully scored.

    Idempotent: a redelivered chunk rewrites the same values and is counted once. The job row is locked
    first so the last of several concurrently finishing chunks always sees the others done.
    """
    job = repository.locked_job(session, job_id)
    if job is None or job.status in FINISHED_STATUSES:
        return False
    now = utcnow()
    rows = []
    for score in scores:
        row = {key: value for key, value in score.items() if key in WRITABLE_SCORE_COLUMNS}
        row["id"] = score["id"]
        row["scored_at"] = now
        rows.append(row)
    repository.update_candidate_scores(session, rows)
    if repository.mark_chunk_done(session, job_id, index, scoring_seconds=scoring_seconds, finished_at=now):
        chunk = repository.get_chunk(session, job_id, index)
        assert chunk is not None
        scored = [row for row in rows if row.get("status") == CandidateStatus.scored]
        repository.add_progress(
            session,
            job_id,
            samples=chunk.n_samples,
            scoring_seconds=scoring_seconds,
            cached_candidates=cached_candidates,
            scored_candidates=len(scored),
            scored_tokens=sum(int(row.get(column) or 0) for row in scored for column in TOKEN_COUNT_FIELDS),
        )
    # While ingesting, more chunks are coming: the ingest's end decides whether the job is fully scored.
    if job.status == JobStatus.ingesting:
        return False
    left = repository.chunks_left(session, job_id)
    if left == 0:
        if job.scored_at is None:
            job.scored_at = now
        return True
    return False


def chunk_completes_job(session: Session, job_id: uuid.UUID) -> bool:
    """True when the job is unfinished and fully scored (a redelivered last chunk re-queues finalize)."""
    job = repository.get_job(session, job_id)
    if job is None or job.status in FINISHED_STATUSES or job.status == JobStatus.ingesting:
        return False
    return repository.chunks_left(session, job_id) == 0


def fail_job(session: Session, job_id: uuid.UUID, error: str, *, chunk_index: int | None = None) -> None:
    """Record a job's failure and its cause (no-op once the job has finished)."""
    job = repository.locked_job(session, job_id)
    if job is None or job.status in FINISHED_STATUSES:
        return
    job.status = JobStatus.failed
    job.error = error[:4000]
    job.finished_at = utcnow()
    if chunk_index is not None:
        chunk = repository.get_chunk(session, job_id, chunk_index)
        if chunk is not None:
            chunk.status = ChunkStatus.failed
            chunk.error = error[:4000]


def cancel_job(session: Session, job_id: uuid.UUID) -> Job:
    """Cancel an ingesting, queued or running job: its remaining chunks are skipped (and its ingest stops at its next
    batch), decisions already made are kept."""
    job = repository.locked_job(session, job_id)
    if job is None:
        raise NotFoundError(f"job {job_id} not found")
    if job.status in FINISHED_STATUSES:
        raise ConflictError(f"job {job_id} is already {job.status}")
    job.status = JobStatus.cancelled
    job.finished_at = utcnow()
    return job


def finalize_job(session: Session, job_id: uuid.UUID) -> bool:
    """Apply the job's policy once every chunk is scored and mark it succeeded; False when not (yet) due."""
    job = repository.locked_job(session, job_id)
    if job is None or job.status in FINISHED_STATUSES or job.status == JobStatus.ingesting:
        return False
    if repository.chunks_left(session, job_id) > 0:
        return False
    decision_set = decide(session, job_id, job.policy, job.policy_params)
    job.retained_count = decision_set.retained_count
    job.rejected_count = decision_set.rejected_count
    job.unscored_count = decision_set.unscored_count
    job.status = JobStatus.succeeded
    job.finished_at = utcnow()
    if job.scored_at is None:
        job.scored_at = job.finished_at
    return True
