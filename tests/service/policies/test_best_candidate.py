"""`best_candidate` (GRAPE) on hand-built score tables: every reason code, ties, the optional cuts."""

from __future__ import annotations

from service.policies.base import TEACHER_NOT_ALLOWED, SampleScores
from service.policies.best_candidate import BestCandidatePolicy
from tests.service.policies.tables import cand, sample

TABLE = [
    sample("best", cand("original", 0.8, 0.9, nll=2.0), cand("near", 0.9, 1.4, nll=1.5), cand("far", 0.7, 0.5, nll=9)),
    sample("tie", cand("original", 0.8, 0.9, nll=1.0), cand("near", 0.9, 0.9, nll=1.0)),
    sample("misaligned", cand("original", 1.2, 0.9, nll=0.5), cand("near", 1.1, 0.9, nll=0.7)),
    sample("stripped", cand("original", 1.3, 0.9, nll=2.0), cand("terse", 0.6, 0.9, nll=1.0, overconfident=True)),
    sample("passed", cand("original", 0.8, 0.9, nll=2.0), cand("terse", 0.6, 0.9, nll=1.0, overconfident=True)),
    sample("none", cand("original", None, None), cand("near", None, None)),
]


def decide(table: list[SampleScores], **params: float | bool) -> list[tuple[str, str, str, str | None]]:
    verdicts = BestCandidatePolicy().decide_raw(table, params)
    return [(v.sample_key, v.decision, v.reason, v.chosen_candidate) for v in verdicts]


def test_best_candidate_reaches_every_reason_code() -> None:
    got = decide(TABLE, ifd_max=1.0, reject_overconfident=True)
    assert got == [
        ("best", "retained", "most_probable", "near"),
        ("tie", "retained", "most_probable", "original"),
        ("misaligned", "rejected", "misaligned_ifd_ge_1", None),
        ("stripped", "rejected", "overconfident_style", None),
        ("passed", "retained", "most_probable", "original"),
        ("none", "unscored", "unscored", None),
    ]
    # The allow-list's `teacher_not_allowed` is reached for every policy in test_allow_list.py.
    assert {reason for _, _, reason, _ in got} == set(BestCandidatePolicy.reason_codes) - {TEACHER_NOT_ALLOWED}
    verdicts = BestCandidatePolicy().decide_raw(TABLE[4:5], {"reject_overconfident": True})
    assert verdicts[0].detail == {
        "nll_response_given_instruction": {"original": 2.0, "terse": 1.0},
        "overconfident_style": ["terse"],
    }


def test_best_candidate_defaults_are_grape_without_cuts() -> None:
    # GRAPE has no alignment cut and no confidence filter: the most probable candidate always wins.
    got = decide(TABLE)
    assert [(key, chosen) for key, _, _, chosen in got[:5]] == [
        ("best", "near"),
        ("tie", "original"),
        ("misaligned", "original"),
        ("stripped", "terse"),
        ("passed", "terse"),
    ]
