"""`frontier_band`: the inverted U. Keep candidates just beyond what the student already does (docs/policies.md).

The frontier score, the band on it and the zones are `service.policies.frontier`'s: a candidate is kept when it
is aligned, feasible and inside the band [`low`, `high`] on the frontier score. A sample keeps its inside
candidate nearest the band's middle (ties: record order, original first); with `reject_overconfident`, inside
refinements that strip the original's hedging are passed over.

Reasons: retained `inside_frontier`; rejected `misaligned_ifd_ge_1` (every scored candidate misaligned),
`overconfident_style` (the only inside candidates strip hedging), `not_feasible` (no aligned candidate is
feasible), `below_frontier` / `beyond_frontier` (the side of the band its nearest feasible candidate is on),
`teacher_not_allowed` (no candidate on the `teachers` allow-list); `unscored`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from service.policies.base import (
    MISALIGNED_IFD_GE_1,
    NOT_FEASIBLE,
    OVERCONFIDENT_STYLE,
    TEACHER_NOT_ALLOWED,
    UNSCORED,
    Cut,
    Policy,
    SampleScores,
    ScoreSource,
    Verdict,
    excluded_as_overconfident,
    unscored_verdict,
)
from service.policies.frontier import FrontierBandParams, FrontierReference, Zone, sample_zones

INSIDE_FRONTIER = "inside_frontier"
BELOW_FRONTIER = "below_frontier"
BEYOND_FRONTIER = "beyond_frontier"


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
        TEACHER_NOT_ALLOWED,
        UNSCORED,
    )

    def statistics(self, source: ScoreSource, params: FrontierBandParams) -> FrontierReference | None:
        """The frontier score's reference over every scored candidate of the job (the allow-list aside)."""
        return source.frontier_reference()

    def decide_sample(
        self, sample: SampleScores, params: FrontierBandParams, statistics: object, index: int
    ) -> Verdict:
        """Its inside candidate nearest the band's middle, or why there is none."""
        assert statistics is None or isinstance(statistics, FrontierReference)
        return self._decide_one(sample, sample_zones(sample, statistics, params), params)

    def band(self, params: FrontierBandParams) -> FrontierBandParams:
        """The band it decided under: its own parameters (the allow-list aside, which places no candidate)."""
        return params.model_copy(update={"teachers": None})

    def absolute_cuts(self, params: FrontierBandParams) -> list[Cut]:
        """The alignment cut (IFD < ifd_max) and the feasibility cut (r-IFD < rifd_max)."""
        return [Cut("ifd", "ifd_max", params.ifd_max), Cut("rifd", "rifd_max", params.rifd_max)]

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
