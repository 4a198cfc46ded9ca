"""`frontier_band` on hand-built score tables: the frontier score, every zone and every reason code."""

from __future__ import annotations

import math
from typing import Any

import pytest

from service.policies import PolicyError, resolve_params
from service.policies.base import TEACHER_NOT_ALLOWED
from service.policies.frontier import FrontierReference, frontier_zones
from service.policies.frontier_band import FrontierBandPolicy
from tests.service.policies.tables import cand, sample

# With ifd_weight 0 the score is the robust z of L(A|Q) alone. The 17 scored L values below have median 3.0
# and MAD 0.5, so one unit is 1.4826 * 0.5 = 0.7413 nats: 2.5 and 3.5 sit at -/+0.674 (inside the default
# band of +/-0.8416), 2.0 and 4.0 at -/+1.349 (below / beyond).
TABLE = [
    sample("inside", cand("original", 0.8, 0.9, nll=3.0), cand("far", 0.8, 0.9, nll=20.0)),
    sample("below", cand("original", 0.5, 0.9, nll=0.5)),
    sample("beyond", cand("original", 0.9, 0.9, nll=20.0), cand("far", 0.9, 0.9, nll=15.0)),
    sample("misaligned", cand("original", 1.2, 0.9, nll=3.0), cand("near", 1.5, 0.5, nll=3.0)),
    sample("infeasible", cand("original", 0.8, 1.3, nll=3.0), cand("near", 1.1, 0.5, nll=3.0)),
    sample("stripped", cand("original", 0.8, 1.2, nll=3.0), cand("terse", 0.7, 0.5, nll=3.0, overconfident=True)),
    sample("nearest", cand("original", 0.8, 0.9, nll=1.0), cand("near", 0.8, 0.9, nll=4.0)),
    sample(
        "tie",
        cand("original", 0.8, 0.9, nll=2.0),
        cand("a", 0.8, 0.9, nll=4.0),
        cand("b", 0.8, 0.9, nll=2.5),
        cand("c", 0.8, 0.9, nll=3.5),
    ),
    sample("none", cand("original", None, None), cand("near", None, None)),
]


def decide(**params: Any) -> list[tuple[str, str, str, str | None]]:
    verdicts = FrontierBandPolicy().decide_raw(TABLE, {"ifd_weight": 0.0, **params})
    return [(v.sample_key, v.decision, v.reason, v.chosen_candidate) for v in verdicts]


def test_frontier_band_reaches_every_reason_code() -> None:
    got = decide(reject_overconfident=True)
    assert got == [
        ("inside", "retained", "inside_frontier", "original"),
        ("below", "rejected", "below_frontier", None),
        ("beyond", "rejected", "beyond_frontier", None),
        ("misaligned", "rejected", "misaligned_ifd_ge_1", None),
        ("infeasible", "rejected", "not_feasible", None),
        ("stripped", "rejected", "overconfident_style", None),
        # 1.0 is 1.86 below the band, 4.0 only 0.51 beyond it: the nearest side names the reason.
        ("nearest", "rejected", "beyond_frontier", None),
        # 2.5 and 3.5 are equally near the middle: record order picks `b`.
        ("tie", "retained", "inside_frontier", "b"),
        ("none", "unscored", "unscored", None),
    ]
    # The allow-list's `teacher_not_allowed` is reached for every policy in test_allow_list.py.
    assert {reason for _, _, reason, _ in got} == set(FrontierBandPolicy.reason_codes) - {TEACHER_NOT_ALLOWED}


def test_frontier_band_detail_and_zones() -> None:
    verdicts = FrontierBandPolicy().decide_raw(TABLE, {"ifd_weight": 0.0, "reject_overconfident": True})
    inside = verdicts[0].detail
    assert inside["zone"] == {"original": "inside", "far": "beyond"}
    assert inside["frontier_score"]["original"] == 0.0
    assert inside["frontier_score"]["far"] == pytest.approx(17.0 / (1.4826 * 0.5))
    assert verdicts[5].detail["overconfident_style"] == ["terse"]
    assert verdicts[3].detail["zone"] == {"original": "misaligned", "near": "misaligned"}
    assert verdicts[4].detail["zone"] == {"original": "not_feasible", "near": "misaligned"}


def test_frontier_band_keeps_stripped_hedging_unless_asked() -> None:
    assert decide()[5] == ("stripped", "retained", "inside_frontier", "terse")


def test_frontier_band_is_a_parameter() -> None:
    # Widening the band upwards takes in the candidate just beyond it; narrowing it drops the tie's pair.
    assert decide(high=1.5)[6] == ("nearest", "retained", "inside_frontier", "near")
    assert decide(low=-0.5, high=0.5)[7][1:3] == ("rejected", "below_frontier")
    assert decide(rifd_max=2.0)[4] == ("infeasible", "retained", "inside_frontier", "original")
    assert decide(ifd_max=2.0)[3] == ("misaligned", "retained", "inside_frontier", "original")


def test_frontier_score_mixes_loss_and_ifd_robust_z_scores() -> None:
    table = [
        sample("a", cand("original", 0.5, 0.5, nll=1.0), cand("t", 0.6, 0.5, nll=2.0)),
        sample("b", cand("original", 0.8, 0.5, nll=3.0), cand("t", 1.0, 0.5, nll=5.0)),
    ]
    reference = FrontierReference.of(table)
    assert reference is not None
    log_ifds = [math.log(x) for x in (0.5, 0.6, 0.8, 1.0)]
    loss_median, ifd_median = 2.5, (log_ifds[1] + log_ifds[2]) / 2  # losses 1, 2, 3, 5
    loss_scale = 1.4826 * 1.0  # deviations 1.5, 0.5, 0.5, 2.5: median 1.0
    ifd_deviations = sorted(abs(x - ifd_median) for x in log_ifds)
    ifd_scale = 1.4826 * (ifd_deviations[1] + ifd_deviations[2]) / 2
    assert (reference.loss_median, reference.loss_scale) == pytest.approx((loss_median, loss_scale))
    assert (reference.log_ifd_median, reference.log_ifd_scale) == pytest.approx((ifd_median, ifd_scale))
    zones = frontier_zones(table, FrontierBandPolicy().parse_params({"ifd_weight": 0.25}))
    expected = 0.75 * (5.0 - loss_median) / loss_scale + 0.25 * (0.0 - ifd_median) / ifd_scale
    score, zone = zones[1][1]
    assert score == pytest.approx(expected)
    assert zone == "misaligned"


def test_frontier_reference_survives_a_constant_table() -> None:
    table = [sample("a", cand("original", 0.5, 0.5, nll=2.0)), sample("b", cand("original", 0.5, 0.5, nll=2.0))]
    verdicts = FrontierBandPolicy().decide_raw(table, None)
    assert [(v.reason, v.detail["frontier_score"]["original"]) for v in verdicts] == [("inside_frontier", 0.0)] * 2
    # MAD 0 falls back to the mean absolute deviation: one outlier among equal values still gets a finite score.
    skewed = [*table, sample("c", cand("original", 0.5, 0.5, nll=5.0))]
    scores = [v.detail["frontier_score"]["original"] for v in FrontierBandPolicy().decide_raw(skewed, None)]
    assert scores[2] == pytest.approx(0.5 * 3.0 / (1.2533 * 1.0))


def test_frontier_band_params() -> None:
    assert resolve_params("frontier_band", None)[1] == {
        "low": -0.8416,
        "high": 0.8416,
        "ifd_weight": 0.5,
        "ifd_max": 1.0,
        "rifd_max": 1.0,
        "reject_overconfident": False,
    }
    with pytest.raises(PolicyError, match=r"low \(1.0\) must be below high \(0.5\)"):
        resolve_params("frontier_band", {"low": 1.0, "high": 0.5})
    with pytest.raises(PolicyError, match=r"ifd_weight: Input should be less than or equal to 1"):
        resolve_params("frontier_band", {"ifd_weight": 2})
