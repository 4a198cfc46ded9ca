"""Every candidate of a decided job as one plot point: IFD, r-IFD, frontier score, zone and decision.

What the dashboard's IFD × r-IFD scatter and frontier-score histograms draw. A candidate counts as `retained` when
the decision set chose it for a retained sample, `rejected` when it is scored but was not chosen (its sample may
still be retained with another candidate), `unscored` otherwise. Frontier scores and zones use the same band as the
report (`report.frontier_params`) and always come from the whole job (they are z-scores against its own
distribution, built from its numeric columns alone).

Bounded at any job size: at most `max_points` points travel, and never more than POINTS_LIMIT (also when
`max_points` is not given): above it only every k-th sample's candidates do (samples whose ordinal is a multiple of
k), k the smallest stride that fits, so a million-sample job's plot stays a uniform picture of it at a size a
browser can draw and the API can hold. Only those samples are read; `total_points` and `stride` say how many there
are and which were sent.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from typing import cast

from sqlalchemy.orm import Session

from core.decisions import DecisionName
from service.jobs import decision_repository
from service.jobs.decisions import StoredBatch, StoredScores, decision_set_view
from service.jobs.guards import decided_job
from service.jobs.report import frontier_params
from service.jobs.schemas import CandidatePoint, PointsOut
from service.policies import decision_terms
from service.policies.frontier import FrontierBandParams, FrontierReference, sample_zones

# The most points one response carries, asked for or not: ~10 MB of JSON, tens of MB of objects while it is built.
POINTS_LIMIT = 50_000


def _batch_points(
    batch: StoredBatch, reference: FrontierReference | None, band: FrontierBandParams
) -> Iterator[CandidatePoint]:
    """One point per candidate of the batch's samples, with their sample's decision."""
    decisions = batch.decisions or {}
    for sample, sample_pk in zip(batch.samples, batch.row_ids, strict=True):
        decided = decisions.get(sample_pk)
        sample_decision = cast(DecisionName, decided[0]) if decided is not None else None
        chosen_name = decided[2] if decided is not None and decided[0] == "retained" else None
        for candidate, (score, zone) in zip(sample.candidates, sample_zones(sample, reference, band), strict=True):
            decision: DecisionName = "unscored"
            if candidate.scored:
                decision = "retained" if chosen_name == candidate.name else "rejected"
            yield CandidatePoint(
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
                reason=decided[1] if decided is not None else None,
            )


def candidate_points(
    session: Session, job_id: uuid.UUID, decision_set_id: int | None = None, max_points: int | None = None
) -> PointsOut:
    """Per candidate (samples in input order, every k-th above the limit): its scores, frontier score, zone and the
    decision set's verdict."""
    job, decision_set = decided_job(session, job_id, decision_set_id, "plotted")
    band, _ = frontier_params(decision_terms(decision_set.policy, decision_set.params))
    # The job's own count: counting its rows would read every candidate of a million-sample job.
    total = job.total_candidates
    limit = POINTS_LIMIT if max_points is None else min(max_points, POINTS_LIMIT)
    stride = 1 if total <= limit else math.ceil(total / limit)
    points: list[CandidatePoint] = []
    with decision_repository.score_reader(session) as (reader, own_connection):
        source = StoredScores(reader, job_id, prefetch=own_connection)
        reference = source.frontier_reference()
        for batch in source.batches(hedging=False, stride=stride, decision_set_id=decision_set.id):
            points.extend(_batch_points(batch, reference, band))
    return PointsOut(
        job_id=job_id,
        decision_set=decision_set_view(session, job_id, decision_set),
        frontier=band.model_dump(mode="json"),
        total_points=total,
        stride=stride,
        points=points,
    )
