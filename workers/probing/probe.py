"""One probe fine-tune: a fresh copy of the student trained on one condition's examples for a fixed budget.

The learning curve (held-out loss and exact match) is measured before training, every `eval_every` steps and
after the last step; the cost says how the student trained and what it took (docs/probes.md, "Engine").
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from core.probes import CurvePoint, EvalItem, ProbeBudget, TrainingExample, check_answer_pattern, generation_room
from workers.probing.data import PromptEncoder, training_batches
from workers.probing.evaluation import Evaluator
from workers.probing.student import LORA_ABOVE_PARAMS, Method, load_trainable_student, probe_learning_rate
from workers.probing.training import Schedule, Trainer

# Completions kept in the outcome for a reader to inspect.
SHOWN_COMPLETIONS = 3


@dataclass(frozen=True, slots=True)
class ProbeCost:
    """How the student trained and what the run took (tokens: non-padding tokens fed over all steps)."""

    method: Method
    parameters: int
    trainable_parameters: int
    peak_lr: float
    # The greedy generation length used: the budget's, else room for the condition's longest response.
    max_new_tokens: int
    examples: int
    steps: int
    tokens: int
    train_seconds: float
    eval_seconds: float
    seconds: float


@dataclass(frozen=True, slots=True)
class ProbeOutcome:
    """A probe's learning curve, its cost, and the first completions of its last measurement."""

    curve: tuple[CurvePoint, ...]
    cost: ProbeCost
    # (expected answer, completion) of the first eval items.
    completions: tuple[tuple[str, str], ...]
    # Whether `should_stop` ended the run before its last step.
    stopped: bool = False

    @property
    def final(self) -> CurvePoint:
        """The last point measured."""
        return self.curve[-1]

    def as_dict(self) -> dict[str, Any]:
        """The outcome as JSON-ready values, in the shape of docs/probes.md."""
        cost = self.cost
        return {
            "curve": [point.as_dict() for point in self.curve],
            "final": self.final.as_dict(),
            "cost": {
                "method": cost.method,
                "parameters": cost.parameters,
                "trainable_parameters": cost.trainable_parameters,
                "peak_lr": cost.peak_lr,
                "max_new_tokens": cost.max_new_tokens,
                "examples": cost.examples,
                "steps": cost.steps,
                "tokens": cost.tokens,
                "train_seconds": round(cost.train_seconds, 3),
                "eval_seconds": round(cost.eval_seconds, 3),
                "seconds": round(cost.seconds, 3),
            },
            "completions": [{"answer": answer, "completion": text} for answer, text in self.completions],
        }


def probe_schedule(budget: ProbeBudget, peak_lr: float) -> Schedule:
    """The optimiser recipe of a budget: the experiment's fine-tuning recipe (no weight decay) at its size."""
    # No weight decay: a probe is a few hundred steps from a pre-trained student, nothing to regularise, and it
    # keeps the probe's recipe the experiment's (bench/experiment/student.py FineTunePlan).
    return Schedule(
        # A longer schedule than the run: the probe stops part-way through it (a prefix of the planned fine-tune).
        steps=budget.schedule_steps or budget.steps,
        batch_size=budget.batch_size,
        peak_lr=peak_lr,
        warmup_steps=budget.warmup_steps,
        weight_decay=0.0,
    )


def run_probe(
    student_dir: str | Path,
    examples: Sequence[TrainingExample],
    eval_items: Sequence[EvalItem],
    *,
    budget: ProbeBudget,
    seed: int,
    template: str = "plain",
    answer_pattern: str | None = None,
    device: str = "auto",
    lora_above_params: int = LORA_ABOVE_PARAMS,
    on_point: Callable[[CurvePoint], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ProbeOutcome:
    """Fine-tune a fresh copy of the student on `examples` for `budget.steps` steps, measuring its learning curve.

    Points are measured at step 0, every `budget.eval_every` steps and at the last step; `on_point` sees each one
    as it is measured, then `should_stop` may end the run there (a cancelled probe keeps the curve so far).
    """
    started = time.perf_counter()
    if not examples:
        raise ValueError("a probe needs at least one training example")
    if not eval_items:
        raise ValueError("a probe needs at least one eval item")
    pattern = check_answer_pattern(answer_pattern)
    # Seeded before loading: a LoRA adapter's initialisation draws from the global generator.
    torch.manual_seed(seed)
    student = load_trainable_student(student_dir, device=device, lora_above_params=lora_above_params)
    encoder = PromptEncoder(student.tokenizer, template, max_length=student.max_length)
    rows = encoder.training_rows(examples)
    if not rows:
        raise ValueError(
            f"no training example fits the student: every response starts beyond its {student.max_length} tokens"
        )
    max_new_tokens = budget.max_new_tokens
    if max_new_tokens is None:
        max_new_tokens = generation_room(max(len(row.ids) - row.response_start for row in rows))
    evaluator = Evaluator(
        student.model,
        student.tokenizer,
        encoder,
        eval_items,
        max_new_tokens=max_new_tokens,
        answer_pattern=pattern,
    )
    # The batch order has its own generator, so it does not depend on what else draws from torch's.
    batches = training_batches(rows, budget.batch_size, random.Random(f"frontier-probe-{seed}"), encoder.pad_id)
    peak_lr = budget.peak_lr if budget.peak_lr is not None else probe_learning_rate(student.model, student.method)
    trainer = Trainer(student.model, probe_schedule(budget, peak_lr))
    curve: list[CurvePoint] = []
    shown: tuple[tuple[str, str], ...] = ()
    eval_seconds = train_seconds = 0.0

    def measure(step: int) -> bool:
        """Measure a curve point, report it, and say whether the run should stop here."""
        nonlocal eval_seconds, shown
        measured_at = time.perf_counter()
        completions = evaluator.completions()
        point = CurvePoint(step=step, loss=evaluator.loss(), exact_match=completions.exact_match)
        eval_seconds += time.perf_counter() - measured_at
        shown = tuple(
            (item.answer, text)
            for item, text in zip(eval_items[:SHOWN_COMPLETIONS], completions.texts[:SHOWN_COMPLETIONS], strict=True)
        )
        curve.append(point)
        if on_point is not None:
            on_point(point)
        return should_stop is not None and should_stop()

    stopped = measure(0)
    while not stopped and trainer.steps < budget.steps:
        stepped_at = time.perf_counter()
        trainer.step(next(batches))
        train_seconds += time.perf_counter() - stepped_at
        if trainer.steps % budget.eval_every == 0 or trainer.steps == budget.steps:
            stopped = measure(trainer.steps) and trainer.steps < budget.steps
    cost = ProbeCost(
        method=student.method,
        parameters=student.parameters,
        trainable_parameters=student.trainable_parameters,
        peak_lr=peak_lr,
        max_new_tokens=max_new_tokens,
        examples=len(rows),
        steps=trainer.steps,
        tokens=trainer.tokens,
        train_seconds=train_seconds,
        eval_seconds=eval_seconds,
        seconds=time.perf_counter() - started,
    )
    return ProbeOutcome(curve=tuple(curve), cost=cost, completions=shown, stopped=stopped)
