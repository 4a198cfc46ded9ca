"""Public views of stored rows: jobs, students, policies, decision sets and candidates as the API shows them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from service.jobs.repository import score_values
from service.jobs.schemas import CandidateOut, Counts, DecisionSetOut, JobOut, PolicyOut, Progress, StudentOut, Timings
from service.models import Candidate, DecisionSet, Job, JobStatus, Student, utcnow
from service.policies import get_policy


def as_utc(moment: datetime | None) -> datetime | None:
    """`moment` as an aware UTC datetime (SQLite hands back naive ones)."""
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def student_out(student: Student) -> StudentOut:
    """The public view of a student checkpoint."""
    return StudentOut(
        path=student.path,
        fingerprint=student.fingerprint,
        model_type=student.model_type,
        max_length=student.max_length,
    )


def policy_out(name: str, params: dict[str, Any], version: str | None = None) -> PolicyOut:
    """A policy's public description (the registered version unless a stored one is given)."""
    return PolicyOut(name=name, version=version or get_policy(name).version, params=params)


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
        rank_clip=job.rank_clip,
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
        ingested_records=job.ingested_records,
        rejected_line=job.rejected_line,
    )


def candidate_out(candidate: Candidate, *, with_texts: bool) -> CandidateOut:
    """The public view of a candidate: its scores, and its texts when asked for."""
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
        **score_values(candidate),
        **texts,
    )
