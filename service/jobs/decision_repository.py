"""Every query over decision sets and their decisions, and the score table policies decide from; flushes, never
commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Row, Table, func, insert, select
from sqlalchemy.orm import Session

from service.models import Candidate, Decision, DecisionSet, Sample


def score_table_rows(session: Session, job_id: uuid.UUID) -> Sequence[Row[*tuple[Any, ...]]]:
    """Every candidate's policy-relevant scores, ordered by (sample ordinal, candidate position)."""
    return session.execute(
        select(
            Sample.id.label("sample_pk"),
            Sample.external_id,
            Candidate.name,
            Candidate.teacher,
            Candidate.status,
            Candidate.error,
            Candidate.ifd,
            Candidate.rifd,
            Candidate.ifd_loss_ratio,
            Candidate.ppl_response_given_instruction,
            Candidate.nll_response_given_instruction,
            Candidate.rank_mean,
            Candidate.rsr,
            Candidate.instruction,
            Candidate.input,
            Candidate.response,
        )
        .join(Sample, Sample.id == Candidate.sample_id)
        .where(Candidate.job_id == job_id)
        .order_by(Sample.ordinal, Candidate.position)
    ).all()


def add_decision_set(
    session: Session, job_id: uuid.UUID, *, policy: str, version: str, params: dict[str, Any], counts: dict[str, int]
) -> DecisionSet:
    """A new decision set row for a policy run."""
    decision_set = DecisionSet(
        job_id=job_id,
        policy=policy,
        policy_version=version,
        params=params,
        retained_count=counts.get("retained", 0),
        rejected_count=counts.get("rejected", 0),
        unscored_count=counts.get("unscored", 0),
    )
    session.add(decision_set)
    session.flush()
    return decision_set


def insert_decisions(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert a decision set's decisions in one executemany."""
    if rows:
        session.connection().execute(insert(cast(Table, Decision.__table__)), list(rows))


def latest_decision_set(session: Session, job_id: uuid.UUID) -> DecisionSet | None:
    """The job's most recent decision set (the one its own policy made, until re-decided)."""
    return session.scalars(
        select(DecisionSet).where(DecisionSet.job_id == job_id).order_by(DecisionSet.id.desc()).limit(1)
    ).one_or_none()


def get_decision_set(session: Session, job_id: uuid.UUID, decision_set_id: int) -> DecisionSet | None:
    """One of the job's decision sets (None when it has no such set)."""
    return session.scalars(
        select(DecisionSet).where(DecisionSet.job_id == job_id, DecisionSet.id == decision_set_id)
    ).one_or_none()


def list_decision_sets(session: Session, job_id: uuid.UUID) -> Sequence[DecisionSet]:
    """The job's decision sets, oldest (the job's own) first."""
    return session.scalars(select(DecisionSet).where(DecisionSet.job_id == job_id).order_by(DecisionSet.id)).all()


def decisions_of_set(session: Session, decision_set_id: int) -> dict[int, Row[*tuple[Any, ...]]]:
    """A decision set's decisions keyed by sample row id: (decision, reason, chosen_candidate)."""
    rows = session.execute(
        select(Decision.sample_id, Decision.decision, Decision.reason, Decision.chosen_candidate).where(
            Decision.decision_set_id == decision_set_id
        )
    ).all()
    return {row.sample_id: row for row in rows}


def reason_counts(session: Session, decision_set_id: int) -> dict[str, dict[str, int]]:
    """Samples per reason code, grouped by decision, in one decision set."""
    rows = session.execute(
        select(Decision.decision, Decision.reason, func.count())
        .where(Decision.decision_set_id == decision_set_id)
        .group_by(Decision.decision, Decision.reason)
        .order_by(Decision.decision, Decision.reason)
    ).all()
    counts: dict[str, dict[str, int]] = {}
    for decision, reason, count in rows:
        counts.setdefault(decision, {})[reason] = int(count)
    return counts
