"""The experiment's student: a character-level GPT-2 checkpoint, its pre-training, fine-tuning and evaluation.

The checkpoint is an ordinary local Hugging Face directory (config.json, model.safetensors, a fast tokenizer),
so `frontier curate` loads it like any user's student. Fine-tuning and evaluation are the probe engine's
(workers/probing), so the experiment and `POST /v1/jobs/{id}/probes` share one implementation, written for any
causal LM checkpoint (the GPU recipe passes a real one): prompts are rendered exactly as the scoring engine's
`plain` template renders them, `<start> instruction [\\n\\n input] \\n\\n response <eos>`, the loss covers the
response and the end token only, and answers are read back by greedy decoding (core.probes.extract_answer).
Pre-training runs the same loop (workers/probing/training.py).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import math
import random
import string
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.experiment.families import FAMILIES
from core.probes import EvalItem as EvalItem  # re-exported: the experiment's CLI builds its items from here
from core.probes import TrainingExample, generation_room
from examples.training import END_OF_TEXT, new_gpt2, wrap_tokenizer
from workers.probing.training import Schedule, train

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

STAMP = "experiment-student.json"
# Every printable ASCII character, so any text the engine renders (templates included) tokenizes without loss.
ALPHABET = string.printable


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
    # Every published and check family's longest training text is at most 90 tokens, so 128 leaves room for
    # its out-of-distribution solutions; a family whose texts do not fit gets more (`student_positions`).
    n_positions: int = 128


@dataclass(frozen=True, slots=True)
class FineTunePlan(Schedule):
    """The fine-tuning recipe shared by every condition: the same optimiser steps whatever the data size."""

    # 8,000 examples in steps of 2 at the peak lr the probe engine picks for this student's width (3e-3): the same
    # examples and tokens as the earlier 500 x 16 at 1e-3, which left every curve still climbing at its last step
    # (docs/experiment.md, "Which recipe is the truth").
    steps: int = 4000
    batch_size: int = 2
    peak_lr: float = 3e-3
    warmup_steps: int = 20
    weight_decay: float = 0.0


# One supervised example; the engine renders it in the plain template.
Example = TrainingExample


def char_tokenizer(n_positions: int) -> Any:
    """A fast one-token-per-character tokenizer with true offsets, wrapped for transformers."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    vocab = {END_OF_TEXT: 0, **{char: index + 1 for index, char in enumerate(ALPHABET)}}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=END_OF_TEXT))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    return wrap_tokenizer(backend, n_positions)


# Generations of the fine-tuned students are at least this long, whatever the family (the experiment's length before
# it was sized from the data; every published and check family's room is smaller, so their runs are unchanged).
MIN_NEW_TOKENS = 112


def longest_texts(records: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    """The longest training text (`<start> prompt response <end>`, in tokens) and response of a family's records.

    Over every record's own response and every teacher's refinement, rendered by the engine's `plain` template
    with the experiment's one-token-per-character tokenizer.
    """
    from workers.probing.data import PromptEncoder

    examples = [
        TrainingExample(record["instruction"], record.get("input", ""), response)
        for record in records
        for response in (record["response"], *(refinement["response"] for refinement in record["refinements"]))
    ]
    if not examples:
        raise ValueError("a family's seed has no training records")
    # `rows` leaves every row uncut (only `fit` applies the maximum length), so any maximum will do here.
    rows = PromptEncoder(char_tokenizer(StudentPlan().n_positions), "plain", max_length=1).rows(examples)
    return max(len(row.ids) for row in rows), max(len(row.ids) - row.response_start for row in rows)


def student_positions(longest_text: int, default: int = StudentPlan().n_positions) -> int:
    """The student's positions for a family whose longest training text has `longest_text` tokens.

    `default` when it fits; else half as much again as that text (room for the harder out-of-distribution
    problems), rounded up to a multiple of 64. Without this a longer text would be cut from its end in every
    fine-tune and probe, and with it the answer that exact match reads.
    """
    if longest_text <= default:
        return default
    return math.ceil(longest_text * 1.5 / 64) * 64


def new_tokens_for(longest_response: int) -> int:
    """Generation length for a family whose longest training response has `longest_response` tokens."""
    return max(MIN_NEW_TOKENS, generation_room(longest_response))


def _build_code(family: str) -> str:
    """A digest of the source that builds a family's student, so a cached build from older code is not reused."""
    from bench.experiment import problems
    from examples import training as model_shapes
    from workers.probing import data, training

    modules = [
        sys.modules[__name__],
        model_shapes,
        data,
        training,
        problems,
        inspect.getmodule(FAMILIES[family].pretraining_documents),
    ]
    digest = hashlib.sha256()
    for module in modules:
        if module is not None:
            digest.update(inspect.getsource(module).encode())
    return digest.hexdigest()[:16]


def pretrain_student(out_dir: Path, seed: int, plan: StudentPlan, family: str = "addition") -> Path:
    """Pre-train the student on the easy end of a task family (reused when `out_dir` holds the same build)."""
    import torch

    key = {"seed": seed, "family": family, "plan": asdict(plan), "alphabet": ALPHABET, "code": _build_code(family)}
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
    # The addition family keeps the stream it had before families existed, so its earlier runs reproduce.
    stream = (
        f"frontier-experiment-pretrain-{seed}"
        if family == "addition"
        else f"frontier-experiment-pretrain-{family}-{seed}"
    )
    documents = FAMILIES[family].pretraining_documents(random.Random(stream))
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
    from workers.probing.data import Row, padded_batch

    rows = [
        Row(
            ids=(eot, *tokenizer.encode(next(documents), add_special_tokens=False), eot)[: plan.n_positions],
            response_start=0,
        )
        for _ in range(plan.batch_size)
    ]
    return padded_batch(rows, eot)


def fine_tune(
    student_dir: Path, examples: Sequence[Example], out_dir: Path, plan: FineTunePlan, seed: int, device: str = "auto"
) -> dict[str, Any]:
    """Fine-tune a copy of the student on `examples` for exactly `plan.steps` steps; saves it to `out_dir`.

    The probe engine's encoding, batching and loop (workers/probing), the whole student trained whatever its size.
    """
    import torch

    from workers.probing.data import PromptEncoder, training_batches
    from workers.probing.student import load_trainable_student

    if not examples:
        raise ValueError("no training examples")
    student = load_trainable_student(student_dir, device=device, lora_above_params=None)
    encoder = PromptEncoder(student.tokenizer, "plain", max_length=student.max_length)
    rows = encoder.training_rows(examples)
    order = random.Random(f"frontier-experiment-finetune-{seed}")
    batches = training_batches(rows, plan.batch_size, order, encoder.pad_id)
    torch.manual_seed(seed)
    tokens = 0

    def counted(batches: Iterator[dict[str, torch.Tensor]]) -> Iterator[dict[str, torch.Tensor]]:
        # The cost every condition pays: tokens fed (prompt and response, no padding), as probes report it.
        nonlocal tokens
        for batch in batches:
            tokens += int(batch["attention_mask"].sum())
            yield batch

    started = time.perf_counter()
    losses = train(student.model, counted(batches), plan)
    out_dir.mkdir(parents=True, exist_ok=True)
    student.model.save_pretrained(out_dir)
    student.tokenizer.save_pretrained(out_dir)
    tail = losses[-max(1, len(losses) // 10) :]
    return {
        "examples": len(rows),
        "epochs": round(plan.steps * plan.batch_size / len(rows), 2),
        "loss_end": round(sum(tail) / len(tail), 4),
        "steps": plan.steps,
        "tokens": tokens,
        "seconds": round(time.perf_counter() - started, 1),
    }


def evaluate(
    model_dir: Path,
    items: Sequence[EvalItem],
    *,
    max_new_tokens: int,
    batch_size: int = 128,
    device: str = "auto",
) -> dict[str, Any]:
    """Exact-match accuracy of greedy completions on `items` (the probe engine's), with a few for inspection."""
    from workers.probing.data import PromptEncoder
    from workers.probing.evaluation import Evaluator
    from workers.probing.student import load_trainable_student

    student = load_trainable_student(model_dir, device=device, lora_above_params=None)
    encoder = PromptEncoder(student.tokenizer, "plain", max_length=student.max_length)
    evaluator = Evaluator(
        student.model, student.tokenizer, encoder, items, max_new_tokens=max_new_tokens, batch_size=batch_size
    )
    completions = evaluator.completions()
    return {
        "accuracy": completions.exact_match if items else math.nan,
        "n": len(items),
        "samples": [
            {"answer": item.answer, "completion": text}
            for item, text in zip(items[:3], completions.texts[:3], strict=True)
        ],
    }
