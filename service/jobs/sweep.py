"""The what-if parameter sweep: one policy run at each value of one parameter over a job's stored scores.

Read-only, like the report: the score table is read once and the policy runs over it in memory, so nothing is
written and nothing is rescored. Per value it answers the counts, the retained fraction and each teacher's
acceptance as the report defines it.
"""

from __future__ import annotations

import uuid
from collections import Counter

from sqlalchemy.orm import Session

from service.jobs.decisions import load_score_table
from service.jobs.guards import succeeded_job
from service.jobs.report import acceptance
from service.jobs.schemas import Counts, WhatIfIn, WhatIfOut, WhatIfPoint
from service.policies import PolicyError, get_policy


def what_if(session: Session, job_id: uuid.UUID, request: WhatIfIn) -> WhatIfOut:
    """Run a policy at each value of one parameter over the stored scores, in memory; nothing is written."""
    policy = get_policy(request.policy)
    policy.parse_params(request.params)
    param = request.sweep.param
    known = sorted(policy.params_model.model_fields)
    if param not in known:
        raise PolicyError(
            f"policy {policy.name!r} has no parameter {param!r} to sweep (known: {', '.join(known)})",
            field="sweep.param",
        )
    points = []
    for value in request.sweep.values:
        try:
            points.append(policy.parse_params({**(request.params or {}), param: value}))
        except PolicyError as exc:
            raise PolicyError(f"sweep value {value!r}: {exc}", field="sweep.values") from exc
    succeeded_job(session, job_id, "analysed")
    table, _ = load_score_table(session, job_id)
    result = []
    for value, params in zip(request.sweep.values, points, strict=True):
        verdicts = policy.decide_job(table, params)
        counts = Counter(verdict.decision for verdict in verdicts)
        result.append(
            WhatIfPoint(
                value=value,
                params=params.model_dump(mode="json"),
                counts=Counts(retained=counts["retained"], rejected=counts["rejected"], unscored=counts["unscored"]),
                retained_fraction=counts["retained"] / len(table) if table else 0.0,
                teachers=acceptance(
                    (sample, v.decision, v.chosen_candidate) for sample, v in zip(table, verdicts, strict=True)
                ),
            )
        )
    return WhatIfOut(policy=policy.name, version=policy.version, param=param, points=result)
