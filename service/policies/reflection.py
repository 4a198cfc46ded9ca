"""`reflection`: Selective Reflection-Tuning's student selection (Li et al., ACL Findings 2024), two variants.

A refinement replaces the original when it beats it under the paper's two rules: a rewritten instruction must
make the answer *harder* for the student (higher IFD: the instruction carries more), and the response must be
*easier* to trace back to the instruction (lower r-IFD: more feasible for this student); the pairwise rule lives
in `service.policies.rules`, which the report shares. Among refinements that beat the original the one with the
lowest r-IFD wins (ties: record order).

- `variant: "code"` (default), the released code: a candidate is eligible only if it is aligned and feasible,
  IFD < `ifd_max` and r-IFD < `rifd_max` (1.0 and 1.0 there); a sample with no eligible candidate is rejected,
  and when the original is not eligible any eligible refinement beats it.
- `variant: "paper"`, the paper's rule alone: no absolute thresholds, the student only chooses between the
  original and its refinements, so a scored sample is always kept (`ifd_max`/`rifd_max` must be left unset).

With `reject_overconfident`, a refinement that strips the original's hedging (core.confidence) is not
eligible; those passed over are listed under `detail["overconfident_style"]`.

Reasons: retained `refinement_selected`, `original_kept` (no refinements), `refinement_rejected_kept_original`;
rejected `misaligned_ifd_ge_1` (every scored candidate has IFD >= ifd_max), `overconfident_style` (the only
candidates that would have been eligible strip hedging), `not_feasible` (the aligned ones all have r-IFD >=
rifd_max), `teacher_not_allowed` (no candidate on the `teachers` allow-list); `unscored` when no candidate could
be scored.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from service.policies.base import (
    MISALIGNED_IFD_GE_1,
    NOT_FEASIBLE,
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
from service.policies.rules import refinement_wins, score_value

REFINEMENT_SELECTED = "refinement_selected"
ORIGINAL_KEPT = "original_kept"
REFINEMENT_REJECTED_KEPT_ORIGINAL = "refinement_rejected_kept_original"
# The released code's thresholds (IFD < 1: the instruction helps; r-IFD < 1: the response is feasible).
CODE_IFD_MAX = 1.0
CODE_RIFD_MAX = 1.0


class ReflectionParams(PolicyParams):
    """Which variant of the rule, the released code's thresholds, and the confidence filter."""

    variant: Literal["code", "paper"] = "code"
    ifd_max: float | None = Field(default=None, gt=0, description="code variant only; default 1.0")
    rifd_max: float | None = Field(default=None, gt=0, description="code variant only; default 1.0")
    reject_overconfident: bool = False

    @model_validator(mode="before")
    @classmethod
    def _variant_thresholds(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw
        if raw.get("variant", "code") == "paper":
            given = [name for name in ("ifd_max", "rifd_max") if raw.get(name) is not None]
            if given:
                raise ValueError(f"the paper variant has no thresholds: drop {', '.join(given)} or use variant 'code'")
            return raw
        return {"ifd_max": CODE_IFD_MAX, "rifd_max": CODE_RIFD_MAX, **{k: v for k, v in raw.items() if v is not None}}


def _beats(refinement: CandidateScore, original: CandidateScore, original_eligible: bool) -> bool:
    # An original that is not eligible itself loses to any eligible refinement (the released code).
    return not original_eligible or refinement_wins(refinement, original)


class ReflectionPolicy(Policy[ReflectionParams]):
    """Selective Reflection-Tuning: per sample, the student picks the original or one refinement."""

    name: ClassVar[str] = "reflection"
    version: ClassVar[str] = "1"
    summary: ClassVar[str] = (
        "Selective Reflection-Tuning: a refinement replaces the original when it has lower r-IFD (and higher IFD "
        "if it rewrote the instruction); variant 'code' also requires IFD < 1 and r-IFD < 1, 'paper' does not"
    )
    params_model = ReflectionParams
    reason_codes: ClassVar[tuple[str, ...]] = (
        REFINEMENT_SELECTED,
        ORIGINAL_KEPT,
        REFINEMENT_REJECTED_KEPT_ORIGINAL,
        MISALIGNED_IFD_GE_1,
        OVERCONFIDENT_STYLE,
        NOT_FEASIBLE,
        TEACHER_NOT_ALLOWED,
        UNSCORED,
    )

    def decide_sample(self, sample: SampleScores, params: ReflectionParams, statistics: object, index: int) -> Verdict:
        """The original or one refinement, under the Reflection-Tuning selection rule."""
        return self._decide_one(sample, params)

    def absolute_cuts(self, params: ReflectionParams) -> list[Cut]:
        """The code variant's alignment and feasibility cuts (the paper variant has none)."""
        cuts = [Cut("ifd", "ifd_max", params.ifd_max)] if params.ifd_max is not None else []
        return cuts + ([Cut("rifd", "rifd_max", params.rifd_max)] if params.rifd_max is not None else [])

    def _decide_one(self, sample: SampleScores, params: ReflectionParams) -> Verdict:
        scored = [c for c in sample.candidates if c.scored]
        if not scored:
            return unscored_verdict(sample)
        ifd_max = params.ifd_max if params.ifd_max is not None else float("inf")
        rifd_max = params.rifd_max if params.rifd_max is not None else float("inf")
        # Within the thresholds (scored ones only: an unscored candidate is never eligible).
        within = [c for c in scored if score_value(c.ifd) < ifd_max and score_value(c.rifd) < rifd_max]
        reject = params.reject_overconfident
        overconfident = [c.name for c in within if excluded_as_overconfident(c, reject)]
        eligible = [c for c in within if c.name not in overconfident] if overconfident else within

        original = sample.original
        original_eligible = any(c is original for c in eligible)
        winners = [c for c in eligible if c.teacher is not None and _beats(c, original, original_eligible)]
        detail: dict[str, Any] = {"eligible": [c.name for c in eligible]}
        if overconfident:
            detail[OVERCONFIDENT_STYLE] = overconfident
        if winners:
            best = min(winners, key=lambda c: score_value(c.rifd))
            return Verdict(sample.sample_key, "retained", REFINEMENT_SELECTED, best.name, detail)
        if original_eligible:
            has_refinements = len(sample.candidates) > 1
            reason = REFINEMENT_REJECTED_KEPT_ORIGINAL if has_refinements else ORIGINAL_KEPT
            return Verdict(sample.sample_key, "retained", reason, original.name, detail)
        if all(score_value(c.ifd) >= ifd_max for c in scored):
            return Verdict(sample.sample_key, "rejected", MISALIGNED_IFD_GE_1, None, detail)
        if overconfident:
            return Verdict(sample.sample_key, "rejected", OVERCONFIDENT_STYLE, None, detail)
        return Verdict(sample.sample_key, "rejected", NOT_FEASIBLE, None, detail)
