"""A check family: sorting a list of digits, whose answer is a list, not one number.

Kept out of `make experiment` (docs/experiment.md, "A family the defaults never saw"): it was designed and run once
after the probe's defaults and the report's rules were fixed, as a check of how they carry over to a task they were
not measured on. Every problem is "Sort 5 3 8 1." (digits, repeats allowed); the answer is the ascending list
(`1 3 5 8`), so the default answer reading compares the whole `Answer:` line. The student is pre-trained on the easy
end (two and three digits) in the styles `original`, `terse`, `select` and `decoy`; the teachers refine four-digit
lists; evaluation is on held-out four-digit (in distribution) and five-digit (out of distribution) lists:

- `terse`: the list and its sorted order in one line, no steps.
- `select`: selection sort, one line per step, `sorted | remaining`, in the notation pre-training showed.
- `decoy`: as many lines as `select` and the same characters per line, but each only restates the list.
- `bubble`: correct steps through an operation the student has never seen: the list after each bubble-sort pass
  (adjacent swaps), every pass written out.

Which of these trains the student best is measured, not assumed. Only `random.Random` is used.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from bench.experiment.problems import distinct_problems, pretraining_stream, refinement_records

TEACHERS: tuple[str, ...] = ("terse", "select", "decoy", "bubble")
PRETRAIN_SIZES: tuple[int, ...] = (2, 3)
TRAIN_SIZES: tuple[int, ...] = (4,)
OOD_SIZES: tuple[int, ...] = (5,)


@dataclass(frozen=True, slots=True)
class Problem:
    """A list of digits to sort; `answer` is the ascending list, space-separated."""

    items: tuple[int, ...]

    @property
    def instruction(self) -> str:
        """The prompt text."""
        return f"Sort {_show(self.items)}."

    @property
    def answer(self) -> str:
        """The sorted list as text."""
        return _show(sorted(self.items))


def _show(items: Sequence[int]) -> str:
    return " ".join(str(item) for item in items)


def make_problem(rng: random.Random, size: int) -> Problem:
    """A list of `size` random digits."""
    return Problem(tuple(rng.randint(0, 9) for _ in range(size)))


def selection_steps(problem: Problem) -> list[str]:
    """Selection sort: after each step the sorted prefix, a bar, and what is left in its original order."""
    done: list[int] = []
    left = list(problem.items)
    lines: list[str] = []
    while len(left) > 1:
        smallest = min(left)
        left.remove(smallest)
        done.append(smallest)
        lines.append(f"{_show(done)} | {_show(left)}")
    return lines


def bubble_passes(problem: Problem) -> list[str]:
    """Bubble sort: the list after each pass of adjacent compare-and-swaps, one pass per element but the last."""
    items = list(problem.items)
    lines: list[str] = []
    for done in range(len(items) - 1):
        for index in range(len(items) - 1 - done):
            if items[index] > items[index + 1]:
                items[index], items[index + 1] = items[index + 1], items[index]
        lines.append(f"pass {done + 1}: {_show(items)}")
    return lines


def terse_response(problem: Problem) -> str:
    """The terse teacher: the list and its order in one line."""
    return f"{_show(problem.items)} -> {problem.answer}\nAnswer: {problem.answer}"


def select_response(problem: Problem) -> str:
    """The familiar stepwise teacher: one selection step per line."""
    return "\n".join([*selection_steps(problem), f"Answer: {problem.answer}"])


def decoy_response(problem: Problem) -> str:
    """The length decoy: `select`'s line count and line length, each line restating the list and nothing else."""
    lines = [f"{_show(problem.items)} |" for _ in selection_steps(problem)]
    return "\n".join([*lines, f"Answer: {problem.answer}"])


def bubble_response(problem: Problem) -> str:
    """The unseen-operation teacher: the list after every bubble-sort pass."""
    return "\n".join([*bubble_passes(problem), f"Answer: {problem.answer}"])


def original_response(problem: Problem) -> str:
    """The dataset's own response: the bare answer."""
    return f"Answer: {problem.answer}"


RESPONSES = {
    "terse": terse_response,
    "select": select_response,
    "decoy": decoy_response,
    "bubble": bubble_response,
}
# What pre-training shows: every style but bubble sort's passes (adjacent swaps stay unseen).
PRETRAIN_STYLES = (original_response, terse_response, select_response, decoy_response)


def pretraining_documents(rng: random.Random) -> Iterator[str]:
    """An endless stream of short lists in the plain template, each in a random familiar style."""
    return pretraining_stream(rng, lambda draw: make_problem(draw, draw.choice(PRETRAIN_SIZES)), PRETRAIN_STYLES)


def make_problems(rng: random.Random, n: int, sizes: Sequence[int], exclude: set[tuple[int, ...]]) -> list[Problem]:
    """`n` distinct problems, sizes drawn from `sizes`, none of whose lists is in `exclude`."""
    return distinct_problems(rng, n, sizes, make_problem, lambda problem: problem.items, exclude)


def build_records(seed: int, *, n_train: int, n_eval: int) -> tuple[list[dict[str, Any]], dict[str, list[Problem]]]:
    """Training records in the product's layout and held-out `in_distribution` / `ood` problems, from `seed`."""
    rng = random.Random(f"frontier-experiment-sorting-{seed}")
    seen: set[tuple[int, ...]] = set()
    train = make_problems(rng, n_train, TRAIN_SIZES, seen)
    evaluation = {
        "in_distribution": make_problems(rng, n_eval, TRAIN_SIZES, seen),
        "ood": make_problems(rng, n_eval, OOD_SIZES, seen),
    }
    return refinement_records("sort", seed, train, original_response, RESPONSES), evaluation
