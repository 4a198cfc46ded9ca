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
on it, both read this module. The reference needs only two numbers per scored candidate: a stored job's is built
from those columns alone (`DifficultyPoints`), never from the whole table in memory.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
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


def _median(values: np.ndarray) -> float:
    """The median as statistics.median gives it (the middle value, or the mean of the two middle ones); reorders
    `values` in place (a partition, no copy: a million-sample job's column is 24 MB)."""
    middle = len(values) // 2
    if len(values) % 2:
        values.partition(middle)
        return float(values[middle])
    values.partition((middle - 1, middle))
    return float((values[middle - 1] + values[middle]) / 2)


def _robust_location_scale(values: np.ndarray) -> tuple[float, float]:
    """Median and a robust standard deviation (MAD, else mean absolute deviation, else 1 when all are equal).

    Overwrites `values` with the absolute deviations, so the column is never copied.
    """
    median = _median(values)
    np.subtract(values, median, out=values)
    deviations = np.abs(values, out=values)
    scale = MAD_TO_SD * _median(deviations)
    if scale <= 0:
        # math.fsum, as statistics.fmean sums: the exact mean, whatever the order.
        scale = MEAN_AD_TO_SD * (math.fsum(deviations.tolist()) / len(deviations))
    return median, scale if scale > 0 else 1.0


def difficulty_point(
    status: str, ifd: float | None, rifd: float | None, loss: float | None
) -> tuple[float, float] | None:
    """A candidate's (L(A|Q), log IFD) from its raw columns, or None when it has no place on the frontier."""
    if status != "scored" or ifd is None or rifd is None or loss is None:
        return None
    if not (math.isfinite(ifd) and math.isfinite(rifd) and math.isfinite(loss)) or ifd <= 0:
        return None
    return loss, math.log(ifd)


def _difficulty(candidate: CandidateScore) -> tuple[float, float] | None:
    return difficulty_point(candidate.status, candidate.ifd, candidate.rifd, candidate.nll_response_given_instruction)


class DifficultyPoints:
    """The frontier's two columns, L(A|Q) and log IFD, of every scored candidate: 16 bytes per candidate."""

    def __init__(self) -> None:
        self.loss = array("d")
        self.log_ifd = array("d")

    def add(self, status: str, ifd: float | None, rifd: float | None, loss: float | None) -> None:
        """Add one candidate's point from its raw columns (ignored when it has none)."""
        point = difficulty_point(status, ifd, rifd, loss)
        if point is not None:
            self.loss.append(point[0])
            self.log_ifd.append(point[1])

    def add_scored(self, ifd: np.ndarray, rifd: np.ndarray, loss: np.ndarray) -> None:
        """Add the points of scored candidates from their non-null columns, many at once (as `add` would)."""
        keep = np.isfinite(ifd) & np.isfinite(rifd) & np.isfinite(loss) & (ifd > 0)
        self.loss.extend(loss[keep].tolist())
        # math.log, not np.log: the same log as `add` to the last bit, whatever numpy's SIMD build does.
        self.log_ifd.extend([math.log(value) for value in ifd[keep].tolist()])

    def reference(self) -> FrontierReference | None:
        """The reference of the points added (None when there is none); consumes them."""
        loss, log_ifd = self.loss, self.log_ifd
        self.loss, self.log_ifd = array("d"), array("d")
        # Views on the arrays' own buffers, reordered in place: the columns are never copied.
        return FrontierReference.of_columns(
            np.frombuffer(loss, dtype=np.float64), np.frombuffer(log_ifd, dtype=np.float64)
        )


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
        points = DifficultyPoints()
        for sample in samples:
            for c in sample.candidates:
                points.add(c.status, c.ifd, c.rifd, c.nll_response_given_instruction)
        return points.reference()

    @classmethod
    def of_columns(cls, loss: np.ndarray, log_ifd: np.ndarray) -> FrontierReference | None:
        """The reference of the candidates whose L(A|Q) and log IFD these are (None when there is none); the
        columns are overwritten (reordered, then replaced by their deviations)."""
        if not len(loss):
            return None
        loss_location = _robust_location_scale(loss)
        log_ifd_location = _robust_location_scale(log_ifd)
        return cls(loss_location[0], loss_location[1], log_ifd_location[0], log_ifd_location[1])

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


def sample_zones(
    sample: SampleScores, reference: FrontierReference | None, band: FrontierBandParams
) -> list[tuple[float | None, Zone]]:
    """Per candidate of one sample (input order): the frontier score against `reference` and the zone under `band`."""
    row: list[tuple[float | None, Zone]] = []
    for candidate in sample.candidates:
        score = reference.score(candidate, band.ifd_weight) if reference is not None else None
        row.append((score, zone_of(candidate, score, band)))
    return row


def frontier_zones(
    samples: Sequence[SampleScores], band: FrontierBandParams, table: Sequence[SampleScores] | None = None
) -> list[list[tuple[float | None, Zone]]]:
    """Per sample, per candidate (input order): the frontier score and the zone under `band`, the score standardised
    against `table`'s candidates (default: `samples`' own)."""
    reference = FrontierReference.of(samples if table is None else table)
    return [sample_zones(sample, reference, band) for sample in samples]
