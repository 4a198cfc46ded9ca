"""What a fine-tuned student can do on held-out problems: greedy exact match and the held-out loss.

Exact match: each item's prompt (rendered in the job's template, as in training) is completed greedily, and
the answer read from the completion (core.probes.extract_answer: the user's pattern, else the last `Answer:`
line, else the last number) must equal the item's answer. Held-out loss: the mean teacher-forced loss per token of the
items' reference responses (and their end token, as training counts it), so the curve's loss is the training
objective measured on problems the student never saw.

Both run in the weights' own precision, without autocast: a measurement should not move with the kernels.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from core.probes import EvalItem, TrainingExample, extract_answer, normalize_answer
from workers.probing.data import IGNORED, PromptEncoder, Row, padded_batch

# Prompts completed together. Rows of the held-out loss are grouped up to this many tokens, which bounds the
# logits tensor (tokens x vocabulary) for students with large vocabularies.
GENERATION_BATCH = 128
LOSS_BATCH_TOKENS = 4096


@dataclass(frozen=True, slots=True)
class Completions:
    """Greedy completions of the eval items, in their order, and the fraction whose answer is exact."""

    texts: tuple[str, ...]
    correct: tuple[bool, ...]

    @property
    def exact_match(self) -> float:
        """The fraction of items answered exactly."""
        return sum(self.correct) / len(self.correct) if self.correct else float("nan")


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _end_ids(model: Any, end_id: int) -> list[int]:
    """The tokens that end a completion: the tokenizer's end token and any the model's generation config adds."""
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    extra = configured if isinstance(configured, list) else [] if configured is None else [configured]
    return list(dict.fromkeys([end_id, *(int(token) for token in extra)]))


def greedy_completions(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    max_length: int,
    end_id: int,
    pad_id: int,
    batch_size: int = GENERATION_BATCH,
) -> list[str]:
    """Greedy completions of token-id prompts, batched with left padding, decoded without special tokens."""
    target = _device(model)
    # Equal-length prompts batch without padding; the order is restored afterwards.
    by_length = sorted(range(len(prompts)), key=lambda index: len(prompts[index]))
    completions = [""] * len(prompts)
    end_ids = _end_ids(model, end_id)
    model.eval()
    with torch.inference_mode():
        for offset in range(0, len(by_length), batch_size):
            group = by_length[offset : offset + batch_size]
            width = max(len(prompts[index]) for index in group)
            input_ids = torch.full((len(group), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(group), width), dtype=torch.long)
            for row, index in enumerate(group):
                ids = prompts[index]
                input_ids[row, width - len(ids) :] = torch.tensor(list(ids), dtype=torch.long)
                mask[row, width - len(ids) :] = 1
            output = model.generate(
                input_ids=input_ids.to(target),
                attention_mask=mask.to(target),
                max_new_tokens=max(1, min(max_new_tokens, max_length - width)),
                do_sample=False,
                eos_token_id=end_ids,
                pad_token_id=pad_id,
            )
            for row, index in enumerate(group):
                completions[index] = tokenizer.decode(output[row, width:], skip_special_tokens=True)
    return completions


def held_out_loss(
    model: Any, rows: Sequence[Row], pad_id: int, *, batch_tokens: int = LOSS_BATCH_TOKENS
) -> float | None:
    """Mean teacher-forced loss per labelled token of `rows` (None without a labelled token)."""
    target = _device(model)
    ordered = sorted(rows, key=lambda row: len(row.ids))
    total = torch.zeros((), dtype=torch.float64)
    count = 0
    model.eval()
    with torch.inference_mode():
        start = 0
        while start < len(ordered):
            # Sorted by length, so the group's last row is its widest.
            stop = start + 1
            while stop < len(ordered) and (stop + 1 - start) * len(ordered[stop].ids) <= batch_tokens:
                stop += 1
            batch = {name: tensor.to(target) for name, tensor in padded_batch(ordered[start:stop], pad_id).items()}
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            labels = batch["labels"][:, 1:]
            losses = torch.nn.functional.cross_entropy(
                logits[:, :-1].float().reshape(-1, logits.shape[-1]),
                labels.reshape(-1),
                ignore_index=IGNORED,
                reduction="sum",
            )
            total += losses.double().cpu()
            count += int((labels != IGNORED).sum())
            start = stop
    return float(total) / count if count else None


class Evaluator:
    """The eval items of one probe, encoded once, measured after any number of training steps."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        encoder: PromptEncoder,
        items: Sequence[EvalItem],
        *,
        max_new_tokens: int,
        answer_pattern: re.Pattern[str] | None = None,
        batch_size: int = GENERATION_BATCH,
    ) -> None:
        self.model = model
        self.items = tuple(items)
        self._tokenizer = tokenizer
        self._encoder = encoder
        self._pattern = answer_pattern
        self._max_new_tokens = max_new_tokens
        self._batch_size = batch_size
        # One rendering per item serves both: its prompt is the generation prompt, its reference the loss target.
        references = [TrainingExample(item.instruction, item.input, item.reference) for item in self.items]
        rows = encoder.rows(references)
        self._prompts = [encoder.generation_prompt(row) for row in rows]
        self._loss_rows = [fitted for row in rows if (fitted := encoder.fit(row)) is not None]
        self._answers = [normalize_answer(item.answer) for item in self.items]

    def completions(self) -> Completions:
        """Greedy completions of every item and which of them carry the exact answer."""
        texts = greedy_completions(
            self.model,
            self._tokenizer,
            self._prompts,
            max_new_tokens=self._max_new_tokens,
            max_length=self._encoder.max_length,
            end_id=self._encoder.end_id,
            pad_id=self._encoder.pad_id,
            batch_size=self._batch_size,
        )
        correct = [
            extract_answer(text, self._pattern) == answer for text, answer in zip(texts, self._answers, strict=True)
        ]
        return Completions(texts=tuple(texts), correct=tuple(correct))

    def loss(self) -> float | None:
        """The held-out loss of the items' reference responses (None when no reference fits the student)."""
        return held_out_loss(self.model, self._loss_rows, self._encoder.pad_id)
