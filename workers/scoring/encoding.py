"""The two-pass templates' encoder: from candidates to a forward and a backward sequence, applying the truncation rule.

Truncation rule (the student has a maximum length M, counting the start token):
1. If both sequences of a candidate fit in M tokens, nothing is cut.
2. Otherwise the prompt P is cut from its end, at a token boundary of the forward text, to the longest
   prefix with which both sequences fit; both passes then score that same shorter P, so L(Q) and L(Q|A)
   still cover the same text. The result carries `instruction_truncated=True`.
3. The response is never cut: if it does not fit together with at least one prompt token, the
   candidate is `unscored` with the token counts in its error.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

from core.scores import Candidate
from workers.scoring.spans import (
    INSTRUCTION,
    INSTRUCTION_GIVEN_RESPONSE,
    RESPONSE,
    RESPONSE_GIVEN_INSTRUCTION,
    CandidateError,
    EncodedCandidate,
    ScoredSpan,
)
from workers.scoring.templates import RenderedCandidate, RenderedText, SpanTokenizer, Template, TemplateError

# Re-tokenizing a cut prompt can shift a token; a few rounds always settle it in practice.
_MAX_TRUNCATION_ROUNDS = 4


@dataclass(frozen=True, slots=True)
class ScoredSequence:
    """A token sequence and its Q and A spans as [start, end) positions; position 0 is never scored."""

    ids: tuple[int, ...]
    q: tuple[int, int]
    a: tuple[int, int]


def two_pass(forward: ScoredSequence, backward: ScoredSequence, *, truncated: bool) -> EncodedCandidate:
    """The four spans of a forward (P then A) and a backward (A then P) sequence."""
    return EncodedCandidate(
        spans={
            INSTRUCTION: ScoredSpan(forward.ids, *forward.q),
            RESPONSE_GIVEN_INSTRUCTION: ScoredSpan(forward.ids, *forward.a),
            RESPONSE: ScoredSpan(backward.ids, *backward.a),
            INSTRUCTION_GIVEN_RESPONSE: ScoredSpan(backward.ids, *backward.q),
        },
        truncated=truncated,
    )


class CandidateEncoder:
    """Renders and tokenizes candidates for one student and two-pass template."""

    def __init__(self, template: Template, tokenizer: SpanTokenizer, start_id: int, max_length: int) -> None:
        self.template = template
        self.name = template.name
        self._tokenizer = tokenizer
        self._start_id = start_id
        self._max_length = max_length

    def encode(self, candidates: Sequence[Candidate]) -> list[EncodedCandidate | CandidateError]:
        """Encode every candidate; a candidate that cannot be scored yields its CandidateError."""
        prepared = [self._render(candidate) for candidate in candidates]
        texts = [
            text
            for item in prepared
            if not isinstance(item, CandidateError)
            for text in (item[1].forward.text, item[1].backward.text)
        ]
        tokenized = iter(self._tokenizer.encode(texts))
        results: list[EncodedCandidate | CandidateError] = []
        for candidate, item in zip(candidates, prepared, strict=True):
            if isinstance(item, CandidateError):
                results.append(item)
                continue
            prompt, rendered = item
            forward_tokens, backward_tokens = next(tokenized), next(tokenized)
            try:
                forward = self._sequence(rendered.forward, *forward_tokens)
                backward = self._sequence(rendered.backward, *backward_tokens)
                if max(len(forward.ids), len(backward.ids)) > self._max_length:
                    results.append(self._truncated(candidate, prompt))
                else:
                    results.append(two_pass(forward, backward, truncated=False))
            except CandidateError as exc:
                results.append(exc)
        return results

    def _render(self, candidate: Candidate) -> tuple[str, RenderedCandidate] | CandidateError:
        if not candidate.instruction:
            return CandidateError("empty instruction: there is no Q span to score")
        if not candidate.response:
            return CandidateError("empty response: there is no A span to score")
        prompt = self.template.prompt_of(candidate)
        try:
            return prompt, self.template.render(prompt, candidate.response, candidate)
        except TemplateError as exc:
            return CandidateError(str(exc))

    def _truncated(self, candidate: Candidate, prompt: str) -> EncodedCandidate:
        """Apply rule 2 of the module docstring, or raise CandidateError under rule 3."""
        for _ in range(_MAX_TRUNCATION_ROUNDS):
            rendered = self.template.render(prompt, candidate.response, candidate)
            (f_ids, f_starts), (b_ids, b_starts) = self._tokenizer.encode(
                [rendered.forward.text, rendered.backward.text]
            )
            forward = self._sequence(rendered.forward, f_ids, f_starts)
            backward = self._sequence(rendered.backward, b_ids, b_starts)
            excess = max(len(forward.ids), len(backward.ids)) - self._max_length
            if excess <= 0:
                return two_pass(forward, backward, truncated=True)
            q_tokens = forward.q[1] - forward.q[0]
            keep = q_tokens - excess
            if keep < 1:
                response_tokens = forward.a[1] - forward.a[0]
                raise CandidateError(
                    f"too long: the response alone needs {response_tokens} tokens and the sequence "
                    f"{len(forward.ids) - q_tokens + 1} tokens with one instruction token; "
                    f"the student's maximum length is {self._max_length}"
                )
            # Cut P where its (keep)-th token starts, relative to where P starts in the forward text.
            shift = 0 if rendered.forward.starts_with_start_token else 1
            cut_char = f_starts[forward.q[0] + keep - shift] - rendered.forward.q_chars[0]
            if cut_char <= 0:
                raise CandidateError("too long: the instruction cannot be cut to fit the student's maximum length")
            prompt = prompt[:cut_char]
        raise CandidateError("too long: no cut of the instruction fits the student's maximum length")

    def _sequence(self, rendered: RenderedText, ids: list[int], starts: list[int]) -> ScoredSequence:
        shift = 0 if rendered.starts_with_start_token else 1
        full = tuple(ids) if shift == 0 else (self._start_id, *ids)
        q = _span(starts, rendered.q_chars, shift)
        a = _span(starts, rendered.a_chars, shift)
        if q[0] >= q[1]:
            raise CandidateError("empty instruction span: the instruction produced no tokens")
        if a[0] >= a[1]:
            raise CandidateError("empty response span: the response produced no tokens")
        if min(q[0], a[0]) < 1:
            raise CandidateError("a scored token has no context before it (the text lacks a start token)")
        return ScoredSequence(ids=full, q=q, a=a)


def _span(starts: list[int], chars: tuple[int, int], shift: int) -> tuple[int, int]:
    """Token positions whose start offset lies in [chars[0], chars[1]); offsets are non-decreasing."""
    return bisect_left(starts, chars[0]) + shift, bisect_left(starts, chars[1]) + shift
