"""What every task family builds the same way: distinct problems, the pre-training stream, the training records.

A family module defines its problem type (an instruction and an exact answer), how to draw one, and its teachers'
responses; these helpers turn them into the experiment's data, drawing from the family's `random.Random` in one
fixed order so that a seed gives the same data on every machine.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from examples.corpus import format_pair


class Drawn(Protocol):
    """A family's problem: the prompt text and its exact answer."""

    @property
    def instruction(self) -> str:
        """The prompt text."""
        ...

    @property
    def answer(self) -> str:
        """The exact answer as text."""
        ...


P = TypeVar("P", bound=Drawn)


def distinct_problems(
    rng: random.Random,
    n: int,
    sizes: Sequence[int],
    make: Callable[[random.Random, int], P],
    key: Callable[[P], Hashable],
    exclude: set[Any],
) -> list[P]:
    """`n` problems of sizes drawn from `sizes`, none whose `key` is in `exclude` (which collects theirs)."""
    problems: list[P] = []
    while len(problems) < n:
        problem = make(rng, rng.choice(list(sizes)))
        if key(problem) in exclude:
            continue
        exclude.add(key(problem))
        problems.append(problem)
    return problems


def pretraining_stream(
    rng: random.Random, draw: Callable[[random.Random], P], styles: Sequence[Callable[[P], str]]
) -> Iterator[str]:
    """An endless stream of easy problems in the plain template, each answered in a random familiar style."""
    while True:
        problem = draw(rng)
        yield format_pair(problem.instruction, rng.choice(styles)(problem))


def refinement_records(
    prefix: str,
    seed: int,
    problems: Sequence[P],
    original: Callable[[P], str],
    responses: Mapping[str, Callable[[P], str]],
) -> list[dict[str, Any]]:
    """Training records in the product's layout: each problem's own response and every teacher's refinement."""
    return [
        {
            "id": f"{prefix}-{seed}-{index:05d}",
            "instruction": problem.instruction,
            "input": "",
            "response": original(problem),
            "refinements": [{"teacher": name, "response": respond(problem)} for name, respond in responses.items()],
        }
        for index, problem in enumerate(problems)
    ]
