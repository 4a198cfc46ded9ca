"""The synthetic task: column addition with a difficulty dial (digits per operand), and its teachers.

Every problem is "Add A and B." with two `digits`-digit operands; the verifiable answer is A + B. The
student is pre-trained on the easy end (1-2 digits) in every response style below, so each style is
familiar to it and only the size of the problem is new. Teachers rewrite the same training prompts:

- `strong`: terse, skips every step (the sum in one line). Correct, far beyond what the student can do at once.
- `mid`: adds two-digit blocks with a carry, a step size the student already masters (half the steps).
- `weak`: column by column with the carry and the partial result, close to the student's own level, and a
  weaker solver: a fraction `weak_error_rate` of its solutions contain one arithmetic slip.

Step-by-step ("scratchpad") targets are known to make arithmetic learnable for small transformers (Nye et
al. 2021, "Show Your Work", arXiv 2112.00114; Lee et al., "Teaching Arithmetic to Small Transformers", ICLR
2024, arXiv 2307.03381). Only `random.Random` is used, so a seed gives the same text on every machine.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bench.experiment.problems import distinct_problems
from examples.corpus import format_pair

TEACHERS: tuple[str, ...] = ("strong", "mid", "weak")
# The difficulty dial: the student is pre-trained on the easy end, taught one step up, tested one step further.
PRETRAIN_DIGITS: tuple[int, ...] = (1,)
TRAIN_DIGITS: tuple[int, ...] = (2,)
OOD_DIGITS: tuple[int, ...] = (3,)


@dataclass(frozen=True, slots=True)
class Problem:
    """One addition problem; `answer` is the verifiable target of exact-match evaluation."""

    a: int
    b: int
    digits: int

    @property
    def instruction(self) -> str:
        """The prompt text."""
        return f"Add {self.a} and {self.b}."

    @property
    def answer(self) -> str:
        """The exact sum as text."""
        return str(self.a + self.b)


def make_problem(rng: random.Random, digits: int) -> Problem:
    """A problem whose operands have exactly `digits` digits (0-9 for one digit)."""
    low = 0 if digits == 1 else 10 ** (digits - 1)
    high = 10**digits - 1
    return Problem(rng.randint(low, high), rng.randint(low, high), digits)


def make_problems(rng: random.Random, n: int, digits: Sequence[int], exclude: set[tuple[int, int]]) -> list[Problem]:
    """`n` distinct problems, sizes drawn uniformly from `digits`, none of whose operand pairs is in `exclude`."""
    return distinct_problems(rng, n, digits, make_problem, lambda problem: (problem.a, problem.b), exclude)


def _blocks(value: int, digits: int, width: int) -> list[str]:
    """The operand's digits as blocks of `width`, least significant block first (the top block may be short)."""
    text = str(value).zfill(digits)
    return [text[max(0, end - width) : end] for end in range(len(text), 0, -width)]


def block_steps(problem: Problem, width: int, slip_at: int | None = None) -> tuple[list[str], str]:
    """Schoolbook addition over blocks of `width` digits: one line per block, and the (possibly wrong) result.

    Each line reads `x+y+c=s -> partial` (c: the carry in); `slip_at` makes that block's sum off by one (a
    plausible slip) and the rest of the solution follows from the slip, as a solver's would.
    """
    lines: list[str] = []
    partial = ""
    carry = 0
    xs, ys = _blocks(problem.a, problem.digits, width), _blocks(problem.b, problem.digits, width)
    for index, (x, y) in enumerate(zip(xs, ys, strict=True)):
        total = int(x) + int(y) + carry
        if index == slip_at:
            total = total + 1 if total % 10 != 9 else total - 1
        last = index == len(xs) - 1
        partial = (str(total) if last else str(total % 10 ** len(x)).zfill(len(x))) + partial
        lines.append(f"{x}+{y}+{carry}={total} -> {partial}")
        carry = total // 10 ** len(x)
    return lines, partial


def original_response(problem: Problem) -> str:
    """The dataset's own response: the bare answer, as many collected datasets have it."""
    return f"Answer: {problem.answer}"


def strong_response(problem: Problem) -> str:
    """The strong teacher: the sum in one line, no steps."""
    return f"{problem.a}+{problem.b}={problem.answer}\nAnswer: {problem.answer}"


def mid_response(problem: Problem) -> str:
    """The mid teacher: two-digit blocks with carries."""
    lines, result = block_steps(problem, 2)
    return "\n".join([*lines, f"Answer: {result}"])


def weak_response(problem: Problem, slip_at: int | None = None) -> str:
    """The weak teacher: one column per line; `slip_at` puts an arithmetic slip in that column."""
    lines, result = block_steps(problem, 1, slip_at)
    return "\n".join([*lines, f"Answer: {result}"])


def teacher_responses(problem: Problem, rng: random.Random, weak_error_rate: float) -> dict[str, str]:
    """Every teacher's refinement of `problem` (the weak one slips with probability `weak_error_rate`)."""
    slip_at = rng.randrange(problem.digits) if rng.random() < weak_error_rate else None
    return {"strong": strong_response(problem), "mid": mid_response(problem), "weak": weak_response(problem, slip_at)}


STYLES: tuple[Callable[[Problem], str], ...] = (original_response, strong_response, mid_response, weak_response)


def pretraining_documents(rng: random.Random, digits: Sequence[int] = PRETRAIN_DIGITS) -> Iterator[str]:
    """An endless stream of easy problems in the plain template, each answered in a random style (all correct)."""
    while True:
        problem = make_problem(rng, rng.choice(list(digits)))
        yield format_pair(problem.instruction, rng.choice(STYLES)(problem))


class Verifiable(Protocol):
    """A held-out problem of any family: its prompt and its exact answer."""

    @property
    def instruction(self) -> str:
        """The prompt text."""
        ...

    @property
    def answer(self) -> str:
        """The exact answer as text."""
        ...


@dataclass(frozen=True, slots=True)
class TaskData:
    """One seed's data: training prompts with refinements, and held-out problems per evaluation split."""

    records: list[dict[str, Any]]
    evaluation: dict[str, Sequence[Verifiable]]


def build_task(
    seed: int,
    *,
    n_train: int,
    n_eval: int,
    weak_error_rate: float,
    train_digits: Sequence[int] = TRAIN_DIGITS,
    ood_digits: Sequence[int] = OOD_DIGITS,
) -> TaskData:
    """Training records in the product's layout and held-out `in_distribution` / `ood` problems, from `seed`."""
    rng = random.Random(f"frontier-experiment-task-{seed}")
    seen: set[tuple[int, int]] = set()
    train = make_problems(rng, n_train, train_digits, seen)
    evaluation: dict[str, Sequence[Verifiable]] = {
        "in_distribution": make_problems(rng, n_eval, train_digits, seen),
        "ood": make_problems(rng, n_eval, ood_digits, seen),
    }
    records: list[dict[str, Any]] = []
    for index, problem in enumerate(train):
        refinements = teacher_responses(problem, rng, weak_error_rate)
        records.append(
            {
                "id": f"add-{seed}-{index:05d}",
                "instruction": problem.instruction,
                "input": "",
                "response": original_response(problem),
                "refinements": [{"teacher": name, "response": refinements[name]} for name in TEACHERS],
            }
        )
    return TaskData(records, evaluation)
