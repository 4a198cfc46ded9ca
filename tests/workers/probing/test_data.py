"""The probe's rows: the experiment's plain encoding, the scorer's forward sequence, every template's response."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoTokenizer

from bench.experiment.student import char_tokenizer
from core.probes import TrainingExample
from core.scores import Candidate
from core.templates import TEMPLATES
from examples.corpus import SEP, format_prompt
from workers.probing.data import IGNORED, PromptEncoder, Row, epoch_batches, padded_batch
from workers.scoring.encoding import CandidateEncoder
from workers.scoring.spans import RESPONSE_GIVEN_INSTRUCTION, EncodedCandidate
from workers.scoring.templates import AlpacaTemplate, PlainTemplate, SpanTokenizer

TEXTS = [
    TrainingExample("Add 4821 and 3975.", "", "4821 + 3975:\n1+5=6\nAnswer: 8796"),
    TrainingExample("Sort the list.", "pear, apple, fig", "apple, fig, pear"),
    TrainingExample("Say nothing.", "", ""),
    # Longer than the experiment student's 128 positions: cut from its end.
    TrainingExample("Repeat " + "ab" * 40, "", "Answer: " + "9" * 60),
    # Its response would start beyond the limit: left out.
    TrainingExample("x" * 130, "", "Answer: 1"),
]


def _old_experiment_row(tokenizer: Any, text: TrainingExample) -> tuple[list[int], int]:
    """bench/experiment/student.py before the engine: prompt and response encoded apart, then joined."""
    start_id, end_id = tokenizer.bos_token_id, tokenizer.eos_token_id
    prompt_ids = tokenizer.encode(format_prompt(text.instruction, text.input) + SEP, add_special_tokens=False)
    response_ids = tokenizer.encode(text.response, add_special_tokens=False)
    return [start_id, *prompt_ids, *response_ids, end_id], 1 + len(prompt_ids)


def test_plain_rows_are_the_experiments_tokens() -> None:
    """The plain template through the engine gives the experiment's ids, labels, cut and generation prompts."""
    tokenizer = char_tokenizer(128)
    encoder = PromptEncoder(tokenizer, "plain", max_length=128)
    for text, row in zip(TEXTS, encoder.rows(TEXTS), strict=True):
        ids, start = _old_experiment_row(tokenizer, text)
        assert (list(row.ids), row.response_start) == (ids, start)
        fitted = encoder.fit(row)
        if start < min(len(ids), 128):
            assert fitted == Row(ids=tuple(ids[:128]), response_start=start)
        else:
            assert fitted is None
        # The experiment's evaluation prompt: `<start> prompt \n\n`, the response left to the student.
        if len(ids[:start]) < 128:
            assert list(encoder.generation_prompt(row)) == ids[:start]
    assert len(encoder.training_rows(TEXTS)) == len(TEXTS) - 1


@pytest.mark.parametrize("template", [PlainTemplate(), AlpacaTemplate()], ids=lambda template: template.name)
def test_rows_are_the_scorers_forward_sequences(
    gpt2_student_dir: Path, template: PlainTemplate | AlpacaTemplate
) -> None:
    """The probe trains on the tokens the scorer scores L(A|Q) on: same ids, same first response token."""
    tokenizer = AutoTokenizer.from_pretrained(gpt2_student_dir)
    encoder = PromptEncoder(tokenizer, template.name, max_length=256)
    scorer = CandidateEncoder(template, SpanTokenizer(tokenizer), encoder.start_id, 256)
    texts = TEXTS[:2]
    candidates = [Candidate(text.instruction, text.response, text.input) for text in texts]
    for row, scored in zip(encoder.rows(texts), scorer.encode(candidates), strict=True):
        assert isinstance(scored, EncodedCandidate)
        span = scored.spans[RESPONSE_GIVEN_INSTRUCTION]
        assert row.ids == (*span.ids, encoder.end_id)
        assert row.response_start == span.start


@pytest.mark.parametrize("template", TEMPLATES)
def test_the_labels_are_the_response_and_the_end_token(gpt2_student_dir: Path, template: str) -> None:
    """In every template the loss covers exactly the response's tokens and the end token."""
    tokenizer = AutoTokenizer.from_pretrained(gpt2_student_dir)
    encoder = PromptEncoder(tokenizer, template, max_length=256)
    rows = encoder.rows(TEXTS[:2])
    batch = padded_batch(rows, encoder.pad_id)
    for index, (text, row) in enumerate(zip(TEXTS[:2], rows, strict=True)):
        assert row.ids[0] == encoder.start_id
        assert row.ids[-1] == encoder.end_id
        assert tokenizer.decode(list(row.ids[row.response_start : -1])) == text.response
        labels = batch["labels"][index]
        labelled = labels[labels != IGNORED].tolist()
        assert labelled == list(row.ids[row.response_start :])
        assert int(batch["attention_mask"][index].sum()) == len(row.ids)


def test_epoch_batches_cover_every_row_before_repeating() -> None:
    """Each epoch is a fresh shuffle of every row; the same generator seed gives the same order."""
    import random

    rows = [Row(ids=(0, index, 0), response_start=1) for index in range(5)]
    batches = epoch_batches(rows, 2, random.Random("seed"))
    drawn = [row for _ in range(5) for row in next(batches)]
    assert sorted(drawn[:5], key=lambda row: row.ids) == rows
    assert sorted(drawn[5:], key=lambda row: row.ids) == rows
    again = epoch_batches(rows, 2, random.Random("seed"))
    assert [row for _ in range(5) for row in next(again)] == drawn
    assert torch.equal(padded_batch(rows[:2], 0)["input_ids"], torch.tensor([[0, 0, 0], [0, 1, 0]]))


def test_a_chat_template_trains_the_assistant_turn_only(gpt2_student_dir: Path) -> None:
    """With the tokenizer's chat template, the user turn is context; the text stops where the reply ends."""
    tokenizer = AutoTokenizer.from_pretrained(gpt2_student_dir)
    tokenizer.chat_template = "{% for m in messages %}<{{ m.role }}>\n{{ m.content }}\n</{{ m.role }}>\n{% endfor %}"
    encoder = PromptEncoder(tokenizer, "chat", max_length=256)
    (row,) = encoder.rows(TEXTS[1:2])
    assert tokenizer.decode(list(row.ids[1 : row.response_start])).endswith("</user>\n<assistant>\n")
    assert tokenizer.decode(list(row.ids[row.response_start : -1])) == TEXTS[1].response
    assert row.ids[-1] == encoder.end_id
