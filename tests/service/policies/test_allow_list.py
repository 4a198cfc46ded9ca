"""The teacher allow-list every policy takes (`teachers`, applied once in `Policy.decide_job`): what may be chosen,
`original`, `teacher_not_allowed`, job-wide statistics over the whole table, and how the parameter is stored."""

from __future__ import annotations

from typing import Any

import pytest

from service.policies import POLICIES, PolicyError, decision_terms, get_policy, resolve_params
from service.policies.base import TEACHER_NOT_ALLOWED, Policy, SampleScores, Verdict
from service.policies.best_candidate import BestCandidatePolicy
from service.policies.frontier import FrontierBandParams
from service.policies.frontier_band import FrontierBandPolicy
from service.policies.ifd_topk import IfdTopKPolicy
from service.policies.reflection import ReflectionPolicy
from tests.service.policies.tables import cand, sample
from tests.service.policies.test_frontier_band import TABLE as FRONTIER_TABLE


def outcomes(verdicts: list[Verdict]) -> list[tuple[str, str, str, str | None]]:
    return [(v.sample_key, v.decision, v.reason, v.chosen_candidate) for v in verdicts]


@pytest.mark.parametrize("name", list(POLICIES))
def test_every_policy_chooses_only_allowed_candidates(name: str) -> None:
    policy: Policy[Any] = get_policy(name)
    table = [
        # The original would win every policy here (higher IFD, lower L(A|Q) and RSR), were it allowed.
        sample("near", cand("original", 0.8, 0.5, nll=2.0, rsr=1.0), cand("near", 0.7, 0.6, nll=2.2, rsr=2.0)),
        sample("far", cand("original", 0.8, 0.5, nll=2.0, rsr=1.0), cand("far", 0.7, 0.6, nll=2.2, rsr=2.0)),
        sample("alone", cand("original", 0.8, 0.5, nll=2.0, rsr=1.0)),
    ]
    params = {"k_percent": 100} if name == "ifd_topk" else {}
    assert [v.chosen_candidate for v in policy.decide_raw(table, params)] == ["original"] * 3
    verdicts = policy.decide_raw(table, {**params, "teachers": ["near"]})
    assert outcomes(verdicts)[1:] == [
        ("far", "rejected", TEACHER_NOT_ALLOWED, None),
        ("alone", "rejected", TEACHER_NOT_ALLOWED, None),
    ]
    assert verdicts[0].chosen_candidate == "near"
    assert verdicts[1].detail == {"teachers": ["near"]}
    assert TEACHER_NOT_ALLOWED in policy.reason_codes


def test_original_is_allowed_only_when_listed() -> None:
    # best_candidate keeps the lowest L(A|Q): the original, then far, then near.
    table = [
        sample(
            "s", cand("original", 0.8, 0.9, nll=1.0), cand("near", 0.8, 0.9, nll=2.0), cand("far", 0.8, 0.9, nll=1.5)
        )
    ]

    def chosen(teachers: list[str] | None) -> tuple[str, str, str | None]:
        verdict = BestCandidatePolicy().decide_raw(table, {"teachers": teachers})[0]
        return verdict.decision, verdict.reason, verdict.chosen_candidate

    assert chosen(None) == ("retained", "most_probable", "original")
    assert chosen(["original"]) == ("retained", "most_probable", "original")
    assert chosen(["near", "original"]) == ("retained", "most_probable", "original")
    assert chosen(["near"]) == ("retained", "most_probable", "near")
    assert chosen(["near", "far"]) == ("retained", "most_probable", "far")
    assert chosen(["teacher-nobody"]) == ("rejected", "teacher_not_allowed", None)
    # The evidence lists the allow-list as given; the left-out original is not evidence.
    verdict = BestCandidatePolicy().decide_raw(table, {"teachers": ["near", "far"]})[0]
    assert verdict.detail == {"nll_response_given_instruction": {"near": 2.0, "far": 1.5}}
    rejected = BestCandidatePolicy().decide_raw(table, {"teachers": ["z", "a"]})[0]
    assert rejected.detail == {"teachers": ["z", "a"]}


def test_reflection_without_the_original_measures_refinements_against_no_one() -> None:
    # near does not beat its original (higher r-IFD): kept out when the original may be chosen.
    strong = sample("strong", cand("original", 0.8, 0.5), cand("near", 0.7, 0.6))
    misaligned = sample("misaligned", cand("original", 0.8, 0.5), cand("near", 1.2, 0.4))
    lost = sample("lost", cand("original", 0.8, 0.5), cand("near", None, None))

    def decide(teachers: list[str] | None) -> list[Verdict]:
        return ReflectionPolicy().decide_raw([strong, misaligned, lost], {"teachers": teachers})

    assert outcomes(decide(None))[0] == ("strong", "retained", "refinement_rejected_kept_original", "original")
    # The original left out stands in unscored, so (as in the released code) any eligible refinement replaces it.
    only_near = decide(["near"])
    assert outcomes(only_near) == [
        ("strong", "retained", "refinement_selected", "near"),
        ("misaligned", "rejected", "misaligned_ifd_ge_1", None),
        ("lost", "unscored", "unscored", None),
    ]
    assert only_near[0].detail == {"eligible": ["near"]}
    assert only_near[2].detail == {
        "errors": {"original": "original is not among the allowed teachers", "near": "response does not fit"}
    }
    # Only the originals: the refinements are gone, so the original is kept as the sample's only candidate.
    assert [v.reason for v in decide(["original"])] == ["original_kept", "original_kept", "original_kept"]


def test_frontier_statistics_stay_those_of_the_whole_job() -> None:
    policy = FrontierBandPolicy()
    whole = policy.decide_raw(FRONTIER_TABLE, {"ifd_weight": 0.0})
    narrowed = policy.decide_raw(FRONTIER_TABLE, {"ifd_weight": 0.0, "teachers": ["far"]})
    # Sample `inside`: far's frontier score is the same robust z as without the allow-list (17 nats above the
    # median of every scored candidate of the job), so it stays beyond the band and is not chosen.
    assert narrowed[0].detail["frontier_score"]["far"] == whole[0].detail["frontier_score"]["far"]
    assert narrowed[0].detail["frontier_score"]["far"] == pytest.approx(17.0 / (1.4826 * 0.5))
    assert outcomes(narrowed)[:3] == [
        ("inside", "rejected", "beyond_frontier", None),
        ("below", "rejected", TEACHER_NOT_ALLOWED, None),
        ("beyond", "rejected", "beyond_frontier", None),
    ]
    # The band a decision set was decided under places candidates; the allow-list is not part of it.
    terms = decision_terms("frontier_band", {"teachers": ["far"], "high": 1.5})
    assert terms.band == FrontierBandParams(high=1.5)
    assert terms.band is not None
    assert "teachers" not in terms.band.model_dump(mode="json")


def test_ifd_topk_keeps_k_percent_of_all_the_jobs_samples() -> None:
    table: list[SampleScores] = [
        sample("a", cand("original", 0.5, 0.5), cand("near", 0.6, 0.5)),
        sample("b", cand("original", 0.9, 0.5)),
        sample("c", cand("original", 0.5, 0.5), cand("near", 0.7, 0.5)),
        sample("d", cand("original", 0.9, 0.5)),
    ]
    verdicts = IfdTopKPolicy().decide_raw(table, {"k_percent": 50, "teachers": ["near"]})
    # ceil(4 * 50%) = 2: both samples with an allowed candidate, ranked among all four.
    assert outcomes(verdicts) == [
        ("a", "retained", "top_k_ifd", "near"),
        ("b", "rejected", TEACHER_NOT_ALLOWED, None),
        ("c", "retained", "top_k_ifd", "near"),
        ("d", "rejected", TEACHER_NOT_ALLOWED, None),
    ]
    assert verdicts[2].detail == {"rank": 1, "keep": 2, "ifd": 0.7}


def test_teachers_is_stored_only_when_given() -> None:
    unset = {"variant": "code", "ifd_max": 1.0, "rifd_max": 1.0, "reject_overconfident": False}
    assert resolve_params("reflection", None)[1] == unset
    assert resolve_params("reflection", {"teachers": None})[1] == unset
    given = resolve_params("reflection", {"teachers": ["weak", "original"]})[1]
    assert given == {"teachers": ["weak", "original"], **unset}
    # A stored set's params parse back to the same rule.
    assert resolve_params("reflection", given)[1] == given
    for policy in POLICIES.values():
        assert policy.defaults()["teachers"] is None
        assert "teachers" not in policy.parse_params(None).model_dump(mode="json")
        assert "teachers" in policy.params_schema()["properties"]


@pytest.mark.parametrize(
    ("teachers", "message"),
    [
        ([], "teachers: List should have at least 1 item"),
        ([1], "teachers.0: Input should be a valid string"),
        (["near", ""], "teachers.1: String should have at least 1 character"),
        ("near", "teachers: Input should be a valid list"),
    ],
)
def test_bad_teachers_name_the_field(teachers: object, message: str) -> None:
    for name in POLICIES:
        with pytest.raises(PolicyError, match=message) as caught:
            resolve_params(name, {"teachers": teachers})
        assert caught.value.field == "params.teachers"
    # Errors elsewhere too: the request's params as a whole.
    with pytest.raises(PolicyError) as mixed:
        resolve_params("ifd_topk", {"teachers": [], "k_percent": 500})
    assert mixed.value.field == "params"
