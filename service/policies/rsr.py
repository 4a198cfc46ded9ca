"""`rsr`: sample selection by the Rank-Surprisal Ratio ("Which Reasoning Trajectories Teach Students to Reason
Better?", arXiv 2601.14249).

RSR = sum of the response's clipped token ranks / sum of its token NLL under the student, L(A|Q): low when the
student finds the tokens likely in rank yet still surprising in probability, which the paper finds teaches best
(it selects teachers and samples by it). Per sample, keep the candidate (the original or any teacher's
refinement) with the lowest RSR among the scored candidates that have one; ties keep record order (original
first). The ranks and their clip come from the scoring engine (the job's `rank_clip`). With
`reject_overconfident`, refinements that strip the original's hedging (core.confidence) are skipped and listed
under `detail["overconfident_style"]`.

Reasons: retained `lowest_rsr`; rejected `overconfident_style` (the only candidates with an RSR strip hedging),
`teacher_not_allowed` (no candidate on the `teachers` allow-list); `unscored` (no candidate has a finite RSR).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from service.policies.base import (
    OVERCONFIDENT_STYLE,
    TEACHER_NOT_ALLOWED,
    UNSCORED,
    CandidateScore,
    Policy,
    PolicyParams,
    SampleScores,
    Verdict,
    excluded_as_overconfident,
    unscored_verdict,
)

LOWEST_RSR = "lowest_rsr"


class RsrParams(PolicyParams):
    """The confidence filter."""

    reject_overconfident: bool = False


def _rsr(candidate: CandidateScore) -> float | None:
    value = candidate.rsr
    return value if candidate.status == "scored" and value is not None and math.isfinite(value) else None


class RsrPolicy(Policy[RsrParams]):
    """Rank-Surprisal Ratio: per sample, the candidate with the lowest RSR under the student."""

    name: ClassVar[str] = "rsr"
    version: ClassVar[str] = "1"
    summary: ClassVar[str] = (
        "Rank-Surprisal Ratio (arXiv 2601.14249): per sample, keep the candidate with the lowest RSR "
        "(sum of clipped token ranks / sum of token NLL under the student)"
    )
    params_model = RsrParams
    reason_codes: ClassVar[tuple[str, ...]] = (LOWEST_RSR, OVERCONFIDENT_STYLE, TEACHER_NOT_ALLOWED, UNSCORED)

    def decide_sample(self, sample: SampleScores, params: RsrParams, statistics: object, index: int) -> Verdict:
        """Its candidate with the lowest RSR."""
        return self._decide_one(sample, params)

    def _decide_one(self, sample: SampleScores, params: RsrParams) -> Verdict:
        ratios = {c.name: _rsr(c) for c in sample.candidates}
        pool = [(c, value) for c in sample.candidates if (value := ratios[c.name]) is not None]
        if not pool:
            return unscored_verdict(sample)
        # Every scored candidate's ratio (None: scored without rank statistics).
        detail: dict[str, Any] = {"rsr": {c.name: ratios[c.name] for c in sample.candidates if c.status == "scored"}}
        overconfident = [c.name for c, _ in pool if excluded_as_overconfident(c, params.reject_overconfident)]
        if overconfident:
            detail[OVERCONFIDENT_STYLE] = overconfident
            pool = [(c, value) for c, value in pool if c.name not in overconfident]
            if not pool:
                return Verdict(sample.sample_key, "rejected", OVERCONFIDENT_STYLE, None, detail)
        # min() keeps the first of equal values, so record order breaks ties.
        best = min(pool, key=lambda pair: pair[1])[0]
        return Verdict(sample.sample_key, "retained", LOWEST_RSR, best.name, detail)
