"""Rules shared by policies and the report: Selective Reflection-Tuning's pairwise comparison of a refinement
with its original (Li et al., ACL Findings 2024).

A rewritten instruction must make the answer *harder* for the student (higher IFD: the instruction carries more),
and the response must be *easier* to trace back to the instruction (lower r-IFD: more feasible for this student).
`reflection` selects by it; the report counts, per teacher, how often a refinement wins it.
"""

from __future__ import annotations

from service.policies.base import CandidateScore


def score_value(score: float | None) -> float:
    """A score for comparison: a missing one is +inf, so it never wins a lower-is-better contest."""
    return score if score is not None else float("inf")


def refinement_wins(refinement: CandidateScore, original: CandidateScore) -> bool:
    """The pairwise rule on the two candidates' scores, without checking that both are scored."""
    if refinement.rewrote_instruction and score_value(refinement.ifd) <= score_value(original.ifd):
        return False
    return score_value(refinement.rifd) < score_value(original.rifd)


def beats_original(refinement: CandidateScore, original: CandidateScore) -> bool:
    """The paper's pairwise rule: lower r-IFD than the original, and higher IFD if the instruction was rewritten."""
    return refinement.scored and original.scored and refinement_wins(refinement, original)
