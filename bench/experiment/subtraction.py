"""The second task family: subtraction with borrows, built so that "prefer the longest response" is no shortcut.

Every problem is "Subtract B from A." with A >= B; the verifiable answer is A - B. The student is pre-trained
on the easy end (A up to 18, B one digit: every single-column fact, borrows included) in the response styles
`original`, `terse`, `borrow` and `decoy`, and never sees an addition. The teachers rewrite the training prompts
(two-digit operands); evaluation is on held-out two- and three-digit problems:

- `terse`: the difference in one line, no steps.
- `borrow`: column by column with the borrow, in the notation the student saw on single columns.
- `decoy`: as long as `borrow` (one line per column and the same characters, give or take), but its lines only
  restate the problem: length without help.
- `complement`: correct steps through an operation the student has never seen: A - B = A + (nines' complement of
  B) + 1, dropping the leading 1; column additions with carries, the longest response of all.

Which of these trains the student best is what the experiment measures; the family only guarantees that the
longest response (`complement`) and a response as long as the helpful one (`decoy`) are both on offer, so a
signal that rewards length or step count is tested, not rewarded. Only `random.Random` is used.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from bench.experiment.problems import distinct_problems, pretraining_stream, refinement_records

TEACHERS: tuple[str, ...] = ("terse", "borrow", "decoy", "complement")
TRAIN_DIGITS: tuple[int, ...] = (2,)
OOD_DIGITS: tuple[int, ...] = (3,)


@dataclass(frozen=True, slots=True)
class Problem:
    """One subtraction problem with A >= B; `answer` is the exact difference."""

    a: int
    b: int
    digits: int

    @property
    def instruction(self) -> str:
        """The prompt text."""
        return f"Subtract {self.b} from {self.a}."

    @property
    def answer(self) -> str:
        """The exact difference as text."""
        return str(self.a - self.b)


def make_problem(rng: random.Random, digits: int) -> Problem:
    """A problem whose operands have `digits` digits (A >= B)."""
    low = 0 if digits == 1 else 10 ** (digits - 1)
    x, y = rng.randint(low, 10**digits - 1), rng.randint(low, 10**digits - 1)
    return Problem(max(x, y), min(x, y), digits)


def pretraining_problem(rng: random.Random) -> Problem:
    """A single-column fact: A up to 18 and B one digit, so both borrow-free and borrowing columns appear."""
    b = rng.randint(0, 9)
    return Problem(rng.randint(b, min(18, b + 9)), b, 1)


def _digits(value: int, width: int) -> list[int]:
    """The digits of `value` padded to `width`, least significant first."""
    return [int(char) for char in reversed(str(value).zfill(width))]


def borrow_steps(problem: Problem) -> list[str]:
    """Schoolbook subtraction: per column `x-y-b=d -> partial`, where x carries a 1 in front when it borrows."""
    if len(str(problem.a)) > problem.digits:
        # A pre-training fact such as 15 - 7: one column whose top already holds the borrowed ten.
        return [f"{problem.a}-{problem.b}-0={problem.answer} -> {problem.answer}"]
    width = problem.digits
    xs, ys = _digits(problem.a, width), _digits(problem.b, width)
    lines: list[str] = []
    partial = ""
    borrow = 0
    for index, (x, y) in enumerate(zip(xs, ys, strict=True)):
        top = x
        borrow_out = 0
        last = index == width - 1
        if x - borrow < y and not last:
            top, borrow_out = x + 10, 1
        digit = top - y - borrow
        partial = str(digit) + partial
        lines.append(f"{top}-{y}-{borrow}={digit} -> {partial}")
        borrow = borrow_out
    return lines


def terse_response(problem: Problem) -> str:
    """The terse teacher: the difference in one line."""
    return f"{problem.a}-{problem.b}={problem.answer}\nAnswer: {problem.answer}"


def borrow_response(problem: Problem) -> str:
    """The helpful stepwise teacher: one column per line with the borrow."""
    return "\n".join([*borrow_steps(problem), f"Answer: {problem.answer}"])


def decoy_response(problem: Problem) -> str:
    """The length decoy: one line per column, about as long as `borrow`'s, restating the problem and nothing else."""
    lines = [f"{problem.a}-{problem.b}, col {index + 1}" for index in range(len(borrow_steps(problem)))]
    return "\n".join([*lines, f"Answer: {problem.answer}"])


def complement_response(problem: Problem) -> str:
    """The unseen-operation teacher: add the nines' complement of B plus one column by column, drop the leading 1."""
    width = problem.digits
    complement = int("".join(str(9 - int(d)) for d in str(problem.b).zfill(width)))
    lines = [f"9s of {str(problem.b).zfill(width)} = {str(complement).zfill(width)}"]
    xs, ys = _digits(problem.a, width), _digits(complement, width)
    carry = 1  # the +1 that turns the nines' complement into the tens' complement
    partial = ""
    for x, y in zip(xs, ys, strict=True):
        total = x + y + carry
        partial = str(total % 10) + partial
        lines.append(f"{x}+{y}+{carry}={total} -> {partial}")
        carry = total // 10
    lines.append(f"drop {carry} -> {int(partial)}")
    return "\n".join([*lines, f"Answer: {problem.answer}"])


def original_response(problem: Problem) -> str:
    """The dataset's own response: the bare answer."""
    return f"Answer: {problem.answer}"


RESPONSES = {
    "terse": terse_response,
    "borrow": borrow_response,
    "decoy": decoy_response,
    "complement": complement_response,
}
# What pre-training shows: every style but the complement's (its operation, addition, stays unseen).
PRETRAIN_STYLES = (original_response, terse_response, borrow_response, decoy_response)


def pretraining_documents(rng: random.Random) -> Iterator[str]:
    """An endless stream of single-column facts in the plain template, each in a random familiar style."""
    return pretraining_stream(rng, pretraining_problem, PRETRAIN_STYLES)


def make_problems(rng: random.Random, n: int, digits: Sequence[int], exclude: set[tuple[int, int]]) -> list[Problem]:
    """`n` distinct problems, sizes drawn from `digits`, none of whose operand pairs is in `exclude`."""
    return distinct_problems(rng, n, digits, make_problem, lambda problem: (problem.a, problem.b), exclude)


def build_records(seed: int, *, n_train: int, n_eval: int) -> tuple[list[dict[str, Any]], dict[str, list[Problem]]]:
    """Training records in the product's layout and held-out `in_distribution` / `ood` problems, from `seed`."""
    rng = random.Random(f"frontier-experiment-subtraction-{seed}")
    seen: set[tuple[int, int]] = set()
    train = make_problems(rng, n_train, TRAIN_DIGITS, seen)
    evaluation = {
        "in_distribution": make_problems(rng, n_eval, TRAIN_DIGITS, seen),
        "ood": make_problems(rng, n_eval, OOD_DIGITS, seen),
    }
    return refinement_records("sub", seed, train, original_response, RESPONSES), evaluation
