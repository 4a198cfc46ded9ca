"""Research templates: the per-sample scoring rules of three published repositories, reproduced exactly.

Each rule follows its repository's scoring script: the same prompt strings, the same spans, the same start
token, the same truncation, and NaN (here: `unscored`) in the same cases. The student's own tokenizer stands
in for theirs (LLaMA's, GPT-2's) and is called as the scripts call it, `tokenizer.encode(text,
truncation=True, max_length=m)`, special tokens included: a tokenizer that adds BOS (LLaMA) gets one, GPT-2's
does not, and then the first token of a text is context only. The scripts measure in two ways:
- whole text (`get_perplexity_and_embedding_whole_text`): the model's loss with `labels=input_ids`, i.e. every
  token but the first;
- part text (`get_perplexity_and_embedding_part_text`): tokens from `len(encode(text[:text.rfind(target)]))`
  to the end of the (truncated) text. The prefix is encoded on its own, as theirs is, even where that moves
  the boundary by a token.
M, the maximum length, is the script's default, capped at the student's maximum length. The rules need up
to four distinct texts per candidate; the engine runs each distinct token sequence once, sharing prefixes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

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

# tianyi-lab/Cherry_LLM, cherry_seletion/data_analysis.py, PROMPT_DICT (Stanford Alpaca's prompt, which ends
# "### Response:" with no newline), and the unconditioned text `direct_answer_text = '### Response:' + output_i`.
CHERRY_PROMPT_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:"
)
CHERRY_PROMPT_NO_INPUT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:"
)
CHERRY_DIRECT_PREFIX = "### Response:"

# tianyi-lab/Reflection_Tuning, selection_code/data_analysis.py: PROMPT_DICT_VICUNA (the default --prompt)
# and the reverse instruction `instruct_i_reverse`, placed in the no-input prompt.
REFLECTION_PROMPT_INPUT = (
    "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
    "detailed, and polite answers to the user's questions. USER: {instruction}\nInput:\n{input} ASSISTANT:"
)
REFLECTION_PROMPT_NO_INPUT = (
    "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
    "detailed, and polite answers to the user's questions. USER: {instruction} ASSISTANT:"
)
REFLECTION_REVERSE_HEAD = (
    "Below is the response to an instruction, please guess the corresponding instruction for the given response.\n"
)
REFLECTION_REVERSE_TAIL = "\nGenerate the instruction for the above response."

# tianyi-lab/Superfiltering, code_ifd/data_analysis.py: PROMPT_DICT_NONE (the default --prompt none).
SUPERFILTERING_PROMPT_INPUT = "{instruction}\n{input}\n"
SUPERFILTERING_PROMPT_NO_INPUT = "{instruction}\n"


@dataclass(frozen=True, slots=True)
class Bounds:
    """A text's ids after truncation, the token where its target starts (prefix encoded untruncated), whether cut."""

    ids: tuple[int, ...]
    start: int
    cut: bool


class ResearchTokenizer:
    """The student's tokenizer called as the research scripts call it, with special tokens; caches within one call."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._ids: dict[str, tuple[int, ...]] = {}

    def prefetch(self, texts: Iterable[str]) -> None:
        """Encode many texts in one batched call (the tokenizer's Rust backend runs them in parallel)."""
        missing = list(dict.fromkeys(text for text in texts if text not in self._ids))
        if missing:
            # verbose=False: texts longer than the model are expected here; they are truncated below, not fed.
            encoded = self._tokenizer(missing, add_special_tokens=True, verbose=False)["input_ids"]
            self._ids.update(zip(missing, (tuple(ids) for ids in encoded), strict=True))

    def encode(self, text: str, max_length: int | None = None) -> tuple[int, ...]:
        """`tokenizer.encode(text, truncation=True, max_length=max_length)`, or untruncated when None."""
        if text not in self._ids:
            self.prefetch([text])
        ids = self._ids[text]
        if max_length is None or len(ids) <= max_length:
            return ids
        if max_length < 1:
            raise CandidateError(f"too long: a text would be truncated to {max_length} tokens")
        # The tokenizer's own truncation, which keeps any end-of-text special token a plain slice would drop.
        encoded = self._tokenizer(text, add_special_tokens=True, truncation=True, max_length=max_length, verbose=False)
        cut = tuple(encoded["input_ids"])
        if len(cut) > max_length:
            # A limit below the special tokens' count: the tokenizer returns the text uncut.
            raise CandidateError(f"too long: the tokenizer cannot cut a text to {max_length} tokens")
        return cut

    def bounds(self, text: str, target: str, max_length: int) -> Bounds:
        """Their part-text boundary: the target starts at token len(encode(text[:text.rfind(target)]))."""
        ids = self.encode(text, max_length)
        start = len(self.encode(text[: text.rfind(target)]))
        return Bounds(ids=ids, start=start, cut=len(ids) < len(self.encode(text)))

    def whole_text(self, text: str, max_length: int, what: str) -> tuple[ScoredSpan, bool]:
        """Every token after the first of the truncated text (`labels=input_ids`), and whether it was cut."""
        ids = self.encode(text, max_length)
        return _span(ids, 1, what), len(ids) < len(self.encode(text))

    def part_text(self, text: str, target: str, max_length: int, what: str) -> tuple[ScoredSpan, bool]:
        """Tokens from the target's start to the end of the truncated text, and whether it was cut."""
        found = self.bounds(text, target, max_length)
        # labels[:start] = -100 and the first label never has a prediction: the loss starts at max(start, 1).
        return _span(found.ids, max(found.start, 1), what), found.cut


def _span(ids: tuple[int, ...], start: int, what: str, end: int | None = None) -> ScoredSpan:
    """Positions [start, end) of ids (end: the whole text); an empty span is their NaN, hence CandidateError."""
    stop = len(ids) if end is None else end
    if start >= stop:
        # Their loss is a mean over no tokens, NaN; the sample is then skipped.
        raise CandidateError(f"{what} has no token to score (text of {len(ids)} tokens; the research code gives NaN)")
    return ScoredSpan(ids, start, stop)


@runtime_checkable
class ResearchTemplate(Protocol):
    """A published scoring rule: declares the texts it scores and where each loss is measured in them."""

    name: str
    # The repository's default maximum length; the engine caps it at the student's.
    max_length: int

    def texts(self, candidate: Candidate) -> list[str]:
        """Texts the rule will encode (batched up front; any it misses is encoded on demand)."""
        ...

    def encode(self, candidate: Candidate, tokenizer: ResearchTokenizer, max_length: int) -> EncodedCandidate:
        """The candidate's spans, or CandidateError where the repository gives NaN or skips the sample."""
        ...


class CherryTemplate:
    """Cherry LLM (Li et al., NAACL 2024): `data_analysis.py --mod cherry --prompt alpaca --max_length 512`.

    L(A|Q): part text of prompt + response, cut to M. L(A): part text of "### Response:" + response, cut to
    M - len(prompt tokens) - 2. The published IFD is the loss ratio L(A|Q)/L(A) (`put_ifd_score.py`), which
    re-encodes the *bare* instruction (n_I tokens) and writes NaN unless M - n_I - 2 > 4, both spans' token
    counts are non-zero, and n_I + (the unconditioned span at that limit) <= M.
    """

    name = "cherry"
    max_length = 512

    def prompt(self, candidate: Candidate) -> str:
        """The Stanford Alpaca prompt, ending `### Response:` (no newline)."""
        if candidate.input:
            return CHERRY_PROMPT_INPUT.format_map({"instruction": candidate.instruction, "input": candidate.input})
        return CHERRY_PROMPT_NO_INPUT.format_map({"instruction": candidate.instruction})

    def texts(self, candidate: Candidate) -> list[str]:
        prompt = self.prompt(candidate)
        direct = CHERRY_DIRECT_PREFIX + candidate.response
        return [prompt, candidate.instruction, prompt + candidate.response, direct, CHERRY_DIRECT_PREFIX]

    def encode(self, candidate: Candidate, tokenizer: ResearchTokenizer, max_length: int) -> EncodedCandidate:
        prompt = self.prompt(candidate)
        direct = CHERRY_DIRECT_PREFIX + candidate.response
        n_instruction = len(tokenizer.encode(candidate.instruction, max_length))
        selection_limit = max_length - n_instruction - 2
        if selection_limit <= 4:
            raise CandidateError(f"too long: the instruction leaves {selection_limit} tokens (Cherry LLM needs > 4)")
        # data_analysis.py: "n3 = n1 + n2 + 2", so the unconditioned text is cut to M - n1 - 2 tokens.
        analysis_limit = max_length - len(tokenizer.encode(prompt, max_length)) - 2
        if analysis_limit < 1:
            # Their script passes a max_length < 1 to the tokenizer: undefined (a fast tokenizer raises).
            raise CandidateError(f"too long: the prompt leaves {analysis_limit} tokens for the response alone")
        conditioned = tokenizer.bounds(prompt + candidate.response, candidate.response, max_length)
        alone = tokenizer.bounds(direct, candidate.response, analysis_limit)
        if min(conditioned.start, alone.start) < 1:
            raise CandidateError("the prompt produced no tokens")
        # put_ifd_score.py re-encodes the unconditioned text at its own limit: those counts decide NaN, and its
        # loss list (computed at the analysis limit) is sliced to that length.
        selection_end = len(tokenizer.encode(direct, selection_limit))
        counted = selection_end - alone.start
        if counted == 0 or len(conditioned.ids) - conditioned.start == 0 or n_instruction + counted > max_length:
            raise CandidateError("the response has no token to score within Cherry LLM's limits (its code gives NaN)")
        given = _span(conditioned.ids, conditioned.start, "L(A|Q)")
        alone_end = min(len(alone.ids), selection_end)
        response = _span(alone.ids, alone.start, "L(A)", end=alone_end)
        full = len(tokenizer.encode(direct))
        return EncodedCandidate(
            spans={RESPONSE_GIVEN_INSTRUCTION: given, RESPONSE: response},
            truncated=conditioned.cut or alone_end < full,
        )


class ReflectionTemplate:
    """Selective Reflection-Tuning (Li et al., ACL Findings 2024): `selection_code/data_analysis.py` defaults.

    Vicuna prompt, M = 2048. L(Q): whole text instruction + input (joined with nothing), cut to
    M - len(reverse prompt tokens) + 1. L(A): whole text response, cut to M - len(prompt tokens) + 1.
    L(Q|A): part text of reverse prompt + instruction + input after the instruction's last occurrence, cut to M.
    L(A|Q): part text of prompt + response, cut to M. IFD and r-IFD are PPL ratios (`put_analysis_to_data.py`).
    """

    name = "reflection"
    max_length = 2048

    def prompt(self, candidate: Candidate) -> str:
        """Their Vicuna prompt around the instruction (and input)."""
        if candidate.input:
            return REFLECTION_PROMPT_INPUT.format_map({"instruction": candidate.instruction, "input": candidate.input})
        return REFLECTION_PROMPT_NO_INPUT.format_map({"instruction": candidate.instruction})

    def reverse_prompt(self, candidate: Candidate) -> str:
        """The "guess the instruction" prompt around the response, in the no-input Vicuna prompt."""
        reverse = REFLECTION_REVERSE_HEAD + candidate.response + REFLECTION_REVERSE_TAIL
        return REFLECTION_PROMPT_NO_INPUT.format_map({"instruction": reverse})

    def texts(self, candidate: Candidate) -> list[str]:
        prompt, reverse = self.prompt(candidate), self.reverse_prompt(candidate)
        instruction = candidate.instruction + candidate.input
        return [prompt, reverse, instruction, candidate.response, reverse + instruction, prompt + candidate.response]

    def encode(self, candidate: Candidate, tokenizer: ResearchTokenizer, max_length: int) -> EncodedCandidate:
        prompt, reverse = self.prompt(candidate), self.reverse_prompt(candidate)
        instruction = candidate.instruction + candidate.input
        n_prompt = len(tokenizer.encode(prompt, max_length))
        n_reverse = len(tokenizer.encode(reverse, max_length))
        q, q_cut = tokenizer.whole_text(instruction, max_length - n_reverse + 1, "L(Q)")
        a, a_cut = tokenizer.whole_text(candidate.response, max_length - n_prompt + 1, "L(A)")
        q_given_a, qa_cut = tokenizer.part_text(reverse + instruction, candidate.instruction, max_length, "L(Q|A)")
        a_given_q, aq_cut = tokenizer.part_text(prompt + candidate.response, candidate.response, max_length, "L(A|Q)")
        return EncodedCandidate(
            spans={
                INSTRUCTION: q,
                RESPONSE_GIVEN_INSTRUCTION: a_given_q,
                RESPONSE: a,
                INSTRUCTION_GIVEN_RESPONSE: q_given_a,
            },
            truncated=q_cut or a_cut or qa_cut or aq_cut,
        )


class SuperfilteringTemplate:
    """Superfiltering (Li et al., ACL 2024): `code_ifd/data_analysis.py` defaults (prompt `none`, M = 1024).

    L(A): whole text response, cut to M - len(prompt tokens) + 1. L(A|Q): part text of prompt + response,
    cut to M. IFD is the PPL ratio (`put_analysis_to_data.py`); L(Q) and L(Q|A) are not measured.
    """

    name = "superfiltering"
    max_length = 1024

    def prompt(self, candidate: Candidate) -> str:
        """The instruction (and input), each followed by a newline."""
        if candidate.input:
            return SUPERFILTERING_PROMPT_INPUT.format_map(
                {"instruction": candidate.instruction, "input": candidate.input}
            )
        return SUPERFILTERING_PROMPT_NO_INPUT.format_map({"instruction": candidate.instruction})

    def texts(self, candidate: Candidate) -> list[str]:
        prompt = self.prompt(candidate)
        return [prompt, candidate.response, prompt + candidate.response]

    def encode(self, candidate: Candidate, tokenizer: ResearchTokenizer, max_length: int) -> EncodedCandidate:
        prompt = self.prompt(candidate)
        n_prompt = len(tokenizer.encode(prompt, max_length))
        a, a_cut = tokenizer.whole_text(candidate.response, max_length - n_prompt + 1, "L(A)")
        a_given_q, aq_cut = tokenizer.part_text(prompt + candidate.response, candidate.response, max_length, "L(A|Q)")
        return EncodedCandidate(spans={RESPONSE_GIVEN_INSTRUCTION: a_given_q, RESPONSE: a}, truncated=a_cut or aq_cut)


RESEARCH_TEMPLATES: dict[str, ResearchTemplate] = {
    template.name: template for template in (CherryTemplate(), ReflectionTemplate(), SuperfilteringTemplate())
}


class ResearchEncoder:
    """Encodes candidates with a research template, M = the template's maximum length capped at `max_length`."""

    def __init__(self, template: ResearchTemplate, tokenizer: Any, max_length: int) -> None:
        self.template = template
        self.name = template.name
        self.max_length = min(template.max_length, max_length)
        self._tokenizer = tokenizer

    def encode(self, candidates: Sequence[Candidate]) -> list[EncodedCandidate | CandidateError]:
        """Encode every candidate; a candidate that cannot be scored yields its CandidateError."""
        tokenizer = ResearchTokenizer(self._tokenizer)
        tokenizer.prefetch(text for candidate in candidates for text in self.template.texts(candidate))
        results: list[EncodedCandidate | CandidateError] = []
        for candidate in candidates:
            if not candidate.response:
                # All three scripts skip an empty output (or score an empty span: NaN).
                results.append(CandidateError("empty response: there is no A span to score"))
                continue
            try:
                results.append(self.template.encode(candidate, tokenizer, self.max_length))
            except CandidateError as exc:
                results.append(exc)
        return results
