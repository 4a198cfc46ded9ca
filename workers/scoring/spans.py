"""What an encoder hands the engine: for each candidate, the token spans whose mean NLL gives each loss.

A span is a token sequence and the [start, end) positions scored in it; position p is predicted from the
hidden state at p - 1, so position 0 is never scored. The engine runs every distinct sequence once and
averages the per-token NLL over each span. A two-pass template measures its four losses on two sequences;
a research template declares as many sequences as its rule needs (up to four distinct texts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from core.scores import Candidate

Measure = Literal["instruction", "response_given_instruction", "response", "instruction_given_response"]
# L(Q), L(A|Q), L(A), L(Q|A): the `nll_` fields of CandidateScores, in that order.
INSTRUCTION: Measure = "instruction"
RESPONSE_GIVEN_INSTRUCTION: Measure = "response_given_instruction"
RESPONSE: Measure = "response"
INSTRUCTION_GIVEN_RESPONSE: Measure = "instruction_given_response"


@dataclass(frozen=True, slots=True)
class ScoredSpan:
    """A token sequence and the positions [start, end) whose mean NLL is one loss; 1 <= start < end."""

    ids: tuple[int, ...]
    start: int
    end: int

    @property
    def tokens(self) -> int:
        """Scored tokens."""
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class EncodedCandidate:
    """The spans of one candidate: L(A|Q) and L(A) always, L(Q) and L(Q|A) when the template measures them."""

    spans: Mapping[Measure, ScoredSpan]
    # The instruction was cut to fit (two-pass templates), or a research rule's truncation cut a text.
    truncated: bool


class CandidateError(ValueError):
    """Why a candidate cannot be scored; becomes the `error` of an `unscored` result."""


class Encoder(Protocol):
    """Turns candidates into spans for one student and template; `name` is recorded with every result."""

    @property
    def name(self) -> str: ...

    def encode(self, candidates: Sequence[Candidate]) -> list[EncodedCandidate | CandidateError]: ...
