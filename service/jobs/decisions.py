"""Deciding a job: its stored scores as a policy's table, a policy run stored as a decision set, and the sets."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

from sqlalchemy.orm import Session

from core.confidence import hedging_rate, strips_hedging
from service.jobs import decision_repository
from service.jobs.guards import get_job, succeeded_job
from service.jobs.presenters import decision_set_out
from service.jobs.schemas import DecisionSetList, DecisionSetOut
from service.models import DecisionSet
from service.policies import CandidateScore, SampleScores, get_policy


def load_score_table(session: Session, job_id: uuid.UUID) -> tuple[list[SampleScores], list[int]]:
    """The job's candidates' scores grouped per sample (ordinal order), and the samples' row ids."""
    samples: list[SampleScores] = []
    sample_pks: list[int] = []
    current: list[CandidateScore] = []
    current_key: str | None = None
    original_instruction: tuple[str, str] = ("", "")
    original_hedging = 0.0
    for row in decision_repository.score_table_rows(session, job_id):
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
                rank_mean=row.rank_mean,
                rsr=row.rsr,
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
    verdicts = policy.decide_job(table, validated)
    counts = Counter[str](verdict.decision for verdict in verdicts)
    decision_set = decision_repository.add_decision_set(
        session,
        job_id,
        policy=policy.name,
        version=policy.version,
        params=validated.model_dump(mode="json"),
        counts=dict(counts),
    )
    decision_repository.insert_decisions(
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


def decision_set_view(session: Session, job_id: uuid.UUID, decision_set: DecisionSet) -> DecisionSetOut:
    """The public view of one of the job's decision sets, with whether it is the job's own and the latest."""
    ids = [other.id for other in decision_repository.list_decision_sets(session, job_id)]
    return decision_set_out(decision_set, own=ids[0] == decision_set.id, latest=ids[-1] == decision_set.id)


def list_decision_sets(session: Session, job_id: uuid.UUID) -> DecisionSetList:
    """Every decision set of the job, oldest (its own) first."""
    get_job(session, job_id)
    sets = decision_repository.list_decision_sets(session, job_id)
    return DecisionSetList(
        items=[
            decision_set_out(decision_set, own=index == 0, latest=index == len(sets) - 1)
            for index, decision_set in enumerate(sets)
        ]
    )
