"""A check family: the sum of a number's digits, where the answer is short and the work is not.

Kept out of `make experiment` (docs/experiment.md, "Families the defaults never saw"): designed and run once after
the probe's defaults and the report's rules were fixed. Every problem is "Sum the digits of 48273."; the answer is
the digit sum (24). The student is pre-trained on the easy end (two- and three-digit numbers) in the styles
`original`, `terse`, `running` and `decoy`; the teachers refine five-digit numbers; evaluation is on held-out
five-digit (in distribution) and six-digit (out of distribution) numbers:

- `terse`: the sum in one line, no steps.
- `running`: the running total, one digit per line (`4+8=12`), in the notation pre-training showed.
- `decoy`: as many lines as `running` and about as long, each restating the number: length without help.
- `pairs`: correct steps through an operation the student has never seen: the digits summed in pairs, then the
  pair sums in pairs, until one number is left.

Which of these trains the student best is measured, not assumed. Only `random.Random` is used.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from bench.experiment.problems import distinct_problems, pretraining_stream, refinement_records

TEACHERS: tuple[str, ...] = ("terse", "running", "decoy", "pairs")
PRETRAIN_DIGITS: tuple[int, ...] = (2, 3)
TRAIN_DIGITS: tuple[int, ...] = (5,)
OOD_DIGITS: tuple[int, ...] = (6,)


@dataclass(frozen=True, slots=True)
class Problem:
    """A number whose digits are to be summed; `answer` is that sum."""

    number: str

    @property
    def instruction(self) -> str:
        """The prompt text."""
        return f"Sum the digits of {self.number}."

    @property
    def answer(self) -> str:
        """The digit sum as text."""
        return str(sum(int(digit) for digit in self.number))


def make_problem(rng: random.Random, digits: int) -> Problem:
    """A number of exactly `digits` digits (no leading zero)."""
    return Problem(str(rng.randint(10 ** (digits - 1), 10**digits - 1)))


def running_steps(problem: Problem) -> list[str]:
    """Left to right, the total so far plus the next digit, one line per digit after the first."""
    total = int(problem.number[0])
    lines: list[str] = []
    for digit in problem.number[1:]:
        lines.append(f"{total}+{digit}={total + int(digit)}")
        total += int(digit)
    return lines


def pair_steps(problem: Problem) -> list[str]:
    """A tree of additions: each line sums neighbours in pairs (an odd one out carried as it is)."""
    values = [int(digit) for digit in problem.number]
    lines: list[str] = []
    while len(values) > 1:
        pairs = [values[index : index + 2] for index in range(0, len(values), 2)]
        lines.append(
            ", ".join(f"{pair[0]}+{pair[1]}={sum(pair)}" if len(pair) == 2 else str(pair[0]) for pair in pairs)
        )
        values = [sum(pair) for pair in pairs]
    return lines


def terse_response(problem: Problem) -> str:
    """The terse teacher: the sum in one line."""
    return f"{'+'.join(problem.number)}={problem.answer}\nAnswer: {problem.answer}"


def running_response(problem: Problem) -> str:
    """The familiar stepwise teacher: the running total."""
    return "\n".join([*running_steps(problem), f"Answer: {problem.answer}"])


def decoy_response(problem: Problem) -> str:
    """The length decoy: `running`'s line count, each line restating the number and nothing else."""
    lines = [f"{problem.number} ." for _ in running_steps(problem)]
    return "\n".join([*lines, f"Answer: {problem.answer}"])


def pairs_response(problem: Problem) -> str:
    """The unseen-operation teacher: digits summed in pairs, level by level."""
    return "\n".join([*pair_steps(problem), f"Answer: {problem.answer}"])


def original_response(problem: Problem) -> str:
    """The dataset's own response: the bare answer."""
    return f"Answer: {problem.answer}"


RESPONSES = {
    "terse": terse_response,
    "running": running_response,
    "decoy": decoy_response,
    "pairs": pairs_response,
}
# What pre-training shows: every style but the pairwise tree (its comma-separated levels stay unseen).
PRETRAIN_STYLES = (original_response, terse_response, running_response, decoy_response)


def pretraining_documents(rng: random.Random) -> Iterator[str]:
    """An endless stream of short numbers in the plain template, each in a random familiar style."""
    return pretraining_stream(rng, lambda draw: make_problem(draw, draw.choice(PRETRAIN_DIGITS)), PRETRAIN_STYLES)


def make_problems(rng: random.Random, n: int, digits: Sequence[int], exclude: set[str]) -> list[Problem]:
    """`n` distinct problems, sizes drawn from `digits`, none of whose numbers is in `exclude`."""
    return distinct_problems(rng, n, digits, make_problem, lambda problem: problem.number, exclude)


def build_records(seed: int, *, n_train: int, n_eval: int) -> tuple[list[dict[str, Any]], dict[str, list[Problem]]]:
    """Training records in the product's layout and held-out `in_distribution` / `ood` problems, from `seed`."""
    rng = random.Random(f"frontier-experiment-digitsum-{seed}")
    seen: set[str] = set()
    train = make_problems(rng, n_train, TRAIN_DIGITS, seen)
    evaluation = {
        "in_distribution": make_problems(rng, n_eval, TRAIN_DIGITS, seen),
        "ood": make_problems(rng, n_eval, OOD_DIGITS, seen),
    }
    return refinement_records("digitsum", seed, train, original_response, RESPONSES), evaluation
