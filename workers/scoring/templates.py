"""How a candidate becomes the two token sequences the student scores, and which tokens count.

Every two-pass template renders two texts per candidate, each with two character ranges:
- forward:  the prompt P then the response A; Q span = P's range, A span = A's range;
- backward: the response A (or a prompt wrapping it) then P; A span and Q span likewise.
Each text is tokenized once, whole, and a span is the run of tokens whose *start* offset lies inside its
character range (never by encoding the parts separately, which can move a boundary by a token). Tokens
that start elsewhere (separators, template markup) are context only and never scored.

`plain` is the exact reference definition: P = instruction (+ "\n\n" + input), SEP = "\n\n",
forward = [S] + tokens(P + SEP + A), backward = [S] + tokens(A + SEP + P), S = BOS (or EOS without BOS).
`alpaca` uses Stanford Alpaca's headers but ends the prompt "### Response:\n" (Stanford Alpaca and Cherry LLM
end it "### Response:", no newline) and measures L(A) inside our reverse prompt, so its numbers are not the
published ones: `cherry` is. `chat` renders the same roles through the student tokenizer's chat template, or
`alpaca` when it has none; its backward text is our wording of a "write the instruction this response
answers" prompt, after the reverse prompt of Selective Reflection-Tuning (Li et al., ACL Findings 2024). In
`chat` and `alpaca`, L(A) is measured inside that fixed, instruction-free reverse prompt: the price of two
passes, not four. The research templates (`cherry`, `reflection`, `superfiltering`) are in research.py.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tokenizers import Tokenizer

from core.scores import Candidate
from core.templates import check_template
from workers.scoring.research import RESEARCH_TEMPLATES, ResearchTemplate

SEP = "\n\n"

# Stanford Alpaca's headers; our prompt adds "\n" after "### Response:" (theirs: research.py CHERRY_PROMPT_*).
ALPACA_HEADER = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request."
)
ALPACA_HEADER_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request."
)
# Our wording of the reverse ("guess the instruction") prompt used for r-IFD.
REVERSE_HEADER = "Below is a response written by an AI assistant. Write the instruction that this response answers."
REVERSE_USER_PREFIX = REVERSE_HEADER + "\n\n### Response:\n"


class TemplateError(ValueError):
    """A candidate that cannot be rendered by the chosen template (the message says why)."""


@dataclass(frozen=True, slots=True)
class RenderedText:
    """One text to tokenize, with the character ranges of its prompt (Q) and response (A) spans."""

    text: str
    q_chars: tuple[int, int]
    a_chars: tuple[int, int]
    # Whether the text already starts with the start token's string (chat templates often render BOS).
    starts_with_start_token: bool = False


@dataclass(frozen=True, slots=True)
class RenderedCandidate:
    """Both texts of a candidate: forward (P then A) and backward (A then P)."""

    forward: RenderedText
    backward: RenderedText


class Template(Protocol):
    """Renders a candidate's forward and backward texts; `name` is recorded with every result."""

    name: str

    def render(self, prompt: str, response: str, candidate: Candidate) -> RenderedCandidate: ...

    def prompt_of(self, candidate: Candidate) -> str: ...


def plain_prompt(candidate: Candidate) -> str:
    """P of the plain template: the instruction, plus the input after a blank line when there is one."""
    return candidate.instruction + (SEP + candidate.input if candidate.input else "")


class PlainTemplate:
    """The exact reference definition (see module docstring)."""

    name = "plain"

    def prompt_of(self, candidate: Candidate) -> str:
        return plain_prompt(candidate)

    def render(self, prompt: str, response: str, candidate: Candidate) -> RenderedCandidate:
        forward = RenderedText(
            text=prompt + SEP + response,
            q_chars=(0, len(prompt)),
            a_chars=(len(prompt) + len(SEP), len(prompt) + len(SEP) + len(response)),
        )
        backward = RenderedText(
            text=response + SEP + prompt,
            a_chars=(0, len(response)),
            q_chars=(len(response) + len(SEP), len(response) + len(SEP) + len(prompt)),
        )
        return RenderedCandidate(forward=forward, backward=backward)


class AlpacaTemplate:
    """Alpaca-style prompt ending "### Response:\n"; P covers the instruction and, when present, the input section."""

    name = "alpaca"

    def prompt_of(self, candidate: Candidate) -> str:
        if candidate.input:
            return candidate.instruction + "\n\n### Input:\n" + candidate.input
        return candidate.instruction

    def render(self, prompt: str, response: str, candidate: Candidate) -> RenderedCandidate:
        header = ALPACA_HEADER_WITH_INPUT if candidate.input else ALPACA_HEADER
        head = header + "\n\n### Instruction:\n"
        middle = "\n\n### Response:\n"
        forward_text = head + prompt + middle + response
        a_start = len(head) + len(prompt) + len(middle)
        forward = RenderedText(
            text=forward_text,
            q_chars=(len(head), len(head) + len(prompt)),
            a_chars=(a_start, a_start + len(response)),
        )
        reverse_middle = "\n\n### Instruction:\n"
        backward_text = REVERSE_USER_PREFIX + response + reverse_middle + prompt
        q_start = len(REVERSE_USER_PREFIX) + len(response) + len(reverse_middle)
        backward = RenderedText(
            text=backward_text,
            a_chars=(len(REVERSE_USER_PREFIX), len(REVERSE_USER_PREFIX) + len(response)),
            q_chars=(q_start, q_start + len(prompt)),
        )
        return RenderedCandidate(forward=forward, backward=backward)


class ChatTemplate:
    """The student tokenizer's own chat template: user = P, assistant = A (reverse prompt for backward)."""

    name = "chat"

    def __init__(self, tokenizer: Any, start_token: str | None) -> None:
        self._tokenizer = tokenizer
        self._start_token = start_token

    def prompt_of(self, candidate: Candidate) -> str:
        return plain_prompt(candidate)

    def render(self, prompt: str, response: str, candidate: Candidate) -> RenderedCandidate:
        forward = self._render_turns(prompt, response, q_first=True)
        backward = self._render_turns(REVERSE_USER_PREFIX + response, prompt, q_first=False)
        return RenderedCandidate(forward=forward, backward=backward)

    def _render_turns(self, user: str, assistant: str, *, q_first: bool) -> RenderedText:
        messages = [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
        text = self._tokenizer.apply_chat_template(messages, tokenize=False)
        if not isinstance(text, str):
            raise TemplateError("the student's chat template did not render to text")
        user_at = text.find(user)
        assistant_at = text.find(assistant, user_at + len(user)) if user_at >= 0 else -1
        if user_at < 0 or assistant_at < 0:
            # Templates that rewrite content (strip, escape) would make the spans unfindable, hence unscored.
            raise TemplateError("the student's chat template altered the message text, so spans cannot be found")
        user_range = (user_at, user_at + len(user))
        assistant_range = (assistant_at, assistant_at + len(assistant))
        if q_first:
            q_chars, a_chars = user_range, assistant_range
        else:
            # Backward: the response sits after the reverse-prompt preamble inside the user turn.
            a_chars = (user_at + len(REVERSE_USER_PREFIX), user_range[1])
            q_chars = assistant_range
        starts = self._start_token is not None and text.startswith(self._start_token)
        return RenderedText(text=text, q_chars=q_chars, a_chars=a_chars, starts_with_start_token=starts)


def resolve_template(name: str, tokenizer: Any, start_token: str | None) -> Template | ResearchTemplate:
    """`plain`, `alpaca`, `chat` (the tokenizer's chat template if it has one, else `alpaca`), or a research one."""
    known = check_template(name)
    if known in RESEARCH_TEMPLATES:
        return RESEARCH_TEMPLATES[known]
    if known == "plain":
        return PlainTemplate()
    if known == "chat" and getattr(tokenizer, "chat_template", None):
        return ChatTemplate(tokenizer, start_token)
    return AlpacaTemplate()


class SpanTokenizer:
    """Tokenizes whole texts with true (untrimmed) character offsets and no added special tokens."""

    def __init__(self, tokenizer: Any) -> None:
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if not isinstance(backend, Tokenizer):
            raise TypeError("the student's tokenizer must be a fast (Rust-backed) tokenizer to report offsets")
        # Post-processors may trim offsets past leading spaces (ByteLevel trim_offsets), which would move
        # a token's start across a span boundary; special tokens are added by the engine itself.
        self._backend = copy.deepcopy(backend)
        self._backend.post_processor = None
        self._backend.no_truncation()
        self._backend.no_padding()

    def encode(self, texts: Sequence[str]) -> list[tuple[list[int], list[int]]]:
        """Token ids and token start offsets for each text."""
        encodings = self._backend.encode_batch(list(texts), add_special_tokens=False)
        return [(list(e.ids), [start for start, _ in e.offsets]) for e in encodings]
