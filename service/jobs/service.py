"""Job logic: create a job whole or not at all, track chunk scoring, finalize with the job's policy, cancel."""

from __future__ import annotations

import base64
import math
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.checkpoint import inspect_checkpoint
from core.confidence import hedging_rate, strips_hedging
from core.dataset import SampleRecord, candidate_texts
from core.errors import ConflictError, InputError, NotFoundError
from core.scores import SCORE_FIELDS, TOKEN_COUNT_FIELDS
from core.templates import check_template
from service.db import UnitOfWork
from service.jobs import repository
from service.jobs.schemas import (
    CandidateOut,
    Counts,
    DecisionSetList,
    DecisionSetOut,
    JobOut,
    JobPage,
    PolicyOut,
    Progress,
    SampleOut,
    SamplePage,
    StudentOut,
    Timings,
)
from service.models import (
    FINISHED_STATUSES,
    Candidate,
    CandidateStatus,
    ChunkStatus,
    DecisionSet,
    Job,
    JobStatus,
    Student,
    utcnow,
)
from service.policies import CandidateScore, SampleScores, get_policy, resolve_params
from service.settings import Settings

# Columns a chunk write may set on a candidate row: the engine's output, nothing else.
WRITABLE_SCORE_COLUMNS = frozenset({"status", "error", "template", "scoring_version", *SCORE_FIELDS})


def as_utc(moment: datetime | None) -> datetime | None:
    """`moment` as an aware UTC datetime (SQLite hands back naive ones)."""
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def create_job(
    uow: UnitOfWork,
    settings: Settings,
    *,
    records: Sequence[SampleRecord],
    student_path: str,
    policy: str | None = None,
    params: dict[str, Any] | None = None,
    template: str | None = None,
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
            return _replayed(earlier, idempotency_key, request_hash)
    policy_impl, policy_params = resolve_params(policy or settings.default_policy, params)
    template = check_template(template or settings.template)
    info = inspect_checkpoint(student_path, allowed_roots=settings.student_roots)
    session = uow.session
    student = repository.get_or_create_student(session, info)

    chunk_size = settings.chunk_size
    n_chunks = math.ceil(len(records) / chunk_size)
    texts = [candidate_texts(record) for record in records]
    job = Job(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        status=JobStatus.queued,
        student_id=student.id,
        policy=policy_impl.name,
        policy_params=policy_params,
        template=template,
        dataset_name=dataset_name[:300],
        dataset_format=dataset_format,
        chunk_size=chunk_size,
        n_chunks=n_chunks,
        total_samples=len(records),
        total_candidates=sum(len(candidates) for candidates in texts),
        scored_samples=0,
        retained_count=0,
        rejected_count=0,
        unscored_count=0,
        scoring_seconds=0.0,
    )
    job.student = student
    try:
        # A savepoint: a concurrent request with the same Idempotency-Key may have committed first.
        with session.begin_nested():
            session.add(job)
            session.flush()
    except IntegrityError:
        earlier = repository.job_by_idempotency_key(session, tenant_id, idempotency_key or "")
        if idempotency_key is None or earlier is None:
            raise
        return _replayed(earlier, idempotency_key, request_hash)

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


def _replayed(job: Job, idempotency_key: str, request_hash: str | None) -> Job:
    if job.request_hash != request_hash:
        raise ConflictError(
            f"Idempotency-Key {idempotency_key!r} was already used for job {job.id} with a different request"
        )
    return job


def get_job(session: Session, job_id: uuid.UUID) -> Job:
    """The job, or NotFoundError."""
    job = repository.get_job(session, job_id)
    if job is None:
        raise NotFoundError(f"job {job_id} not found")
    return job


@dataclass(frozen=True, slots=True)
class ChunkWork:
    """What a worker needs to score one chunk: the student, the template and the candidates' texts."""

    job_id: uuid.UUID
    index: int
    student_path: str
    student_fingerprint: str
    template: str
    candidates: list[repository.StoredCandidate]


def claim_chunk(session: Session, job_id: uuid.UUID, index: int) -> ChunkWork | None:
    """Mark a chunk running and return its work; None when the job is finished or the chunk already done."""
    status = repository.lock_job(session, job_id)
    if status is None or status in FINISHED_STATUSES:
        return None
    chunk = repository.get_chunk(session, job_id, index)
    if chunk is None:
        raise NotFoundError(f"job {job_id} has no chunk {index}")
    if chunk.status == ChunkStatus.done:
        return None
    job = get_job(session, job_id)
    now = utcnow()
    if job.status == JobStatus.queued:
        job.status = JobStatus.running
    if job.started_at is None:
        job.started_at = now
    chunk.status = ChunkStatus.running
    chunk.attempts += 1
    chunk.started_at = now
    candidates = repository.chunk_candidates(session, job_id, chunk.first_ordinal, chunk.n_samples)
    return ChunkWork(job_id, index, job.student.path, job.student.fingerprint, job.template, candidates)


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
    status = repository.lock_job(session, job_id)
    if status is None or status in FINISHED_STATUSES:
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
    left = repository.chunks_left(session, job_id)
    if left == 0:
        job = get_job(session, job_id)
        if job.scored_at is None:
            job.scored_at = now
        return True
    return False


def chunk_completes_job(session: Session, job_id: uuid.UUID) -> bool:
    """True when the job is unfinished and fully scored (a redelivered last chunk re-queues finalize)."""
    job = repository.get_job(session, job_id)
    if job is None or job.status in FINISHED_STATUSES:
        return False
    return repository.chunks_left(session, job_id) == 0


def fail_job(session: Session, job_id: uuid.UUID, error: str, *, chunk_index: int | None = None) -> None:
    """Record a job's failure and its cause (no-op once the job has finished)."""
    status = repository.lock_job(session, job_id)
    if status is None or status in FINISHED_STATUSES:
        return
    job = get_job(session, job_id)
    job.status = JobStatus.failed
    job.error = error[:4000]
    job.finished_at = utcnow()
    if chunk_index is not None:
        chunk = repository.get_chunk(session, job_id, chunk_index)
        if chunk is not None:
            chunk.status = ChunkStatus.failed
            chunk.error = error[:4000]


def cancel_job(session: Session, job_id: uuid.UUID) -> Job:
    """Cancel a queued or running job: its remaining chunks are skipped, decisions already made are kept."""
    status = repository.lock_job(session, job_id)
    if status is None:
        raise NotFoundError(f"job {job_id} not found")
    job = get_job(session, job_id)
    if status in FINISHED_STATUSES:
        raise ConflictError(f"job {job_id} is already {status}")
    job.status = JobStatus.cancelled
    job.finished_at = utcnow()
    return job


def load_score_table(session: Session, job_id: uuid.UUID) -> tuple[list[SampleScores], list[int]]:
    """The job's candidates' scores grouped per sample (ordinal order), and the samples' row ids."""
    samples: list[SampleScores] = []
    sample_pks: list[int] = []
    current: list[CandidateScore] = []
    current_key: str | None = None
    original_instruction: tuple[str, str] = ("", "")
    original_hedging = 0.0
    for row in repository.score_table_rows(session, job_id):
        hedging = hedging_rate(row.response)
        if not sample_pks or sample_pks[-1] != row.sample_pk:
            if current_key is not None:
                samples.append(SampleScores(current_key, tuple(current)))
            sample_pks.append(row.sample_pk)
            current, current_key = [], row.external_id
            original_instruction = (row.instruction, row.input)
            original_hedging = hedging
        current.append(
            CandidateScore(
                name=row.name,
                teacher=row.teacher,
                status=row.status,
                error=row.error,
                ifd=row.ifd,
                rifd=row.rifd,
                ifd_loss_ratio=row.ifd_loss_ratio,
                ppl_response_given_instruction=row.ppl_response_given_instruction,
                nll_response_given_instruction=row.nll_response_given_instruction,
                rewrote_instruction=row.teacher is not None and (row.instruction, row.input) != original_instruction,
                hedging_rate=hedging,
                overconfident_style=row.teacher is not None and strips_hedging(original_hedging, hedging),
            )
        )
    if current_key is not None:
        samples.append(SampleScores(current_key, tuple(current)))
    return samples, sample_pks


def decide(session: Session, job_id: uuid.UUID, policy_name: str, params: dict[str, Any] | None) -> DecisionSet:
    """Run a policy over the job's stored scores (no rescoring) and store the verdicts as a new decision set."""
    policy = get_policy(policy_name)
    validated = policy.parse_params(params)
    table, sample_pks = load_score_table(session, job_id)
    verdicts = policy.decide(table, validated)
    counts = Counter[str](verdict.decision for verdict in verdicts)
    decision_set = repository.add_decision_set(
        session,
        job_id,
        policy=policy.name,
        version=policy.version,
        params=validated.model_dump(mode="json"),
        counts=dict(counts),
    )
    repository.insert_decisions(
        session,
        [
            {
                "decision_set_id": decision_set.id,
                "job_id": job_id,
                "sample_id": sample_pk,
                "decision": verdict.decision,
                "reason": verdict.reason,
                "chosen_candidate": verdict.chosen_candidate,
                "detail": verdict.detail,
            }
            for sample_pk, verdict in zip(sample_pks, verdicts, strict=True)
        ],
    )
    return decision_set


def redecide(session: Session, job_id: uuid.UUID, policy_name: str, params: dict[str, Any] | None) -> DecisionSetOut:
    """A new decision set for a succeeded job from its stored scores: no candidate is rescored."""
    get_policy(policy_name).parse_params(params)
    succeeded_job(session, job_id, "re-decided")
    decision_set = decide(session, job_id, policy_name, params)
    return decision_set_out(decision_set, own=False, latest=True)


def resolve_decision_set(session: Session, job_id: uuid.UUID, decision_set_id: int | None) -> DecisionSet | None:
    """The requested decision set of the job, or its latest when none is requested (None if it has none yet)."""
    if decision_set_id is None:
        return repository.latest_decision_set(session, job_id)
    decision_set = repository.get_decision_set(session, job_id, decision_set_id)
    if decision_set is None:
        raise NotFoundError(f"job {job_id} has no decision set {decision_set_id}")
    return decision_set


def succeeded_job(session: Session, job_id: uuid.UUID, purpose: str) -> Job:
    """The job if it succeeded (its scores and decisions are complete), else ConflictError naming `purpose`."""
    job = get_job(session, job_id)
    if job.status != JobStatus.succeeded:
        raise ConflictError(f"job {job_id} is {job.status}: only a succeeded job can be {purpose}")
    return job


def decided_job(
    session: Session, job_id: uuid.UUID, decision_set_id: int | None, purpose: str
) -> tuple[Job, DecisionSet]:
    """A succeeded job and the requested decision set (its latest unless one is named)."""
    job = succeeded_job(session, job_id, purpose)
    decision_set = resolve_decision_set(session, job_id, decision_set_id)
    if decision_set is None:
        raise ConflictError(f"job {job_id} has no decisions")
    return job, decision_set


def student_out(student: Student) -> StudentOut:
    """The public view of a student checkpoint."""
    return StudentOut(
        path=student.path,
        fingerprint=student.fingerprint,
        model_type=student.model_type,
        max_length=student.max_length,
    )


def decision_set_out(decision_set: DecisionSet, *, own: bool, latest: bool) -> DecisionSetOut:
    """The public view of a decision set."""
    created_at = as_utc(decision_set.created_at)
    assert created_at is not None
    return DecisionSetOut(
        id=decision_set.id,
        policy=policy_out(decision_set.policy, decision_set.params, decision_set.policy_version),
        counts=Counts(
            retained=decision_set.retained_count,
            rejected=decision_set.rejected_count,
            unscored=decision_set.unscored_count,
        ),
        created_at=created_at,
        own=own,
        latest=latest,
    )


def decision_set_view(session: Session, job_id: uuid.UUID, decision_set: DecisionSet) -> DecisionSetOut:
    """The public view of one of the job's decision sets, with whether it is the job's own and the latest."""
    ids = [other.id for other in repository.list_decision_sets(session, job_id)]
    return decision_set_out(decision_set, own=ids[0] == decision_set.id, latest=ids[-1] == decision_set.id)


def list_decision_sets(session: Session, job_id: uuid.UUID) -> DecisionSetList:
    """Every decision set of the job, oldest (its own) first."""
    get_job(session, job_id)
    sets = repository.list_decision_sets(session, job_id)
    return DecisionSetList(
        items=[
            decision_set_out(decision_set, own=index == 0, latest=index == len(sets) - 1)
            for index, decision_set in enumerate(sets)
        ]
    )


def finalize_job(session: Session, job_id: uuid.UUID) -> bool:
    """Apply the job's policy once every chunk is scored and mark it succeeded; False when not (yet) due."""
    status = repository.lock_job(session, job_id)
    if status is None or status in FINISHED_STATUSES:
        return False
    if repository.chunks_left(session, job_id) > 0:
        return False
    job = get_job(session, job_id)
    decision_set = decide(session, job_id, job.policy, job.policy_params)
    job.retained_count = decision_set.retained_count
    job.rejected_count = decision_set.rejected_count
    job.unscored_count = decision_set.unscored_count
    job.status = JobStatus.succeeded
    job.finished_at = utcnow()
    if job.scored_at is None:
        job.scored_at = job.finished_at
    return True


def policy_out(name: str, params: dict[str, Any], version: str | None = None) -> PolicyOut:
    """A policy's public description (the registered version unless a stored one is given)."""
    return PolicyOut(name=name, version=version or get_policy(name).version, params=params)


def job_out(job: Job) -> JobOut:
    """The public view of a job (its student must be loaded)."""
    started_at, scored_at, finished_at = as_utc(job.started_at), as_utc(job.scored_at), as_utc(job.finished_at)
    rate = None
    if started_at is not None and job.scored_samples:
        end = scored_at or finished_at or utcnow()
        elapsed = (end - started_at).total_seconds()
        rate = job.scored_samples / elapsed if elapsed > 0 else None
    created_at = as_utc(job.created_at)
    assert created_at is not None
    return JobOut(
        id=job.id,
        status=JobStatus(job.status).value,
        progress=Progress(
            scored=job.scored_samples,
            total=job.total_samples,
            candidates=job.total_candidates,
            cached=job.cached_candidates,
        ),
        counts=Counts(retained=job.retained_count, rejected=job.rejected_count, unscored=job.unscored_count),
        student=student_out(job.student),
        policy=policy_out(job.policy, job.policy_params),
        template=job.template,
        dataset={"name": job.dataset_name, "format": job.dataset_format, "samples": job.total_samples},
        timings=Timings(
            created_at=created_at,
            started_at=started_at,
            scored_at=scored_at,
            finished_at=finished_at,
            scoring_seconds=job.scoring_seconds,
            samples_per_second=rate,
        ),
        error=job.error,
    )


def _encode_cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError("cursor: not a cursor this API issued", field="cursor") from exc


def list_jobs(
    session: Session, *, tenant_id: int | None, status: str | None, cursor: str | None, limit: int
) -> JobPage:
    """The tenant's jobs newest first with keyset pagination on (created_at, id)."""
    before = None
    if cursor is not None:
        created, _, job_id = _decode_cursor(cursor).partition("|")
        try:
            before = (datetime.fromisoformat(created), uuid.UUID(job_id))
        except ValueError as exc:
            raise InputError("cursor: not a cursor this API issued", field="cursor") from exc
    jobs = repository.list_jobs(session, tenant_id=tenant_id, status=status, before=before, limit=limit + 1)
    items = [job_out(job) for job in jobs[:limit]]
    next_cursor = None
    if len(jobs) > limit:
        last = jobs[limit - 1]
        next_cursor = _encode_cursor(f"{last.created_at.isoformat()}|{last.id}")
    return JobPage(items=items, next_cursor=next_cursor)


def _candidate_out(candidate: Candidate, *, with_texts: bool) -> CandidateOut:
    texts = (
        {"instruction": candidate.instruction, "input": candidate.input, "response": candidate.response}
        if with_texts
        else {}
    )
    return CandidateOut(
        name=candidate.name,
        teacher=candidate.teacher,
        status=candidate.status,
        error=candidate.error,
        template=candidate.template,
        scoring_version=candidate.scoring_version,
        **repository.score_values(candidate),
        **texts,
    )


def list_samples(
    session: Session,
    job_id: uuid.UUID,
    filters: repository.SampleFilter,
    *,
    cursor: str | None = None,
    limit: int = 100,
    external_id: str | None = None,
    with_texts: bool = False,
    decision_set_id: int | None = None,
) -> SamplePage:
    """A page of a job's samples with their decision (latest set unless one is named) and every candidate's scores."""
    get_job(session, job_id)
    after = -1
    if cursor is not None:
        try:
            after = int(_decode_cursor(cursor))
        except ValueError as exc:
            raise InputError("cursor: not a cursor this API issued", field="cursor") from exc
    decision_set = resolve_decision_set(session, job_id, decision_set_id)
    rows = repository.sample_page(
        session,
        job_id,
        decision_set.id if decision_set is not None else None,
        filters,
        after_ordinal=after,
        limit=limit + 1,
        external_id=external_id,
    )
    page = rows[:limit]
    by_sample: dict[int, list[CandidateOut]] = {}
    for candidate in repository.candidates_of_samples(session, [row.id for row in page]):
        by_sample.setdefault(candidate.sample_id, []).append(_candidate_out(candidate, with_texts=with_texts))
    items = [
        SampleOut(
            sample_id=row.external_id,
            ordinal=row.ordinal,
            decision=row.decision,
            reason=row.reason,
            chosen_candidate=row.chosen_candidate,
            detail=row.detail,
            candidates=by_sample.get(row.id, []),
        )
        for row in page
    ]
    next_cursor = _encode_cursor(str(page[-1].ordinal)) if len(rows) > limit else None
    policy = (
        policy_out(decision_set.policy, decision_set.params, decision_set.policy_version)
        if decision_set is not None
        else None
    )
    return SamplePage(
        items=items,
        next_cursor=next_cursor,
        policy=policy,
        decision_set=decision_set.id if decision_set is not None else None,
    )


def get_sample(session: Session, job_id: uuid.UUID, sample_id: str, *, decision_set_id: int | None = None) -> SampleOut:
    """One sample with every candidate's texts and scores, its decision and the reason."""
    page = list_samples(
        session,
        job_id,
        repository.SampleFilter(),
        external_id=sample_id,
        limit=1,
        with_texts=True,
        decision_set_id=decision_set_id,
    )
    if not page.items:
        raise NotFoundError(f"job {job_id} has no sample {sample_id!r}")
    return page.items[0]
