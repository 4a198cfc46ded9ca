"""Hand-built score tables for the policy tests."""

from __future__ import annotations

from service.policies.base import CandidateScore, SampleScores


def cand(
    name: str,
    ifd: float | None,
    rifd: float | None,
    *,
    nll: float | None = 2.0,
    rsr: float | None = None,
    rewrote: bool = False,
    overconfident: bool = False,
    status: str = "scored",
) -> CandidateScore:
    """A candidate named after its teacher (`original` has none); `ifd=None` makes it unscored. `rsr` comes with
    the mean rank it implies (rsr * L(A|Q): per token, the ratio of the means is the ratio of the sums)."""
    return CandidateScore(
        name=name,
        teacher=None if name == "original" else name,
        status=status if ifd is not None else "unscored",
        error=None if ifd is not None else "response does not fit",
        ifd=ifd,
        rifd=rifd,
        ifd_loss_ratio=None if ifd is None else ifd / 2,
        nll_response_given_instruction=None if ifd is None else nll,
        rank_mean=None if ifd is None or rsr is None or nll is None else rsr * nll,
        rsr=None if ifd is None else rsr,
        rewrote_instruction=rewrote,
        overconfident_style=overconfident,
    )


def sample(key: str, *candidates: CandidateScore) -> SampleScores:
    """A sample whose first candidate is the original."""
    return SampleScores(key, tuple(candidates))
