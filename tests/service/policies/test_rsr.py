"""`rsr` (Rank-Surprisal Ratio, arXiv 2601.14249) on hand-built score tables: every reason code, ties, detail."""

from __future__ import annotations

import math

from service.policies import get_policy
from service.policies.base import CandidateScore, SampleScores
from service.policies.rsr import RsrPolicy
from tests.service.policies.tables import cand, sample

TABLE = [
    sample("lowest", cand("original", 0.8, 0.9, rsr=3.0), cand("near", 0.9, 1.4, rsr=2.0), cand("far", 0.7, 0.5)),
    sample("tie", cand("original", 0.8, 0.9, rsr=2.5), cand("near", 0.9, 0.9, rsr=2.5)),
    sample("stripped", cand("original", 1.3, 0.9), cand("terse", 0.6, 0.9, rsr=1.0, overconfident=True)),
    sample("passed", cand("original", 0.8, 0.9, rsr=4.0), cand("terse", 0.6, 0.9, rsr=1.0, overconfident=True)),
    sample("unranked", cand("original", 0.8, 0.9), cand("near", 0.7, 0.9)),
    sample("none", cand("original", None, None), cand("near", None, None)),
]


def decide(table: list[SampleScores], **params: object) -> list[tuple[str, str, str, str | None]]:
    verdicts = RsrPolicy().decide_raw(table, dict(params))
    return [(v.sample_key, v.decision, v.reason, v.chosen_candidate) for v in verdicts]


def test_rsr_reaches_every_reason_code() -> None:
    got = decide(TABLE, reject_overconfident=True)
    assert got == [
        ("lowest", "retained", "lowest_rsr", "near"),
        # Equal RSR: record order, the original first.
        ("tie", "retained", "lowest_rsr", "original"),
        ("stripped", "rejected", "overconfident_style", None),
        ("passed", "retained", "lowest_rsr", "original"),
        # Scored, but without rank statistics (a job scored before ranks existed): nothing to rank by.
        ("unranked", "unscored", "unscored", None),
        ("none", "unscored", "unscored", None),
    ]
    allowed = decide(TABLE[:1], teachers=["terse"])
    assert allowed == [("lowest", "rejected", "teacher_not_allowed", None)]
    assert {reason for _, _, reason, _ in got + allowed} == set(RsrPolicy.reason_codes)


def test_rsr_detail_lists_every_candidates_ratio() -> None:
    verdicts = RsrPolicy().decide_raw(TABLE, {"reject_overconfident": True})
    assert verdicts[0].detail == {"rsr": {"original": 3.0, "near": 2.0, "far": None}}
    assert verdicts[3].detail == {"rsr": {"original": 4.0, "terse": 1.0}, "overconfident_style": ["terse"]}
    assert verdicts[5].detail == {"errors": {"original": "response does not fit", "near": "response does not fit"}}


def test_rsr_keeps_stripped_hedging_unless_asked_and_skips_non_finite_ratios() -> None:
    assert decide(TABLE[2:4]) == [
        ("stripped", "retained", "lowest_rsr", "terse"),
        ("passed", "retained", "lowest_rsr", "terse"),
    ]
    infinite = CandidateScore(name="near", teacher="near", status="scored", ifd=0.5, rifd=0.5, rsr=math.inf)
    nan = CandidateScore(name="far", teacher="far", status="scored", ifd=0.5, rifd=0.5, rsr=math.nan)
    failed = CandidateScore(name="terse", teacher="terse", status="failed", rsr=0.1)
    table = [sample("odd", cand("original", 0.8, 0.9, rsr=9.0), infinite, nan, failed)]
    assert decide(table) == [("odd", "retained", "lowest_rsr", "original")]
    unranked = CandidateScore(name="original", teacher=None, status="scored", ifd=0.5, rifd=0.5, rsr=math.inf)
    assert decide([sample("only", unranked, nan)]) == [("only", "unscored", "unscored", None)]


def test_rsr_is_registered_with_its_defaults() -> None:
    policy = get_policy("rsr")
    assert (policy.name, policy.version) == ("rsr", "1")
    assert "2601.14249" in policy.summary
    assert policy.defaults() == {"reject_overconfident": False, "teachers": None}
    assert policy.parse_params(None).model_dump(mode="json") == {"reject_overconfident": False}


def test_rsr_evidence_leaves_out_an_original_the_allow_list_leaves_out() -> None:
    verdicts = RsrPolicy().decide_raw(TABLE[:1], {"teachers": ["near", "far"]})
    assert (verdicts[0].chosen_candidate, verdicts[0].detail) == ("near", {"rsr": {"near": 2.0, "far": None}})
