"""`best_candidate`: GRAPE's selection (Zhang et al., "The Best Instruction-Tuning Data are Those That Fit", 2025).

Per sample, keep the candidate (the original or any teacher's refinement) that the student finds most probable:
the highest length-normalised log-probability of the response given its instruction, i.e. the lowest mean token
cross-entropy L(A|Q) (equivalently the lowest conditional perplexity PPL(A|Q)). A refinement that rewrote the
instruction is judged on its own instruction, as it would be trained. Ties keep record order (original first).

GRAPE applies no alignment cut, so `ifd_max` is unset by default; set it (e.g. 1.0, Cherry LLM's cut) to
skip candidates whose instruction does not help. With `reject_overconfident`, refinements that strip the
original's hedging (core.confidence) are skipped and listed under `detail["overconfident_style"]`.

Reasons: retained `most_probable`; rejected `misaligned_ifd_ge_1` (every scored candidate has IFD >= ifd_max),
`overconfident_style` (the only remaining candidates strip hedging),
`teacher_not_allowed` (no candidate on the `teachers` allow-list); `unscored`.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from pydantic import Field

from service.policies.base import (
    MISALIGNED_IFD_GE_1,
    OVERCONFIDENT_STYLE,
    TEACHER_NOT_ALLOWED,
    UNSCORED,
    CandidateScore,
    Cut,
    Policy,
    PolicyParams,
    SampleScores,
    Verdict,
    excluded_as_overconfident,
    unscored_verdict,
)

MOST_PROBABLE = "most_probable"


class BestCandidateParams(PolicyParams):
    """An optional alignment cut and the confidence filter."""

    ifd_max: float | None = Field(default=None, gt=0, description="skip candidates with IFD >= this; unset: none")
    reject_overconfident: bool = False


def _loss(candidate: CandidateScore) -> float:
    value = candidate.nll_response_given_instruction
    return value if value is not None and math.isfinite(value) else math.nan


class BestCandidatePolicy(Policy[BestCandidateParams]):
    """GRAPE: per sample, the candidate with the lowest L(A|Q) under the student."""

    name: ClassVar[str] = "best_candidate"
    version: ClassVar[str] = "1"
    summary: ClassVar[str] = "GRAPE: per sample, keep the candidate the student finds most probable (lowest L(A|Q))"
    params_model = BestCandidateParams
    reason_codes: ClassVar[tuple[str, ...]] = (
        MOST_PROBABLE,
        MISALIGNED_IFD_GE_1,
        OVERCONFIDENT_STYLE,
        TEACHER_NOT_ALLOWED,
        UNSCORED,
    )

    def decide_sample(
        self, sample: SampleScores, params: BestCandidateParams, statistics: object, index: int
    ) -> Verdict:
        """Its most probable candidate, or why there is none."""
        return self._decide_one(sample, params)

    def absolute_cuts(self, params: BestCandidateParams) -> list[Cut]:
        """The optional alignment cut (IFD < ifd_max); GRAPE itself has none."""
        return [Cut("ifd", "ifd_max", params.ifd_max)] if params.ifd_max is not None else []

    def _decide_one(self, sample: SampleScores, params: BestCandidateParams) -> Verdict:
        scored = [c for c in sample.candidates if c.has_ifd and not math.isnan(_loss(c))]
        if not scored:
            return unscored_verdict(sample)
        detail: dict[str, Any] = {"nll_response_given_instruction": {c.name: _loss(c) for c in scored}}
        pool = scored
        if params.ifd_max is not None:
            limit = params.ifd_max
            pool = [c for c in pool if c.ifd is not None and c.ifd < limit]
            if not pool:
                return Verdict(sample.sample_key, "rejected", MISALIGNED_IFD_GE_1, None, detail)
        overconfident = [c.name for c in pool if excluded_as_overconfident(c, params.reject_overconfident)]
        if overconfident:
            detail[OVERCONFIDENT_STYLE] = overconfident
            pool = [c for c in pool if c.name not in overconfident]
            if not pool:
                return Verdict(sample.sample_key, "rejected", OVERCONFIDENT_STYLE, None, detail)
        # min() keeps the first of equal values, so record order breaks ties.
        best = min(pool, key=_loss)
        return Verdict(sample.sample_key, "retained", MOST_PROBABLE, best.name, detail)
