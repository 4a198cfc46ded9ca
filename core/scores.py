"""The scoring engine's contract: what goes in (candidates) and what comes out (scores per candidate).

Torch-free so the API, the CLI and the database layer read the same field names the engine writes.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

from core.errors import InputError

ScoreStatus = Literal["scored", "unscored"]

# Bump when a change alters any number the engine returns: it is part of every result's provenance.
SCORING_VERSION = "2"

# The Rank-Surprisal Ratio's rank clip r when a caller does not choose one (arXiv 2601.14249 uses 100).
DEFAULT_RANK_CLIP = 100


@dataclass(frozen=True, slots=True)
class Candidate:
    """One (instruction, input, response) triple to score: the original sample or one teacher's refinement."""

    instruction: str
    response: str
    input: str = ""


@dataclass(frozen=True, slots=True)
class CandidateScores:
    """The student's statistics for one candidate; every number is None when `status` is `unscored`.

    nll_* are mean per-token cross-entropies in nats over the named span:
    L(Q) = nll_instruction, L(A|Q) = nll_response_given_instruction, L(A) = nll_response,
    L(Q|A) = nll_instruction_given_response. ifd = exp(L(A|Q) - L(A)), ifd_loss_ratio = L(A|Q) / L(A),
    rifd = exp(L(Q|A) - L(Q)), ppl_response_given_instruction = exp(L(A|Q)).
    Rank statistics (Rank-Surprisal Ratio, arXiv 2601.14249) over the L(A|Q) tokens: a token's rank is
    1 + the number of vocabulary logits strictly greater than its own, clipped at rank_clip;
    rank_mean = mean clipped rank, rsr = sum of clipped ranks / sum of the tokens' NLL (lower = better).
    A template that does not measure a quantity leaves it None even when scored (cherry and superfiltering
    measure no L(Q) or L(Q|A), so no rifd); the rank fields are None when the scorer computes no ranks.
    """

    status: ScoreStatus
    template: str
    error: str | None = None
    nll_instruction: float | None = None
    nll_response_given_instruction: float | None = None
    nll_response: float | None = None
    nll_instruction_given_response: float | None = None
    ppl_response_given_instruction: float | None = None
    ifd: float | None = None
    ifd_loss_ratio: float | None = None
    rifd: float | None = None
    rank_mean: float | None = None
    rsr: float | None = None
    rank_clip: int | None = None
    # Token counts of each scored span: Q and A in the forward pass, A and Q in the backward pass.
    n_instruction_tokens: int | None = None
    n_response_tokens: int | None = None
    n_response_tokens_backward: int | None = None
    n_instruction_tokens_backward: int | None = None
    # True when the instruction had to be cut to fit the student's context (see truncation rule); for a
    # research template, when any text it scores was cut by that repository's truncation rule.
    instruction_truncated: bool = False

    def as_dict(self) -> dict[str, object]:
        """The scores as a plain JSON-ready dict (field order as declared)."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class StudentIdentity:
    """Where a student came from and what exactly it was: resolved path plus a content hash."""

    path: str
    fingerprint: str
    model_type: str
    max_length: int


# The token counts of the four scored spans: a job's scored tokens sum these.
TOKEN_COUNT_FIELDS: tuple[str, ...] = (
    "n_instruction_tokens",
    "n_response_tokens",
    "n_response_tokens_backward",
    "n_instruction_tokens_backward",
)
# Every number (and flag) the engine returns per candidate, in declaration order: what a candidate row stores.
SCORE_FIELDS: tuple[str, ...] = tuple(
    f.name for f in fields(CandidateScores) if f.name not in ("status", "template", "error")
)


# Above this a clip stops meaning anything (no vocabulary is larger), and a typo should not pass silently.
MAX_RANK_CLIP = 1_000_000


def check_rank_clip(clip: int) -> int:
    """`clip` as a valid RSR rank clip, or InputError naming the allowed range."""
    if isinstance(clip, bool) or not isinstance(clip, int) or not 1 <= clip <= MAX_RANK_CLIP:
        raise InputError(f"rank_clip: expected an integer in [1, {MAX_RANK_CLIP}], got {clip!r}", field="rank_clip")
    return clip
