"""From examples and eval items to token rows in the job's template, and from rows to training batches.

A row is rendered by the scoring engine's own template (workers/scoring/templates.py) and tokenized whole with
true offsets, exactly as the scorer tokenizes its forward text: `<start> prompt response` (the `plain` template:
`<start> instruction [\\n\\n input] \\n\\n response`), then the end token. The response tokens are those whose
start offset lies inside the response's characters, as the scorer's A span; the loss covers them and the end
token. So the prompt a probe trains on is the prompt the student was scored with.

The research templates (`cherry`, `reflection`, `superfiltering`) train on their repository's prompt followed
directly by the response, as their scripts score it, with the same start token as the two-pass templates.

A row longer than the student's maximum length is cut from its end (the response's tail and the end token go
first); a row whose response starts beyond the limit is left out, since it would teach nothing.
"""

from __future__ import annotations

import random
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch

from core.scores import Candidate
from workers.scoring.research import ResearchTemplate
from workers.scoring.templates import RenderedText, SpanTokenizer, Template, TemplateError, resolve_template

# Label of a position the loss ignores (transformers' convention).
IGNORED = -100


class PromptFields(Protocol):
    """What a prompt is rendered from: an instruction and an optional input."""

    @property
    def instruction(self) -> str: ...

    @property
    def input(self) -> str: ...


class Supervised(PromptFields, Protocol):
    """A prompt and the response the loss is taken on (core.probes.TrainingExample)."""

    @property
    def response(self) -> str: ...


@runtime_checkable
class _PromptedTemplate(Protocol):
    """A research template that exposes its repository's prompt around the instruction (all three do)."""

    def prompt(self, candidate: Candidate) -> str: ...


@dataclass(frozen=True, slots=True)
class Row:
    """One sequence's token ids and the position where its labelled part (the response) starts."""

    ids: tuple[int, ...]
    response_start: int

    @property
    def prompt_ids(self) -> tuple[int, ...]:
        """The tokens before the response: what greedy generation is given."""
        return self.ids[: self.response_start]


class PromptEncoder:
    """Renders and tokenizes prompts and responses for one student and one template."""

    def __init__(self, tokenizer: Any, template: str, *, max_length: int) -> None:
        start_id = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        if start_id is None or tokenizer.eos_token_id is None:
            raise ValueError("the student's tokenizer has no end-of-sequence token to end a response with")
        self.start_id = int(start_id)
        self.end_id = int(tokenizer.eos_token_id)
        # Padding is masked out by the attention mask and the labels, so any id will do; GPT-2 pads with eos.
        self.pad_id = int(tokenizer.pad_token_id) if tokenizer.pad_token_id is not None else self.end_id
        self.max_length = max_length
        start_token = tokenizer.convert_ids_to_tokens(self.start_id)
        self.template: Template | ResearchTemplate = resolve_template(template, tokenizer, start_token)
        self._tokenizer = SpanTokenizer(tokenizer)

    def rows(self, texts: Sequence[Supervised]) -> list[Row]:
        """Each text's full row, `<start> prompt response <end>`, uncut (see `fit` for the maximum length)."""
        rendered = [self._render(text) for text in texts]
        # The text ends where the response ends: markup a template puts after it (a chat turn's end) is not
        # trained on; the end token stands for it.
        encoded = self._tokenizer.encode([forward.text[: forward.a_chars[1]] for forward in rendered])
        rows: list[Row] = []
        for forward, (ids, starts) in zip(rendered, encoded, strict=True):
            shift = 0 if forward.starts_with_start_token else 1
            full = ids if shift == 0 else [self.start_id, *ids]
            # The first token that starts inside the response, as the scorer's A span (encoding._span).
            first = bisect_left(starts, forward.a_chars[0])
            rows.append(Row(ids=(*full, self.end_id), response_start=max(1, first + shift)))
        return rows

    def fit(self, row: Row) -> Row | None:
        """`row` cut to the maximum length from its end, or None when no response token is left."""
        if row.response_start >= min(len(row.ids), self.max_length):
            return None
        return Row(ids=row.ids[: self.max_length], response_start=row.response_start)

    def training_rows(self, examples: Sequence[Supervised]) -> list[Row]:
        """The rows of every example that keeps a response token within the maximum length."""
        return [fitted for row in self.rows(examples) if (fitted := self.fit(row)) is not None]

    def generation_prompt(self, row: Row) -> tuple[int, ...]:
        """`row`'s prompt, cut to its last tokens when it leaves no room for a new one."""
        prompt = row.prompt_ids
        if len(prompt) < self.max_length:
            return prompt
        # Keeping the end keeps the separator (or the template header) that the response follows, which is what
        # tells the student to start answering; the instruction loses its start instead.
        return prompt[len(prompt) - self.max_length + 1 :]

    def _render(self, text: Supervised) -> RenderedText:
        candidate = Candidate(instruction=text.instruction, response=text.response, input=text.input)
        template = self.template
        if isinstance(template, ResearchTemplate):
            if not isinstance(template, _PromptedTemplate):
                raise TemplateError(f"the {template.name} template has no training prompt")
            prompt = template.prompt(candidate)
            end = len(prompt) + len(text.response)
            return RenderedText(text=prompt + text.response, q_chars=(0, len(prompt)), a_chars=(len(prompt), end))
        return template.render(template.prompt_of(candidate), text.response, candidate).forward


def padded_batch(rows: Sequence[Row], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded model inputs for `rows`: ids, attention mask, and labels on the response tokens only."""
    width = max(len(row.ids) for row in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORED, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for index, row in enumerate(rows):
        ids = torch.tensor(row.ids, dtype=torch.long)
        input_ids[index, : len(ids)] = ids
        labels[index, row.response_start : len(ids)] = ids[row.response_start :]
        mask[index, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def epoch_batches(rows: Sequence[Row], size: int, rng: random.Random) -> Iterator[list[Row]]:
    """Endless batches of `size` rows, epoch by epoch, each a fresh shuffle drawn from `rng`.

    Small sets repeat; large sets are sampled without replacement. Every condition of a probe takes the same
    number of steps of the same batch size, whatever its size, so their costs compare.
    """
    if not rows:
        raise ValueError("no rows to batch")
    order: list[int] = []
    while True:
        batch: list[Row] = []
        while len(batch) < size:
            if not order:
                order = list(range(len(rows)))
                rng.shuffle(order)
            batch.append(rows[order.pop()])
        yield batch


def training_batches(
    rows: Sequence[Row], size: int, rng: random.Random, pad_id: int
) -> Iterator[dict[str, torch.Tensor]]:
    """`epoch_batches` as padded model inputs."""
    return (padded_batch(batch, pad_id) for batch in epoch_batches(rows, size, rng))
