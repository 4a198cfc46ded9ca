"""The job or decision set a request names, or the error that says why it cannot have it (404, 409)."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from core.errors import ConflictError, NotFoundError
from service.jobs import decision_repository, repository
from service.models import DecisionSet, Job, JobStatus


def get_job(session: Session, job_id: uuid.UUID) -> Job:
    """The job, or NotFoundError."""
    job = repository.get_job(session, job_id)
    if job is None:
        raise NotFoundError(f"job {job_id} not found")
    return job


def succeeded_job(session: Session, job_id: uuid.UUID, purpose: str) -> Job:
    """The job if it succeeded (its scores and decisions are complete), else ConflictError naming `purpose`."""
    job = get_job(session, job_id)
    if job.status != JobStatus.succeeded:
        raise ConflictError(f"job {job_id} is {job.status}: only a succeeded job can be {purpose}")
    return job


def resolve_decision_set(session: Session, job_id: uuid.UUID, decision_set_id: int | None) -> DecisionSet | None:
    """The requested decision set of the job, or its latest when none is requested (None if it has none yet)."""
    if decision_set_id is None:
        return decision_repository.latest_decision_set(session, job_id)
    decision_set = decision_repository.get_decision_set(session, job_id, decision_set_id)
    if decision_set is None:
        raise NotFoundError(f"job {job_id} has no decision set {decision_set_id}")
    return decision_set


def decided_job(
    session: Session, job_id: uuid.UUID, decision_set_id: int | None, purpose: str
) -> tuple[Job, DecisionSet]:
    """A succeeded job and the requested decision set (its latest unless one is named)."""
    job = succeeded_job(session, job_id, purpose)
    decision_set = resolve_decision_set(session, job_id, decision_set_id)
    if decision_set is None:
        raise ConflictError(f"job {job_id} has no decisions")
    return job, decision_set
