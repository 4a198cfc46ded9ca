"""The student's frontier, independent of any one policy: the frontier score, the band on it and the zones.

Frontier score of a candidate with L = L(A|Q) (log conditional perplexity) and log IFD = L(A|Q) - L(A):

    frontier_score = (1 - w) * z(L) + w * z(log IFD),   z(x) = (x - median) / (1.4826 * MAD)

with median and MAD taken over every scored candidate of the table (the job's own distribution), so 0 is the
job's typical candidate for this student and one unit is one robust standard deviation. Difficulty comes from
conditional perplexity and IFD (Cherry LLM; Superfiltering), equally weighted by default (`ifd_weight` w 0.5).

Each scored candidate falls in one zone, tested in this order: `misaligned` (IFD >= `ifd_max`, 1.0: Cherry LLM's
cut), `not_feasible` (r-IFD >= `rifd_max`, 1.0: Selective Reflection-Tuning's released code), `below` (score <
`low`: already known, no signal), `beyond` (score > `high`: too hard, harmful), else `inside`. The default band
[-0.8416, 0.8416] reads the RLVR pass-rate band [0.2, 0.8] through p = Phi(-score), i.e. the job's median
candidate is a coin flip for the student.

A policy that decides by the band (`Policy.band`) and the report, which places every decision set's candidates
on it, both read this module.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, model_validator

from service.policies.base import CandidateScore, PolicyParams, SampleScores

Zone = Literal["unscored", "misaligned", "not_feasible", "below", "inside", "beyond"]
ZONES: tuple[Zone, ...] = ("unscored", "misaligned", "not_feasible", "below", "inside", "beyond")

# Phi^-1(0.8): the RLVR band of pass rates [0.2, 0.8] mapped onto the score through p = Phi(-score).
BAND_EDGE = 0.8416
# 1.4826 * MAD estimates the standard deviation of normal data; 1.2533 * mean absolute deviation likewise.
MAD_TO_SD = 1.4826
MEAN_AD_TO_SD = 1.2533


# frontier_band's parameters, and with its defaults the band the report falls back to when a decision set's
# policy selected by none. Zones read every field but `reject_overconfident`, which only says whether a selection
# inside the band passes over refinements that strip the original's hedging. The docstring is the parameters' JSON
# schema description (GET /v1/policies).
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


def zone_of(candidate: CandidateScore, score: float | None, band: FrontierBandParams) -> Zone:
    """Where a candidate falls relative to the student's frontier under `band`."""
    if score is None or candidate.ifd is None or candidate.rifd is None:
        return "unscored"
    if candidate.ifd >= band.ifd_max:
        return "misaligned"
    if candidate.rifd >= band.rifd_max:
        return "not_feasible"
    if score < band.low:
        return "below"
    if score > band.high:
        return "beyond"
    return "inside"


def frontier_zones(
    samples: Sequence[SampleScores], band: FrontierBandParams, table: Sequence[SampleScores] | None = None
) -> list[list[tuple[float | None, Zone]]]:
    """Per sample, per candidate (input order): the frontier score and the zone under `band`, the score standardised
    against `table`'s candidates (default: `samples`' own)."""
    reference = FrontierReference.of(samples if table is None else table)
    result: list[list[tuple[float | None, Zone]]] = []
    for sample in samples:
        row: list[tuple[float | None, Zone]] = []
        for candidate in sample.candidates:
            score = reference.score(candidate, band.ifd_weight) if reference is not None else None
            row.append((score, zone_of(candidate, score, band)))
        result.append(row)
    return result
