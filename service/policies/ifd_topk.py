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
from array import array
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
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
    ScoreSource,
    Verdict,
    excluded_as_overconfident,
    narrowed_samples,
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

    def statistics(self, source: ScoreSource, params: IfdTopKParams) -> IfdRanks:
        """Every sample's rank by its best aligned candidate's IFD, from one streaming pass over the job."""
        keep = math.ceil(source.sample_count() * params.k_percent / 100)
        indices = array("q")
        values = array("d")
        for index, sample in narrowed_samples(source, params, hedging=self.reads_hedging(params)):
            picked = _pick(sample, params)
            if not isinstance(picked, Verdict):
                indices.append(index)
                values.append(_value(picked[0], params))
        # Rank by descending value, ties by input order: a stable sort of the negated values, which are finite.
        order = np.argsort(-np.asarray(values, dtype=np.float64), kind="stable")
        ranks = np.zeros(source.sample_count(), dtype=np.int64)
        ranks[np.asarray(indices, dtype=np.int64)[order]] = np.arange(1, len(order) + 1)
        return IfdRanks(keep, ranks)

    def decide_sample(self, sample: SampleScores, params: IfdTopKParams, statistics: object, index: int) -> Verdict:
        """Retained when its best aligned candidate ranks within the top k% of all the job's samples."""
        assert isinstance(statistics, IfdRanks)
        picked = _pick(sample, params)
        if isinstance(picked, Verdict):
            return picked
        chosen, passed_over = picked
        rank = int(statistics.ranks[index])
        keep = statistics.keep
        evidence: dict[str, Any] = {"rank": rank, "keep": keep, str(params.score): _value(chosen, params)}
        if passed_over:
            evidence[OVERCONFIDENT_STYLE] = passed_over
        if rank <= keep:
            return Verdict(sample.sample_key, "retained", TOP_K_IFD, chosen.name, evidence)
        return Verdict(sample.sample_key, "rejected", BELOW_TOP_K, chosen.name, evidence)


@dataclass(frozen=True, slots=True)
class IfdRanks:
    """How many samples to keep, and each sample's rank (1 = highest IFD; 0: it has no aligned candidate)."""

    keep: int
    ranks: np.ndarray


def _value(candidate: CandidateScore, params: IfdTopKParams) -> float:
    score = candidate.ifd if params.score == "ifd" else candidate.ifd_loss_ratio
    return score if score is not None and math.isfinite(score) else math.nan


def _pick(sample: SampleScores, params: IfdTopKParams) -> Verdict | tuple[CandidateScore, list[str]]:
    """The sample's best aligned candidate and the refinements passed over as overconfident, or its verdict when
    it has none to rank."""
    pool = [sample.original] if params.candidates == "original" else list(sample.candidates)
    scored = [c for c in pool if c.has_ifd and not math.isnan(_value(c, params))]
    if not scored:
        return unscored_verdict(sample)
    aligned = [c for c in scored if c.ifd is not None and c.ifd < 1.0]
    detail: dict[str, Any] = {str(params.score): {c.name: _value(c, params) for c in scored}}
    if not aligned:
        return Verdict(sample.sample_key, "rejected", MISALIGNED_IFD_GE_1, None, detail)
    overconfident = [c.name for c in aligned if excluded_as_overconfident(c, params.reject_overconfident)]
    aligned = [c for c in aligned if c.name not in overconfident]
    if not aligned:
        detail[OVERCONFIDENT_STYLE] = overconfident
        return Verdict(sample.sample_key, "rejected", OVERCONFIDENT_STYLE, None, detail)
    # max() keeps the first of equal values, so record order breaks ties.
    return max(aligned, key=lambda c: _value(c, params)), overconfident
