"""Reading jobs and their samples page by page: the job list, a job's samples with their decisions, one sample."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from core.errors import NotFoundError
from service.jobs import repository
from service.jobs.cursors import job_cursor, job_position, sample_cursor, sample_position
from service.jobs.guards import get_job, resolve_decision_set
from service.jobs.presenters import candidate_out, job_out, policy_out
from service.jobs.schemas import CandidateOut, JobPage, SampleOut, SamplePage


def list_jobs(
    session: Session, *, tenant_id: int | None, status: str | None, cursor: str | None, limit: int
) -> JobPage:
    """The tenant's jobs newest first with keyset pagination on (created_at, id)."""
    before = job_position(cursor) if cursor is not None else None
    jobs = repository.list_jobs(session, tenant_id=tenant_id, status=status, before=before, limit=limit + 1)
    items = [job_out(job) for job in jobs[:limit]]
    next_cursor = None
    if len(jobs) > limit:
        last = jobs[limit - 1]
        next_cursor = job_cursor(last.created_at, last.id)
    return JobPage(items=items, next_cursor=next_cursor)


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
    after = sample_position(cursor) if cursor is not None else -1
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
        by_sample.setdefault(candidate.sample_id, []).append(candidate_out(candidate, with_texts=with_texts))
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
    next_cursor = sample_cursor(page[-1].ordinal) if len(rows) > limit else None
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
