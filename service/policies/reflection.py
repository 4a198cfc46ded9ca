"""`reflection`: Selective Reflection-Tuning's student selection (Li et al., ACL Findings 2024).

Among the original and each teacher's refinement the student keeps a candidate only if it is aligned and
feasible for it: IFD < `ifd_max` and r-IFD < `rifd_max` (1.0 and 1.0 in the released code). A refinement
replaces the original when it beats it under the paper's two rules: a rewritten instruction must make the
answer *harder* for the student (higher IFD: the instruction carries more), and the response must be *easier*
to trace back to the instruction (lower r-IFD: more feasible for this student). Among refinements that beat
the original the one with the lowest r-IFD wins (ties: record order). When the original is not eligible, any
eligible refinement beats it.

Reasons: retained `refinement_selected`, `original_kept` (no refinements), `refinement_rejected_kept_original`;
rejected `misaligned_ifd_ge_1` (every scored candidate has IFD >= ifd_max), `not_feasible` (the aligned ones
all have r-IFD >= rifd_max); `unscored` when no candidate could be scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from pydantic import Field

from service.policies.base import (
    MISALIGNED_IFD_GE_1,
    NOT_FEASIBLE,
    UNSCORED,
    CandidateScore,
    Policy,
    PolicyParams,
    SampleScores,
    Verdict,
    unscored_verdict,
)

REFINEMENT_SELECTED = "refinement_selected"
ORIGINAL_KEPT = "original_kept"
REFINEMENT_REJECTED_KEPT_ORIGINAL = "refinement_rejected_kept_original"


class ReflectionParams(PolicyParams):
    """Thresholds of the released code's feasibility filter."""

    ifd_max: float = Field(default=1.0, gt=0)
    rifd_max: float = Field(default=1.0, gt=0)


def _value(score: float | None) -> float:
    # Only scored candidates reach the comparisons; inf keeps a missing score from ever winning.
    return score if score is not None else float("inf")


def _beats(refinement: CandidateScore, original: CandidateScore, original_eligible: bool) -> bool:
    if not original_eligible:
        return True
    if refinement.rewrote_instruction and _value(refinement.ifd) <= _value(original.ifd):
        return False
    return _value(refinement.rifd) < _value(original.rifd)


class ReflectionPolicy(Policy[ReflectionParams]):
    """Selective Reflection-Tuning: per sample, the student picks the original or one refinement."""

    name: ClassVar[str] = "reflection"
    version: ClassVar[str] = "1"
    params_model = ReflectionParams
    reason_codes: ClassVar[tuple[str, ...]] = (
        REFINEMENT_SELECTED,
        ORIGINAL_KEPT,
        REFINEMENT_REJECTED_KEPT_ORIGINAL,
        MISALIGNED_IFD_GE_1,
        NOT_FEASIBLE,
        UNSCORED,
    )

    def decide(self, samples: Sequence[SampleScores], params: ReflectionParams) -> list[Verdict]:
        """One verdict per sample under the Reflection-Tuning selection rule."""
        return [self._decide_one(sample, params) for sample in samples]

    def _decide_one(self, sample: SampleScores, params: ReflectionParams) -> Verdict:
        scored = [c for c in sample.candidates if c.scored]
        if not scored:
            return unscored_verdict(sample)

        def eligible(candidate: CandidateScore) -> bool:
            return _value(candidate.ifd) < params.ifd_max and _value(candidate.rifd) < params.rifd_max

        original = sample.original
        original_eligible = original.scored and eligible(original)
        winners = [
            c for c in scored if c.teacher is not None and eligible(c) and _beats(c, original, original_eligible)
        ]
        detail = {"eligible": [c.name for c in scored if eligible(c)]}
        if winners:
            best = min(winners, key=lambda c: _value(c.rifd))
            return Verdict(sample.sample_key, "retained", REFINEMENT_SELECTED, best.name, detail)
        if original_eligible:
            has_refinements = len(sample.candidates) > 1
            reason = REFINEMENT_REJECTED_KEPT_ORIGINAL if has_refinements else ORIGINAL_KEPT
            return Verdict(sample.sample_key, "retained", reason, original.name, detail)
        if all(_value(c.ifd) >= params.ifd_max for c in scored):
            return Verdict(sample.sample_key, "rejected", MISALIGNED_IFD_GE_1, None, detail)
        return Verdict(sample.sample_key, "rejected", NOT_FEASIBLE, None, detail)
