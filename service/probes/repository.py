"""Every query over probe runs and their tasks, and the job data a probe trains and measures on; flushes, never
commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Exists, Select, and_, exists, func, or_, select, update
from sqlalchemy.orm import Session

from core.dataset import ORIGINAL
from core.probes import TrainingExample, condition_kind
from service.models import (
    Candidate,
    Decision,
    ProbeRun,
    ProbeStatus,
    ProbeTask,
    ProbeTaskStatus,
    Sample,
)


def get_probe_run(session: Session, job_id: uuid.UUID, probe_id: int) -> ProbeRun | None:
    """One of the job's probe runs (None when the job has no such run)."""
    return session.scalars(select(ProbeRun).where(ProbeRun.job_id == job_id, ProbeRun.id == probe_id)).one_or_none()


def list_probe_runs(session: Session, job_id: uuid.UUID) -> Sequence[ProbeRun]:
    """The job's probe runs, newest first."""
    return session.scalars(
        select(ProbeRun).where(ProbeRun.job_id == job_id).order_by(ProbeRun.created_at.desc(), ProbeRun.id.desc())
    ).all()


def locked_probe_run(session: Session, probe_id: int) -> ProbeRun | None:
    """Take the run row's write lock for this transaction and return the run read afresh (None if no such run).

    A no-op UPDATE, like service.jobs.repository.locked_job: it locks the row on Postgres and takes SQLite's write
    lock up front, so claims, results, the sweep and a cancel of one run serialise on every backend.
    """
    statement = update(ProbeRun).where(ProbeRun.id == probe_id).values(status=ProbeRun.status).returning(ProbeRun.id)
    if session.execute(statement, execution_options={"synchronize_session": False}).scalar_one_or_none() is None:
        return None
    return session.scalars(
        select(ProbeRun).where(ProbeRun.id == probe_id).execution_options(populate_existing=True)
    ).one()


def tasks_of(session: Session, probe_ids: Sequence[int]) -> Sequence[ProbeTask]:
    """The tasks of the given runs, by (run, condition, seed)."""
    if not probe_ids:
        return []
    return session.scalars(
        select(ProbeTask)
        .where(ProbeTask.probe_run_id.in_(list(probe_ids)))
        .order_by(ProbeTask.probe_run_id, ProbeTask.condition, ProbeTask.seed)
    ).all()


def get_task(session: Session, probe_id: int, condition: str, seed: int, *, lock: bool = False) -> ProbeTask | None:
    """One task of a run, read afresh; with `lock`, its row's write lock is taken first (a no-op UPDATE)."""
    where = (ProbeTask.probe_run_id == probe_id, ProbeTask.condition == condition, ProbeTask.seed == seed)
    if lock:
        session.execute(
            update(ProbeTask).where(*where).values(status=ProbeTask.status),
            execution_options={"synchronize_session": False},
        )
    return session.scalars(select(ProbeTask).where(*where).execution_options(populate_existing=True)).one_or_none()


def insert_tasks(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert a run's task rows."""
    session.add_all(ProbeTask(**row) for row in rows)
    session.flush()


def task_statuses(session: Session, probe_id: int) -> dict[str, int]:
    """How many of the run's tasks are in each status."""
    rows = session.execute(
        select(ProbeTask.status, func.count()).where(ProbeTask.probe_run_id == probe_id).group_by(ProbeTask.status)
    ).all()
    return {str(status): int(count) for status, count in rows}


def first_failed_task(session: Session, probe_id: int) -> ProbeTask | None:
    """The run's failed task that failed first (its error is the run's cause)."""
    return session.scalars(
        select(ProbeTask)
        .where(ProbeTask.probe_run_id == probe_id, ProbeTask.status == ProbeTaskStatus.failed)
        .order_by(ProbeTask.finished_at, ProbeTask.id)
        .limit(1)
    ).one_or_none()


def unfinished_tasks(session: Session, probe_id: int) -> Sequence[ProbeTask]:
    """The run's tasks that are pending or running, by (condition, seed)."""
    return session.scalars(
        select(ProbeTask)
        .where(
            ProbeTask.probe_run_id == probe_id,
            ProbeTask.status.in_([ProbeTaskStatus.pending, ProbeTaskStatus.running]),
        )
        .order_by(ProbeTask.condition, ProbeTask.seed)
    ).all()


def job_teachers(session: Session, job_id: uuid.UUID) -> list[str]:
    """Every teacher with a refinement in the job, sorted."""
    statement = select(Candidate.teacher).where(Candidate.job_id == job_id, Candidate.teacher.is_not(None)).distinct()
    return sorted(teacher for teacher in session.scalars(statement).all() if teacher is not None)


@dataclass(frozen=True, slots=True)
class OriginalSample:
    """A sample's own candidate: what a held-out problem is made of."""

    sample_id: int
    instruction: str
    input: str
    response: str


def original_samples(session: Session, job_id: uuid.UUID) -> list[OriginalSample]:
    """Every sample's original candidate, in input order."""
    rows = session.execute(
        select(Candidate.sample_id, Candidate.instruction, Candidate.input, Candidate.response)
        .join(Sample, Sample.id == Candidate.sample_id)
        .where(Candidate.job_id == job_id, Candidate.name == ORIGINAL)
        .order_by(Sample.ordinal)
    ).all()
    return [OriginalSample(row.sample_id, row.instruction, row.input, row.response) for row in rows]


def _condition_candidates(job_id: uuid.UUID, condition: str, held_out: Sequence[int]) -> Select[str, str, str]:
    """The candidates a condition trains on, held-out samples excluded, in (input order, candidate position)."""
    kind, argument = condition_kind(condition)
    statement = (
        select(Candidate.instruction, Candidate.input, Candidate.response)
        .join(Sample, Sample.id == Candidate.sample_id)
        .where(Candidate.job_id == job_id)
    )
    if kind == "teacher":
        statement = statement.where(Candidate.teacher == argument)
    elif kind == "original":
        statement = statement.where(Candidate.name == ORIGINAL)
    elif kind == "union":
        statement = statement.where(Candidate.teacher.is_not(None))
    else:
        assert argument is not None
        # Each retained sample's chosen candidate (the set a curator would export).
        statement = statement.join(
            Decision,
            and_(
                Decision.sample_id == Candidate.sample_id,
                Decision.decision_set_id == int(argument),
                Decision.decision == "retained",
                Decision.chosen_candidate == Candidate.name,
            ),
        )
    if held_out:
        statement = statement.where(Candidate.sample_id.not_in(list(held_out)))
    return statement.order_by(Sample.ordinal, Candidate.position)


def count_condition_examples(session: Session, job_id: uuid.UUID, condition: str, held_out: Sequence[int]) -> int:
    """How many training examples a condition has, held-out samples excluded."""
    subquery = _condition_candidates(job_id, condition, held_out).order_by(None).subquery()
    return int(session.scalar(select(func.count()).select_from(subquery)) or 0)


def condition_examples(
    session: Session, job_id: uuid.UUID, condition: str, held_out: Sequence[int]
) -> list[TrainingExample]:
    """A condition's training examples, held-out samples excluded, in input order."""
    rows = session.execute(_condition_candidates(job_id, condition, held_out)).all()
    return [TrainingExample(row.instruction, row.input, row.response) for row in rows]


def stalled_probe_runs(session: Session, *, cutoff: datetime) -> list[int]:
    """Unfinished runs with a task running without a sign of life since `cutoff`, or pending tasks and no activity
    since (their messages lost), oldest first."""
    last_seen = func.coalesce(ProbeTask.updated_at, ProbeTask.started_at)
    lost_worker = exists().where(
        ProbeTask.probe_run_id == ProbeRun.id, ProbeTask.status == ProbeTaskStatus.running, last_seen < cutoff
    )
    waiting = exists().where(ProbeTask.probe_run_id == ProbeRun.id, ProbeTask.status == ProbeTaskStatus.pending)
    statement = (
        select(ProbeRun.id)
        .where(
            ProbeRun.status.in_([ProbeStatus.queued, ProbeStatus.running]),
            ProbeRun.created_at < cutoff,
            lost_worker | (waiting & ~_recent_activity(cutoff)),
        )
        .order_by(ProbeRun.created_at)
    )
    return list(session.scalars(statement).all())


def _recent_activity(cutoff: datetime) -> Exists:
    """Any task of the run claimed, updated, finished or re-sent since `cutoff`."""
    return exists().where(
        ProbeTask.probe_run_id == ProbeRun.id,
        or_(
            ProbeTask.started_at >= cutoff,
            ProbeTask.updated_at >= cutoff,
            ProbeTask.finished_at >= cutoff,
            ProbeTask.queued_at >= cutoff,
        ),
    )


def last_task_activity(session: Session, probe_id: int) -> datetime | None:
    """When any task of the run was last claimed, updated, finished or re-sent (None if never)."""
    row = session.execute(
        select(
            func.max(ProbeTask.started_at),
            func.max(ProbeTask.updated_at),
            func.max(ProbeTask.finished_at),
            func.max(ProbeTask.queued_at),
        ).where(ProbeTask.probe_run_id == probe_id)
    ).one()
    moments = [moment for moment in row if moment is not None]
    return max(moments) if moments else None
