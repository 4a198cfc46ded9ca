"""The experiment's student: a character-level GPT-2 checkpoint, its pre-training, fine-tuning and evaluation.

The checkpoint is an ordinary local Hugging Face directory (config.json, model.safetensors, a fast tokenizer),
so `frontier curate` loads it like any user's student. Fine-tuning and evaluation are written for any causal
LM checkpoint (the GPU recipe passes a real one): prompts are rendered exactly as the scoring engine's
`plain` template renders them, `<start> instruction [\\n\\n input] \\n\\n response <eos>`, the loss covers the
response and the end token only, and answers are read back by greedy decoding. Every training run goes through
the example student's schedule and loop (examples/training.py).
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
import string
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.experiment.task import PRETRAIN_DIGITS, pretraining_documents
from examples.corpus import SEP, format_prompt
from examples.training import END_OF_TEXT, Schedule, new_gpt2, train, wrap_tokenizer

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

STAMP = "experiment-student.json"
# Every printable ASCII character, so any text the engine renders (templates included) tokenizes without loss.
ALPHABET = string.printable
# A training row: its token ids, and where the labelled part (the loss) starts.
Row = tuple[list[int], int]


@dataclass(frozen=True, slots=True)
class StudentPlan(Schedule):
    """Shape and pre-training recipe of the character-level student."""

    steps: int = 800
    batch_size: int = 32
    peak_lr: float = 3e-3
    warmup_steps: int = 30
    adam_beta2: float = 0.99
    n_layer: int = 3
    n_embd: int = 64
    n_head: int = 4
    # Enough for the longest out-of-distribution solution (five digits, column by column: about 120 characters).
    n_positions: int = 128
    digits: tuple[int, ...] = PRETRAIN_DIGITS


@dataclass(frozen=True, slots=True)
class FineTunePlan(Schedule):
    """The fine-tuning recipe shared by every condition: the same optimiser steps whatever the data size."""

    steps: int = 500
    batch_size: int = 16
    peak_lr: float = 1e-3
    warmup_steps: int = 20
    weight_decay: float = 0.0


@dataclass(frozen=True, slots=True)
class Example:
    """One supervised example in the plain layout."""

    instruction: str
    input: str
    response: str

    @property
    def prompt(self) -> str:
        """The prompt text exactly as the plain template renders it, separator included."""
        return format_prompt(self.instruction, self.input) + SEP


def char_tokenizer(n_positions: int) -> Any:
    """A fast one-token-per-character tokenizer with true offsets, wrapped for transformers."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    vocab = {END_OF_TEXT: 0, **{char: index + 1 for index, char in enumerate(ALPHABET)}}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=END_OF_TEXT))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    return wrap_tokenizer(backend, n_positions)


def pretrain_student(out_dir: Path, seed: int, plan: StudentPlan) -> Path:
    """Pre-train the student on the easy end of the task (reused when `out_dir` holds the same build)."""
    import torch

    key = {"seed": seed, "plan": asdict(plan), "alphabet": ALPHABET}
    stamp = out_dir / STAMP
    if stamp.exists() and json.loads(stamp.read_text()).get("key") == key:
        return out_dir
    tokenizer = char_tokenizer(plan.n_positions)
    eot = tokenizer.convert_tokens_to_ids(END_OF_TEXT)
    torch.manual_seed(seed)
    model = new_gpt2(
        vocab_size=len(tokenizer),
        eot_id=eot,
        dropout=0.0,
        n_positions=plan.n_positions,
        n_layer=plan.n_layer,
        n_embd=plan.n_embd,
        n_head=plan.n_head,
    )
    documents = pretraining_documents(random.Random(f"frontier-experiment-pretrain-{seed}"), plan.digits)
    batches = (_document_batch(documents, tokenizer, plan, eot) for _ in range(plan.steps))
    started = time.perf_counter()

    def progress(step: int, losses: list[float]) -> None:
        if (step + 1) % 100 == 0:
            log.info("pretrain seed %d step %d/%d loss %.3f", seed, step + 1, plan.steps, sum(losses[-20:]) / 20)

    losses = train(model, batches, plan, progress)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    report = {"loss_end": round(sum(losses[-20:]) / 20, 4), "seconds": round(time.perf_counter() - started, 1)}
    stamp.write_text(json.dumps({"key": key, "report": report}, indent=2) + "\n")
    return out_dir


def _document_batch(documents: Iterator[str], tokenizer: Any, plan: StudentPlan, eot: int) -> dict[str, torch.Tensor]:
    """One easy problem per row, `<eot> prompt \\n\\n response <eot>`, right-padded; the loss covers every token.

    One document per row, starting at position 0 as prompts do at fine-tuning and scoring time, lets absolute
    position embeddings carry the digit look-ups: packed rows (documents at random offsets) learned far slower.
    """
    rows = [
        ([eot, *tokenizer.encode(next(documents), add_special_tokens=False), eot][: plan.n_positions], 0)
        for _ in range(plan.batch_size)
    ]
    return _padded_batch(rows, eot)


def _padded_batch(rows: Sequence[Row], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded model inputs (ids, attention mask, labels) for `rows`."""
    import torch

    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for row, (ids, start) in enumerate(rows):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, start : len(ids)] = torch.tensor(ids[start:])
        mask[row, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def _device(name: str) -> torch.device:
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _encode_example(tokenizer: Any, example: Example, start_id: int, end_id: int) -> tuple[list[int], int]:
    """Token ids of `<start> prompt response <end>` and where the response begins (its tokens are the labels)."""
    prompt_ids = tokenizer.encode(example.prompt, add_special_tokens=False)
    response_ids = tokenizer.encode(example.response, add_special_tokens=False)
    return [start_id, *prompt_ids, *response_ids, end_id], 1 + len(prompt_ids)


def fine_tune(
    student_dir: Path, examples: Sequence[Example], out_dir: Path, plan: FineTunePlan, seed: int, device: str = "auto"
) -> dict[str, Any]:
    """Fine-tune a copy of the student on `examples` for exactly `plan.steps` steps; saves it to `out_dir`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not examples:
        raise ValueError("no training examples")
    tokenizer = AutoTokenizer.from_pretrained(student_dir)
    model = AutoModelForCausalLM.from_pretrained(student_dir).to(_device(device))
    start_id = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    max_length = int(getattr(model.config, "n_positions", None) or tokenizer.model_max_length)
    encoded = [_encode_example(tokenizer, example, start_id, tokenizer.eos_token_id) for example in examples]
    encoded = [(ids[:max_length], start) for ids, start in encoded if start < min(len(ids), max_length)]
    batches = _epoch_batches(encoded, plan.batch_size, random.Random(f"frontier-experiment-finetune-{seed}"))
    torch.manual_seed(seed)
    started = time.perf_counter()
    losses = train(model, (_padded_batch(rows, tokenizer.eos_token_id) for rows in batches), plan)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    tail = losses[-max(1, len(losses) // 10) :]
    return {
        "examples": len(encoded),
        "epochs": round(plan.steps * plan.batch_size / len(encoded), 2),
        "loss_end": round(sum(tail) / len(tail), 4),
        "seconds": round(time.perf_counter() - started, 1),
    }


def _epoch_batches(rows: Sequence[Row], size: int, rng: random.Random) -> Iterator[list[Row]]:
    """Endless batches of `size` rows, epoch by epoch, each a fresh shuffle.

    Small sets repeat; large sets are sampled without replacement.
    """
    order: list[int] = []
    while True:
        batch: list[Row] = []
        while len(batch) < size:
            if not order:
                order = list(range(len(rows)))
                rng.shuffle(order)
            batch.append(rows[order.pop()])
        yield batch


ANSWER = re.compile(r"Answer:\s*(-?[\d,]*\d)")
NUMBER = re.compile(r"-?\d[\d,]*")


def extract_answer(text: str) -> str | None:
    """The last `Answer: N` in a completion, else its last number, without thousands separators."""
    found = ANSWER.findall(text) or NUMBER.findall(text)
    return found[-1].replace(",", "") if found else None


@dataclass(frozen=True, slots=True)
class EvalItem:
    """A held-out problem: the prompt fields and the exact answer."""

    instruction: str
    input: str
    answer: str


def evaluate(
    model_dir: Path,
    items: Sequence[EvalItem],
    *,
    max_new_tokens: int,
    batch_size: int = 128,
    device: str = "auto",
) -> dict[str, Any]:
    """Exact-match accuracy of greedy completions on `items`, with a few completions for inspection."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = _device(device)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).to(target).eval()
    start_id = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    limit = int(getattr(model.config, "n_positions", None) or tokenizer.model_max_length)
    prompts = [
        [start_id, *tokenizer.encode(Example(item.instruction, item.input, "").prompt, add_special_tokens=False)]
        for item in items
    ]
    # Equal-length prompts batch without padding; the order is restored afterwards.
    by_length = sorted(range(len(items)), key=lambda index: len(prompts[index]))
    completions: list[str] = [""] * len(items)
    with torch.inference_mode():
        for offset in range(0, len(by_length), batch_size):
            group = by_length[offset : offset + batch_size]
            width = max(len(prompts[index]) for index in group)
            input_ids = torch.full((len(group), width), tokenizer.eos_token_id, dtype=torch.long)
            mask = torch.zeros((len(group), width), dtype=torch.long)
            for row, index in enumerate(group):
                ids = prompts[index]
                input_ids[row, width - len(ids) :] = torch.tensor(ids)
                mask[row, width - len(ids) :] = 1
            new_tokens = max(1, min(max_new_tokens, limit - width))
            output = model.generate(
                input_ids=input_ids.to(target),
                attention_mask=mask.to(target),
                max_new_tokens=new_tokens,
                do_sample=False,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.eos_token_id,
            )
            for row, index in enumerate(group):
                completions[index] = tokenizer.decode(output[row, width:], skip_special_tokens=True)
    correct = [extract_answer(text) == item.answer for text, item in zip(completions, items, strict=True)]
    return {
        "accuracy": sum(correct) / len(items) if items else math.nan,
        "n": len(items),
        "samples": [
            {"answer": item.answer, "completion": text} for item, text in zip(items[:3], completions[:3], strict=True)
        ],
    }
