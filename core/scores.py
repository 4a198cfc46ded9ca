"""The scoring engine's contract: what goes in (candidates) and what comes out (scores per candidate).

Torch-free so the API, the CLI and the database layer read the same field names the engine writes.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

ScoreStatus = Literal["scored", "unscored"]

# Bump when a change alters any number the engine returns: it is part of every result's provenance.
SCORING_VERSION = "1"


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
    # Token counts of each scored span: Q and A in the forward pass, A and Q in the backward pass.
    n_instruction_tokens: int | None = None
    n_response_tokens: int | None = None
    n_response_tokens_backward: int | None = None
    n_instruction_tokens_backward: int | None = None
    # True when the instruction had to be cut to fit the student's context (see truncation rule).
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
