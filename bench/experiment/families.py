"""The experiment's task families, by name: how each builds a seed's data and pre-trains its student.

A family is one module (its problems, teachers and pre-training stream) plus one line in FAMILIES; the rest of
the experiment (curation, conditions, probes, fine-tunes, the tables) names no family and no teacher. `make
experiment` runs the PUBLISHED families; the others are checks, each run once after the product's defaults were
fixed, to see how the recommendation carries over to a task it was not measured on (docs/experiment.md). A family
may write texts of any length: the student's positions and generation length are sized from its longest training
text (bench/experiment/student.py, `student_positions`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from bench.experiment import digitsum, sorting, subtraction, task
from bench.experiment.task import TaskData


@dataclass(frozen=True, slots=True)
class Family:
    """One task family: its teachers, its pre-training documents and a seed's training and evaluation data."""

    name: str
    teachers: tuple[str, ...]
    pretraining_documents: Callable[[random.Random], Iterator[str]]
    build: Callable[..., TaskData]
    summary: str


def _addition(seed: int, *, n_train: int, n_eval: int, weak_error_rate: float) -> TaskData:
    return task.build_task(seed, n_train=n_train, n_eval=n_eval, weak_error_rate=weak_error_rate)


def _subtraction(seed: int, *, n_train: int, n_eval: int, weak_error_rate: float) -> TaskData:
    # No teacher of this family slips: the error rate is the addition family's knob.
    records, evaluation = subtraction.build_records(seed, n_train=n_train, n_eval=n_eval)
    return TaskData(records, dict(evaluation))


def _sorting(seed: int, *, n_train: int, n_eval: int, weak_error_rate: float) -> TaskData:
    # No teacher of the check families slips.
    records, evaluation = sorting.build_records(seed, n_train=n_train, n_eval=n_eval)
    return TaskData(records, dict(evaluation))


def _digitsum(seed: int, *, n_train: int, n_eval: int, weak_error_rate: float) -> TaskData:
    records, evaluation = digitsum.build_records(seed, n_train=n_train, n_eval=n_eval)
    return TaskData(records, dict(evaluation))


FAMILIES: dict[str, Family] = {
    "addition": Family(
        "addition",
        task.TEACHERS,
        task.pretraining_documents,
        _addition,
        "column addition; a terse strong teacher, a two-digit-block mid one and a column-by-column weak one",
    ),
    "subtraction": Family(
        "subtraction",
        subtraction.TEACHERS,
        subtraction.pretraining_documents,
        _subtraction,
        "subtraction with borrows; terse, column-by-column, a length decoy and an unseen-operation teacher",
    ),
    "sorting": Family(
        "sorting",
        sorting.TEACHERS,
        sorting.pretraining_documents,
        _sorting,
        "sorting lists of digits (a check family); terse, selection steps, a length decoy and unseen bubble passes",
    ),
    "digitsum": Family(
        "digitsum",
        digitsum.TEACHERS,
        digitsum.pretraining_documents,
        _digitsum,
        "digit sums of five-digit numbers (a check family); terse, a running total, a length decoy and unseen "
        "pairwise sums",
    ),
}
# What `make experiment` runs and docs/experiment.md's table shows; the rest are check families.
PUBLISHED: tuple[str, ...] = ("addition", "subtraction")
