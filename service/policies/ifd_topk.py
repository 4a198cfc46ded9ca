"""`ifd_topk`: Cherry LLM's selection (Li et al., "From Quantity to Quality", NAACL 2024).

Drop candidates with IFD >= 1 (the instruction does not help: misaligned) or no score, take each sample's
highest-IFD remaining candidate (the hardest one that still follows its instruction), rank samples by it and
keep the top `k_percent` of *all* samples (rounded up; under an allow-list, samples with no allowed candidate
count too), as the paper keeps 5-15% of Alpaca. Ties rank by
input order so decisions are reproducible. `score` picks the PPL-ratio IFD (`ifd`) or the paper's loss-ratio
form (`ifd_loss_ratio`); the IFD < 1 cut is the same for both. With `reject_overconfident`, refinements that
strip the original's hedging (core.confidence) leave the pool before ranking.

Reasons: retained `top_k_ifd`; rejected `misaligned_ifd_ge_1`, `overconfident_style` (the only aligned
candidates strip hedging), `below_top_k`, `teacher_not_allowed` (no candidate on the `teachers` allow-list);
`unscored`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field

from service.policies.base import (
    MISALIGNED_IFD_GE_1,
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

TOP_K_IFD = "top_k_ifd"
BELOW_TOP_K = "below_top_k"


class IfdTopKParams(PolicyParams):
    """How many samples to keep and by which IFD form."""

    k_percent: float = Field(default=10.0, gt=0, le=100)
    score: Literal["ifd", "ifd_loss_ratio"] = "ifd"
    # `original` ranks only the sample's own response, as Cherry LLM does on a single-answer dataset.
    candidates: Literal["all", "original"] = "all"
    reject_overconfident: bool = False


class IfdTopKPolicy(Policy[IfdTopKParams]):
    """Cherry LLM: drop IFD >= 1, keep the top k% of samples by IFD."""

    name: ClassVar[str] = "ifd_topk"
    version: ClassVar[str] = "1"
    summary: ClassVar[str] = "Cherry LLM: drop IFD >= 1, rank samples by their highest IFD, keep the top k% of samples"
    params_model = IfdTopKParams
    reason_codes: ClassVar[tuple[str, ...]] = (
        TOP_K_IFD,
        MISALIGNED_IFD_GE_1,
        OVERCONFIDENT_STYLE,
        BELOW_TOP_K,
        TEACHER_NOT_ALLOWED,
        UNSCORED,
    )

    def keeps_fixed_share(self, params: IfdTopKParams) -> bool:
        """True: it keeps its k_percent by construction, so a small share is what was asked for."""
        return True

    def decide(
        self, samples: Sequence[SampleScores], params: IfdTopKParams, table: Sequence[SampleScores]
    ) -> list[Verdict]:
        """Rank every sample's best aligned candidate by IFD and keep the top k% of all the job's samples."""
        keep = math.ceil(len(table) * params.k_percent / 100)

        def value(candidate: CandidateScore) -> float:
            score = candidate.ifd if params.score == "ifd" else candidate.ifd_loss_ratio
            return score if score is not None and math.isfinite(score) else math.nan

        best: dict[int, CandidateScore] = {}
        passed_over: dict[int, list[str]] = {}
        verdicts: list[Verdict | None] = []
        for index, sample in enumerate(samples):
            pool = [sample.original] if params.candidates == "original" else list(sample.candidates)
            scored = [c for c in pool if c.has_ifd and not math.isnan(value(c))]
            if not scored:
                verdicts.append(unscored_verdict(sample))
                continue
            aligned = [c for c in scored if c.ifd is not None and c.ifd < 1.0]
            detail: dict[str, Any] = {str(params.score): {c.name: value(c) for c in scored}}
            if not aligned:
                verdicts.append(Verdict(sample.sample_key, "rejected", MISALIGNED_IFD_GE_1, None, detail))
                continue
            overconfident = [c.name for c in aligned if excluded_as_overconfident(c, params.reject_overconfident)]
            aligned = [c for c in aligned if c.name not in overconfident]
            if not aligned:
                detail[OVERCONFIDENT_STYLE] = overconfident
                verdicts.append(Verdict(sample.sample_key, "rejected", OVERCONFIDENT_STYLE, None, detail))
                continue
            # max() keeps the first of equal values, so record order breaks ties.
            best[index] = max(aligned, key=value)
            if overconfident:
                passed_over[index] = overconfident
            verdicts.append(None)

        ranked = sorted(best, key=lambda index: (-value(best[index]), index))
        rank_of = {index: rank for rank, index in enumerate(ranked, start=1)}
        result: list[Verdict] = []
        for index, (sample, verdict) in enumerate(zip(samples, verdicts, strict=True)):
            if verdict is not None:
                result.append(verdict)
                continue
            chosen = best[index]
            rank = rank_of[index]
            evidence: dict[str, Any] = {"rank": rank, "keep": keep, str(params.score): value(chosen)}
            if index in passed_over:
                evidence[OVERCONFIDENT_STYLE] = passed_over[index]
            if rank <= keep:
                result.append(Verdict(sample.sample_key, "retained", TOP_K_IFD, chosen.name, evidence))
            else:
                result.append(Verdict(sample.sample_key, "rejected", BELOW_TOP_K, chosen.name, evidence))
        return result
