"""Policies on hand-built score tables: every reason code reached, parameters validated, ties reproducible."""

from __future__ import annotations

import pytest

from service.policies import POLICIES, Cut, DecisionTerms, PolicyError, decision_terms, get_policy, resolve_params
from service.policies.base import TEACHER_NOT_ALLOWED, SampleScores, Verdict
from service.policies.ifd_topk import IfdTopKPolicy
from service.policies.reflection import ReflectionPolicy
from service.policies.rules import beats_original
from tests.service.policies.tables import cand, sample


def decide_reflection(*samples: SampleScores, **params: float | str | bool) -> list[Verdict]:
    return ReflectionPolicy().decide_raw(samples, params)


def test_reflection_reaches_every_reason_code() -> None:
    verdicts = decide_reflection(
        sample("refined", cand("original", 0.8, 0.9), cand("near", 0.7, 0.5), cand("far", 0.6, 0.4)),
        sample("alone", cand("original", 0.8, 0.9)),
        sample("kept", cand("original", 0.8, 0.5), cand("near", 0.7, 0.6)),
        sample("misaligned", cand("original", 1.2, 0.5), cand("near", 1.01, 0.4)),
        sample("infeasible", cand("original", 0.9, 1.3), cand("near", 1.1, 0.2)),
        sample("none", cand("original", None, None), cand("near", None, None)),
    )
    got = [(v.sample_key, v.decision, v.reason, v.chosen_candidate) for v in verdicts]
    assert got == [
        ("refined", "retained", "refinement_selected", "far"),
        ("alone", "retained", "original_kept", "original"),
        ("kept", "retained", "refinement_rejected_kept_original", "original"),
        ("misaligned", "rejected", "misaligned_ifd_ge_1", None),
        ("infeasible", "rejected", "not_feasible", None),
        ("none", "unscored", "unscored", None),
    ]
    assert verdicts[-1].detail == {"errors": {"original": "response does not fit", "near": "response does not fit"}}
    confident = decide_reflection(
        sample("stripped", cand("original", 0.8, 0.9), cand("terse", 0.7, 0.5, overconfident=True)),
        sample("only", cand("original", 0.9, 1.3), cand("terse", 0.7, 0.5, overconfident=True)),
        reject_overconfident=True,
    )
    assert [(v.decision, v.reason, v.chosen_candidate) for v in confident] == [
        ("retained", "refinement_rejected_kept_original", "original"),
        ("rejected", "overconfident_style", None),
    ]
    assert confident[0].detail == {"eligible": ["original"], "overconfident_style": ["terse"]}
    reached = {v.reason for v in verdicts + confident}
    # The allow-list's `teacher_not_allowed` is reached for every policy in test_allow_list.py.
    assert reached == set(ReflectionPolicy.reason_codes) - {TEACHER_NOT_ALLOWED}


def test_reflection_keeps_stripped_hedging_unless_asked() -> None:
    table = sample("s", cand("original", 0.8, 0.9), cand("terse", 0.7, 0.5, overconfident=True))
    assert decide_reflection(table)[0].chosen_candidate == "terse"


def test_reflection_paper_variant_has_no_thresholds() -> None:
    verdicts = decide_reflection(
        sample("misaligned", cand("original", 1.2, 0.5), cand("near", 1.01, 0.4)),
        sample("infeasible", cand("original", 0.9, 1.3)),
        sample("kept", cand("original", 1.4, 1.5), cand("near", 1.1, 1.6)),
        sample("lost", cand("original", None, None), cand("terse", 1.3, 1.2, overconfident=True)),
        variant="paper",
        reject_overconfident=True,
    )
    assert [(v.decision, v.reason, v.chosen_candidate) for v in verdicts] == [
        ("retained", "refinement_selected", "near"),
        ("retained", "original_kept", "original"),
        ("retained", "refinement_rejected_kept_original", "original"),
        ("rejected", "overconfident_style", None),
    ]
    _, params = resolve_params("reflection", {"variant": "paper"})
    assert params == {"variant": "paper", "ifd_max": None, "rifd_max": None, "reject_overconfident": False}
    with pytest.raises(PolicyError, match="the paper variant has no thresholds: drop ifd_max"):
        resolve_params("reflection", {"variant": "paper", "ifd_max": 1.0})
    with pytest.raises(PolicyError, match=r"variant: Input should be 'code' or 'paper'"):
        resolve_params("reflection", {"variant": "released"})


def test_reflection_rewritten_instruction_must_raise_ifd() -> None:
    # Lower r-IFD alone is not enough when the teacher rewrote the instruction: it must also be harder.
    easier = sample("s", cand("original", 0.8, 0.9), cand("t", 0.5, 0.3, rewrote=True))
    harder = sample("s", cand("original", 0.8, 0.9), cand("t", 0.85, 0.3, rewrote=True))
    assert decide_reflection(easier)[0].chosen_candidate == "original"
    assert decide_reflection(harder)[0].chosen_candidate == "t"


def test_reflection_ineligible_original_yields_to_any_eligible_refinement() -> None:
    (verdict,) = decide_reflection(sample("s", cand("original", 1.4, 0.2), cand("t", 0.9, 0.95)))
    assert (verdict.decision, verdict.reason, verdict.chosen_candidate) == ("retained", "refinement_selected", "t")


def test_reflection_unscored_refinement_never_wins() -> None:
    (verdict,) = decide_reflection(sample("s", cand("original", 0.8, 0.9), cand("t", None, None)))
    assert (verdict.reason, verdict.chosen_candidate) == ("refinement_rejected_kept_original", "original")


def test_reflection_thresholds_are_parameters() -> None:
    table = sample("s", cand("original", 1.05, 0.9))
    assert decide_reflection(table)[0].reason == "misaligned_ifd_ge_1"
    assert decide_reflection(table, ifd_max=1.1)[0].reason == "original_kept"


def test_ifd_topk_keeps_top_percent_of_all_samples_by_ifd() -> None:
    table = [
        sample("a", cand("original", 0.5, 0.5)),
        sample("b", cand("original", 0.9, 0.5), cand("t", 0.95, 2.0)),
        sample("c", cand("original", 0.7, 0.5)),
        sample("d", cand("original", 1.5, 0.5)),
        sample("e", cand("original", None, None)),
        sample("f", cand("original", 0.7, 0.5)),
    ]
    verdicts = IfdTopKPolicy().decide_raw(table, {"k_percent": 50})
    got = [(v.sample_key, v.decision, v.reason, v.chosen_candidate) for v in verdicts]
    # ceil(6 * 50%) = 3 kept: b (its refinement, IFD 0.95), then c and f tie at 0.7 and keep input order.
    assert got == [
        ("a", "rejected", "below_top_k", "original"),
        ("b", "retained", "top_k_ifd", "t"),
        ("c", "retained", "top_k_ifd", "original"),
        ("d", "rejected", "misaligned_ifd_ge_1", None),
        ("e", "unscored", "unscored", None),
        ("f", "retained", "top_k_ifd", "original"),
    ]
    assert verdicts[1].detail == {"rank": 1, "keep": 3, "ifd": 0.95}
    confident = IfdTopKPolicy().decide_raw(
        [
            sample("only", cand("original", 1.2, 0.5), cand("terse", 0.6, 0.5, overconfident=True)),
            sample("other", cand("original", 0.4, 0.5), cand("terse", 0.9, 0.5, overconfident=True)),
        ],
        {"k_percent": 100, "reject_overconfident": True},
    )
    assert [(v.decision, v.reason, v.chosen_candidate) for v in confident] == [
        ("rejected", "overconfident_style", None),
        ("retained", "top_k_ifd", "original"),
    ]
    assert confident[1].detail == {"rank": 1, "keep": 2, "ifd": 0.4, "overconfident_style": ["terse"]}
    assert {v.reason for v in verdicts + confident} == set(IfdTopKPolicy.reason_codes) - {TEACHER_NOT_ALLOWED}


def test_ifd_topk_original_only_and_loss_ratio() -> None:
    table = [sample("a", cand("original", 0.5, 0.5), cand("t", 0.9, 0.5)), sample("b", cand("original", 0.6, 0.5))]
    verdicts = IfdTopKPolicy().decide_raw(table, {"k_percent": 50, "candidates": "original", "score": "ifd_loss_ratio"})
    assert [(v.sample_key, v.decision, v.chosen_candidate) for v in verdicts] == [
        ("a", "rejected", "original"),
        ("b", "retained", "original"),
    ]


def test_registry_and_params_validation() -> None:
    assert set(POLICIES) == {"reflection", "ifd_topk", "frontier_band", "best_candidate", "rsr"}
    policy, params = resolve_params("ifd_topk", {"k_percent": 5})
    assert policy is get_policy("ifd_topk")
    assert params == {"k_percent": 5.0, "score": "ifd", "candidates": "all", "reject_overconfident": False}
    assert resolve_params("reflection", None)[1] == {
        "variant": "code",
        "ifd_max": 1.0,
        "rifd_max": 1.0,
        "reject_overconfident": False,
    }
    # Parameters stored before the variants existed still validate to the same rule.
    assert resolve_params("reflection", {"ifd_max": 1.0, "rifd_max": 1.0})[1] == resolve_params("reflection", None)[1]
    for registered in POLICIES.values():
        assert registered.summary
        assert set(registered.defaults()) == set(registered.params_schema()["properties"])
    with pytest.raises(
        PolicyError, match=r"unknown policy 'best' \(known: best_candidate, frontier_band, ifd_topk, reflection, rsr\)"
    ):
        get_policy("best")
    with pytest.raises(PolicyError, match=r"invalid params: k_percent: Input should be less than or equal to 100"):
        resolve_params("ifd_topk", {"k_percent": 150})
    with pytest.raises(PolicyError, match=r"invalid params: topk: Extra inputs are not permitted"):
        resolve_params("ifd_topk", {"topk": 1})


def test_each_policy_states_the_terms_it_decided_under() -> None:
    band = decision_terms("frontier_band", {"high": 1.5, "rifd_max": 0.5})
    assert band.band is not None
    assert (band.band.low, band.band.high, band.band.rifd_max) == (-0.8416, 1.5, 0.5)
    assert band.absolute_cuts == (Cut("ifd", "ifd_max", 1.0), Cut("rifd", "rifd_max", 0.5))
    assert not band.keeps_fixed_share
    assert decision_terms("ifd_topk", {"k_percent": 2}) == DecisionTerms(keeps_fixed_share=True)
    code = (Cut("ifd", "ifd_max", 1.0), Cut("rifd", "rifd_max", 1.0))
    assert decision_terms("reflection", {}) == DecisionTerms(absolute_cuts=code)
    assert decision_terms("reflection", {"variant": "paper"}) == DecisionTerms()
    assert decision_terms("best_candidate", {}) == DecisionTerms()
    assert decision_terms("best_candidate", {"ifd_max": 0.5}) == DecisionTerms(
        absolute_cuts=(Cut("ifd", "ifd_max", 0.5),)
    )
    # A stored decision set whose policy is gone, or whose parameters no longer parse, states nothing.
    assert decision_terms("retired", {}) == DecisionTerms()
    assert decision_terms("frontier_band", {"width": 1}) == DecisionTerms()


def test_beats_original_is_the_pairwise_rule_on_scored_candidates() -> None:
    original = cand("original", 0.8, 0.9)
    assert beats_original(cand("easier", 0.7, 0.5), original)
    assert not beats_original(cand("harder", 0.7, 0.95), original)
    assert not beats_original(cand("rewrote", 0.7, 0.5, rewrote=True), original)
    assert beats_original(cand("rewrote", 0.85, 0.5, rewrote=True), original)
    assert not beats_original(cand("unscored", None, None), original)
