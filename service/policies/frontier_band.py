"""`frontier_band`: the inverted U. Keep candidates just beyond what the student already does (docs/policies.md).

Frontier score of a candidate with L = L(A|Q) (log conditional perplexity) and log IFD = L(A|Q) - L(A):

    frontier_score = (1 - w) * z(L) + w * z(log IFD),   z(x) = (x - median) / (1.4826 * MAD)

with median and MAD taken over every scored candidate of the table (the job's own distribution), so 0 is the
job's typical candidate for this student and one unit is one robust standard deviation. Difficulty comes from
conditional perplexity and IFD (Cherry LLM; Superfiltering), equally weighted by default (`ifd_weight` w 0.5).

Each scored candidate falls in one zone, tested in this order: `misaligned` (IFD >= `ifd_max`, 1.0: Cherry LLM's
cut), `not_feasible` (r-IFD >= `rifd_max`, 1.0: Selective Reflection-Tuning's released code), `below` (score <
`low`: already known, no signal), `beyond` (score > `high`: too hard, harmful), else `inside`. The default band
[-0.8416, 0.8416] reads the RLVR pass-rate band [0.2, 0.8] through p = Phi(-score), i.e. the job's median
candidate is a coin flip for the student. A sample keeps its inside candidate nearest the band's middle (ties:
record order, original first); with `reject_overconfident`, inside refinements that strip the original's
hedging are passed over.

Reasons: retained `inside_frontier`; rejected `misaligned_ifd_ge_1` (every scored candidate misaligned),
`overconfident_style` (the only inside candidates strip hedging), `not_feasible` (no aligned candidate is
feasible), `below_frontier` / `beyond_frontier` (the side of the band its nearest feasible candidate is on);
`unscored`.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from service.policies.base import (
    MISALIGNED_IFD_GE_1,
    NOT_FEASIBLE,
    OVERCONFIDENT_STYLE,
    UNSCORED,
    CandidateScore,
    Policy,
    PolicyParams,
    SampleScores,
    Verdict,
    excluded_as_overconfident,
    unscored_verdict,
)

INSIDE_FRONTIER = "inside_frontier"
BELOW_FRONTIER = "below_frontier"
BEYOND_FRONTIER = "beyond_frontier"

Zone = Literal["unscored", "misaligned", "not_feasible", "below", "inside", "beyond"]
ZONES: tuple[Zone, ...] = ("unscored", "misaligned", "not_feasible", "below", "inside", "beyond")

# Phi^-1(0.8): the RLVR band of pass rates [0.2, 0.8] mapped onto the score through p = Phi(-score).
BAND_EDGE = 0.8416
# 1.4826 * MAD estimates the standard deviation of normal data; 1.2533 * mean absolute deviation likewise.
MAD_TO_SD = 1.4826
MEAN_AD_TO_SD = 1.2533


class FrontierBandParams(PolicyParams):
    """The band on the frontier score, the difficulty mix, and the alignment, feasibility and confidence cuts."""

    low: float = Field(default=-BAND_EDGE, description="frontier score below this: below_frontier")
    high: float = Field(default=BAND_EDGE, description="frontier score above this: beyond_frontier")
    ifd_weight: float = Field(default=0.5, ge=0, le=1, description="0: conditional perplexity only, 1: IFD only")
    ifd_max: float = Field(default=1.0, gt=0, description="IFD at or above this: misaligned")
    rifd_max: float = Field(default=1.0, gt=0, description="r-IFD at or above this: not feasible")
    reject_overconfident: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> FrontierBandParams:
        if self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self


def _robust_location_scale(values: Sequence[float]) -> tuple[float, float]:
    """Median and a robust standard deviation (MAD, else mean absolute deviation, else 1 when all are equal)."""
    median = statistics.median(values)
    deviations = [abs(value - median) for value in values]
    scale = MAD_TO_SD * statistics.median(deviations)
    if scale <= 0:
        scale = MEAN_AD_TO_SD * statistics.fmean(deviations)
    return median, scale if scale > 0 else 1.0


def _difficulty(candidate: CandidateScore) -> tuple[float, float] | None:
    loss, ifd = candidate.nll_response_given_instruction, candidate.ifd
    if not candidate.scored or loss is None or ifd is None or ifd <= 0 or not math.isfinite(loss):
        return None
    return loss, math.log(ifd)


@dataclass(frozen=True, slots=True)
class FrontierReference:
    """Where the job's candidates sit: robust location and scale of L(A|Q) and log IFD."""

    loss_median: float
    loss_scale: float
    log_ifd_median: float
    log_ifd_scale: float

    @classmethod
    def of(cls, samples: Iterable[SampleScores]) -> FrontierReference | None:
        """The reference of every scored candidate in `samples` (None when there is none)."""
        points = [p for sample in samples for c in sample.candidates if (p := _difficulty(c)) is not None]
        if not points:
            return None
        loss = _robust_location_scale([p[0] for p in points])
        log_ifd = _robust_location_scale([p[1] for p in points])
        return cls(loss[0], loss[1], log_ifd[0], log_ifd[1])

    def score(self, candidate: CandidateScore, ifd_weight: float) -> float | None:
        """The candidate's frontier score, or None when it is not scored."""
        point = _difficulty(candidate)
        if point is None:
            return None
        z_loss = (point[0] - self.loss_median) / self.loss_scale
        z_ifd = (point[1] - self.log_ifd_median) / self.log_ifd_scale
        return (1 - ifd_weight) * z_loss + ifd_weight * z_ifd


def zone_of(candidate: CandidateScore, score: float | None, params: FrontierBandParams) -> Zone:
    """Where a candidate falls relative to the student's frontier under `params`."""
    if score is None or candidate.ifd is None or candidate.rifd is None:
        return "unscored"
    if candidate.ifd >= params.ifd_max:
        return "misaligned"
    if candidate.rifd >= params.rifd_max:
        return "not_feasible"
    if score < params.low:
        return "below"
    if score > params.high:
        return "beyond"
    return "inside"


def frontier_zones(
    samples: Sequence[SampleScores], params: FrontierBandParams
) -> list[list[tuple[float | None, Zone]]]:
    """Per sample, per candidate (input order): the frontier score and the zone under `params`."""
    reference = FrontierReference.of(samples)
    result: list[list[tuple[float | None, Zone]]] = []
    for sample in samples:
        row: list[tuple[float | None, Zone]] = []
        for candidate in sample.candidates:
            score = reference.score(candidate, params.ifd_weight) if reference is not None else None
            row.append((score, zone_of(candidate, score, params)))
        result.append(row)
    return result


class FrontierBandPolicy(Policy[FrontierBandParams]):
    """The inverted U: keep a candidate whose frontier score lies inside the band and that stays feasible."""

    name: ClassVar[str] = "frontier_band"
    version: ClassVar[str] = "1"
    summary: ClassVar[str] = (
        "The inverted U: keep the candidate whose frontier score (robust z of L(A|Q) and log IFD over the job) "
        "lies inside [low, high], aligned (IFD < 1) and feasible (r-IFD < 1)"
    )
    params_model = FrontierBandParams
    reason_codes: ClassVar[tuple[str, ...]] = (
        INSIDE_FRONTIER,
        MISALIGNED_IFD_GE_1,
        OVERCONFIDENT_STYLE,
        NOT_FEASIBLE,
        BELOW_FRONTIER,
        BEYOND_FRONTIER,
        UNSCORED,
    )

    def decide(self, samples: Sequence[SampleScores], params: FrontierBandParams) -> list[Verdict]:
        """One verdict per sample: its inside candidate nearest the band's middle, or why there is none."""
        zones = frontier_zones(samples, params)
        return [self._decide_one(sample, row, params) for sample, row in zip(samples, zones, strict=True)]

    def _decide_one(
        self, sample: SampleScores, row: list[tuple[float | None, Zone]], params: FrontierBandParams
    ) -> Verdict:
        scored = [(c, s, z) for c, (s, z) in zip(sample.candidates, row, strict=True) if s is not None]
        if not scored:
            return unscored_verdict(sample)
        detail: dict[str, Any] = {
            "frontier_score": {c.name: s for c, s, _ in scored},
            "zone": {c.name: z for c, _, z in scored},
        }
        inside = [(c, s) for c, s, z in scored if z == "inside" and s is not None]
        overconfident = [c.name for c, _ in inside if excluded_as_overconfident(c, params.reject_overconfident)]
        if overconfident:
            detail[OVERCONFIDENT_STYLE] = overconfident
        inside = [(c, s) for c, s in inside if c.name not in overconfident]
        if inside:
            middle = (params.low + params.high) / 2
            best = min(inside, key=lambda pair: abs(pair[1] - middle))[0]
            return Verdict(sample.sample_key, "retained", INSIDE_FRONTIER, best.name, detail)
        if all(z == "misaligned" for _, _, z in scored):
            return Verdict(sample.sample_key, "rejected", MISALIGNED_IFD_GE_1, None, detail)
        if overconfident:
            return Verdict(sample.sample_key, "rejected", OVERCONFIDENT_STYLE, None, detail)
        outside = [(z, s) for _, s, z in scored if z in ("below", "beyond") and s is not None]
        if not outside:
            return Verdict(sample.sample_key, "rejected", NOT_FEASIBLE, None, detail)
        zone, _ = min(outside, key=lambda pair: params.low - pair[1] if pair[0] == "below" else pair[1] - params.high)
        reason = BELOW_FRONTIER if zone == "below" else BEYOND_FRONTIER
        return Verdict(sample.sample_key, "rejected", reason, None, detail)
