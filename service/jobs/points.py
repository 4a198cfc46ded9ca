"""Every candidate of a decided job as one plot point: IFD, r-IFD, frontier score, zone and decision.

One read of the score table, no paging: what the dashboard's IFD × r-IFD scatter and frontier-score histograms
draw. A candidate counts as `retained` when the decision set chose it for a retained sample, `rejected` when it
is scored but was not chosen (its sample may still be retained with another candidate), `unscored` otherwise.
Frontier scores and zones use the same band as the report (`report.frontier_params`) and always come from the
whole job (they are z-scores against its own distribution); with `max_points` only every k-th sample's
candidates travel, k the smallest stride that fits, so a 50k-sample job's plot stays a uniform picture of it at
a size a browser can draw.
"""

from __future__ import annotations

import math
import uuid

from sqlalchemy.orm import Session

from core.decisions import DecisionName
from service.jobs import decision_repository
from service.jobs.decisions import decision_set_view, load_score_table
from service.jobs.guards import decided_job
from service.jobs.report import frontier_params
from service.jobs.schemas import CandidatePoint, PointsOut
from service.policies import decision_terms
from service.policies.frontier import frontier_zones


def candidate_points(
    session: Session, job_id: uuid.UUID, decision_set_id: int | None = None, max_points: int | None = None
) -> PointsOut:
    """Per candidate (samples in input order): its scores, frontier score, zone and the decision set's verdict."""
    _, decision_set = decided_job(session, job_id, decision_set_id, "plotted")
    table, sample_pks = load_score_table(session, job_id)
    decisions = decision_repository.decisions_of_set(session, decision_set.id)
    band, _ = frontier_params(decision_terms(decision_set.policy, decision_set.params))
    total = sum(len(sample.candidates) for sample in table)
    stride = 1 if max_points is None or total <= max_points else math.ceil(total / max_points)
    points: list[CandidatePoint] = []
    rows = zip(table, sample_pks, frontier_zones(table, band), strict=True)
    for index, (sample, sample_pk, row) in enumerate(rows):
        if index % stride:
            continue
        decided = decisions.get(sample_pk)
        sample_decision: DecisionName | None = decided.decision if decided is not None else None
        chosen_name = decided.chosen_candidate if decided is not None and decided.decision == "retained" else None
        for candidate, (score, zone) in zip(sample.candidates, row, strict=True):
            decision: DecisionName = "unscored"
            if candidate.scored:
                decision = "retained" if chosen_name == candidate.name else "rejected"
            points.append(
                CandidatePoint(
                    sample_id=sample.sample_key,
                    candidate=candidate.name,
                    teacher=candidate.teacher,
                    # Only finite scores travel: JSON has no infinity, and an unscored candidate has no position.
                    ifd=candidate.ifd if candidate.scored else None,
                    rifd=candidate.rifd if candidate.scored else None,
                    frontier_score=score,
                    zone=zone,
                    decision=decision,
                    sample_decision=sample_decision,
                    reason=decided.reason if decided is not None else None,
                )
            )
    return PointsOut(
        job_id=job_id,
        decision_set=decision_set_view(session, job_id, decision_set),
        frontier=band.model_dump(mode="json"),
        total_points=total,
        stride=stride,
        points=points,
    )
