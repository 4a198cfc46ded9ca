"""The what-if parameter sweep: one policy run at each value of one parameter over a job's stored scores.

Read-only, like the report: nothing is written and nothing is rescored. The scores are streamed in batches
(service.jobs.decisions.StoredScores) and decided under several values at once, SWEEP_GROUP values per pass, so
memory holds one batch and at most SWEEP_GROUP values' job-wide statistics (an ifd_topk rank per sample each) at
any job size; the frontier reference is computed once for all values. Per value it answers the counts, the
retained fraction and each teacher's acceptance as the report defines it.
"""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

from sqlalchemy.orm import Session

from service.jobs import decision_repository
from service.jobs.decisions import StoredScores
from service.jobs.guards import succeeded_job
from service.jobs.report import AcceptanceTally
from service.jobs.schemas import Counts, WhatIfIn, WhatIfOut, WhatIfPoint
from service.policies import PolicyError, get_policy
from service.policies.base import Policy, PolicyParams

# Values decided in one pass over the scores: more passes for long sweeps, bounded statistics for each.
SWEEP_GROUP = 8


def what_if(session: Session, job_id: uuid.UUID, request: WhatIfIn) -> WhatIfOut:
    """Run a policy at each value of one parameter over the stored scores, streamed; nothing is written."""
    policy = get_policy(request.policy)
    policy.parse_params(request.params)
    param = request.sweep.param
    known = sorted(policy.params_model.model_fields)
    if param not in known:
        raise PolicyError(
            f"policy {policy.name!r} has no parameter {param!r} to sweep (known: {', '.join(known)})",
            field="sweep.param",
        )
    points: list[PolicyParams] = []
    for value in request.sweep.values:
        try:
            points.append(policy.parse_params({**(request.params or {}), param: value}))
        except PolicyError as exc:
            raise PolicyError(f"sweep value {value!r}: {exc}", field="sweep.values") from exc
    succeeded_job(session, job_id, "analysed")
    with decision_repository.score_reader(session) as (reader, own_connection):
        result = _sweep(policy, StoredScores(reader, job_id, prefetch=own_connection), request.sweep.values, points)
    return WhatIfOut(policy=policy.name, version=policy.version, param=param, points=result)


def _sweep(
    policy: Policy[Any], source: StoredScores, values: list[Any], points: list[PolicyParams]
) -> list[WhatIfPoint]:
    """One what-if point per value, SWEEP_GROUP values decided per pass over the scores."""
    samples = source.sample_count()
    result: list[WhatIfPoint] = []
    for first in range(0, len(points), SWEEP_GROUP):
        group = points[first : first + SWEEP_GROUP]
        counts: list[Counter[str]] = [Counter() for _ in group]
        tallies = [AcceptanceTally() for _ in group]
        for batch, verdict_lists in policy.sweep_stream(source, group):
            for count, tally, verdicts in zip(counts, tallies, verdict_lists, strict=True):
                count.update(verdict.decision for verdict in verdicts)
                for sample, verdict in zip(batch.samples, verdicts, strict=True):
                    tally.add(sample, verdict.decision, verdict.chosen_candidate)
        for value, params, count, tally in zip(
            values[first : first + SWEEP_GROUP], group, counts, tallies, strict=True
        ):
            result.append(
                WhatIfPoint(
                    value=value,
                    params=params.model_dump(mode="json"),
                    counts=Counts(retained=count["retained"], rejected=count["rejected"], unscored=count["unscored"]),
                    retained_fraction=count["retained"] / samples if samples else 0.0,
                    teachers=tally.result(),
                )
            )
    return result
