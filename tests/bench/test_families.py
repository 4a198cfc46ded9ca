"""The experiment's task families: every teacher reaches the answer, the decoy is as long as the helpful one."""

from __future__ import annotations

import random
from statistics import fmean

import pytest

from bench.experiment import digitsum, sorting, subtraction
from bench.experiment.families import FAMILIES
from core.probes import extract_answer


@pytest.mark.parametrize("digits", [1, 2, 3])
def test_every_subtraction_teacher_reaches_the_difference(digits: int) -> None:
    """Terse, borrow, decoy and complement all end in the exact difference, borrows and zeros included."""
    rng = random.Random(digits)
    for _ in range(500):
        problem = subtraction.make_problem(rng, digits)
        for response in subtraction.RESPONSES.values():
            assert extract_answer(response(problem)) == problem.answer


def test_borrow_steps_compute_the_difference() -> None:
    """The borrow column steps end in the difference (leading zeros kept), the complement steps too."""
    problem = subtraction.Problem(607, 588, 3)
    lines = subtraction.borrow_steps(problem)
    assert lines == ["17-8-0=9 -> 9", "10-8-1=1 -> 19", "6-5-1=0 -> 019"]
    assert subtraction.complement_response(problem).splitlines()[-2] == "drop 1 -> 19"


def test_the_decoy_is_as_long_as_the_helpful_teacher() -> None:
    """The length decoy: within 10% of the borrow teacher's length; the complement teacher is the longest."""
    rng = random.Random(0)
    problems = [subtraction.make_problem(rng, 2) for _ in range(300)]
    length = {name: fmean(len(f(p)) for p in problems) for name, f in subtraction.RESPONSES.items()}
    assert abs(length["decoy"] - length["borrow"]) / length["borrow"] < 0.1
    assert max(length, key=length.__getitem__) == "complement"


def test_pretraining_never_shows_the_unseen_operation() -> None:
    """No pre-training document adds: the complement teacher's operation stays unseen."""
    documents = subtraction.pretraining_documents(random.Random(0))
    assert not any("+" in next(documents) for _ in range(2000))


@pytest.mark.parametrize("size", [2, 3, 4, 5])
def test_every_sorting_teacher_reaches_the_sorted_list(size: int) -> None:
    """Terse, select, decoy and bubble all end in the ascending list, read whole (not by one of its numbers)."""
    rng = random.Random(size)
    for _ in range(300):
        problem = sorting.make_problem(rng, size)
        assert problem.answer == " ".join(map(str, sorted(problem.items)))
        for response in sorting.RESPONSES.values():
            assert extract_answer(response(problem)) == problem.answer
        assert sorting.bubble_passes(problem)[-1].endswith(problem.answer)


def test_sorting_steps_and_decoy() -> None:
    """Selection steps move the smallest left each line; the decoy has their line count and length, no help."""
    problem = sorting.Problem((5, 3, 8, 3))
    assert sorting.selection_steps(problem) == ["3 | 5 8 3", "3 3 | 5 8", "3 3 5 | 8"]
    assert sorting.bubble_passes(problem) == ["pass 1: 3 5 3 8", "pass 2: 3 3 5 8", "pass 3: 3 3 5 8"]
    decoy, select = sorting.decoy_response(problem), sorting.select_response(problem)
    assert [len(line) for line in decoy.splitlines()] == [len(line) for line in select.splitlines()]
    assert decoy.splitlines()[:-1] == ["5 3 8 3 |"] * 3


def test_sorting_pretraining_never_shows_a_bubble_pass() -> None:
    """No pre-training document writes a pass: the bubble teacher's operation stays unseen."""
    documents = sorting.pretraining_documents(random.Random(0))
    assert not any("pass" in next(documents) for _ in range(2000))


@pytest.mark.parametrize("digits", [2, 3, 5, 6])
def test_every_digitsum_teacher_reaches_the_sum(digits: int) -> None:
    """Terse, running, decoy and pairs all end in the digit sum; at training size the decoy is as long as the
    running total, within 10%."""
    rng = random.Random(digits)
    problems = [digitsum.make_problem(rng, digits) for _ in range(300)]
    for problem in problems:
        assert len(problem.number) == digits
        for response in digitsum.RESPONSES.values():
            assert extract_answer(response(problem)) == problem.answer
    if digits in digitsum.TRAIN_DIGITS:
        length = {name: fmean(len(f(p)) for p in problems) for name, f in digitsum.RESPONSES.items()}
        assert abs(length["decoy"] - length["running"]) / length["running"] < 0.1


def test_digitsum_steps() -> None:
    """The running total adds one digit per line; the pairwise tree halves the list per line."""
    problem = digitsum.Problem("48273")
    assert digitsum.running_steps(problem) == ["4+8=12", "12+2=14", "14+7=21", "21+3=24"]
    assert digitsum.pair_steps(problem) == ["4+8=12, 2+7=9, 3", "12+9=21, 3", "21+3=24"]
    documents = digitsum.pretraining_documents(random.Random(0))
    assert not any(", " in next(documents) for _ in range(2000))


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_family_builds_deterministic_held_out_data(name: str) -> None:
    """A seed gives the same data; held-out problems never repeat a training prompt; every teacher refines."""
    family = FAMILIES[name]
    first = family.build(1, n_train=40, n_eval=10, weak_error_rate=0.1)
    assert first == family.build(1, n_train=40, n_eval=10, weak_error_rate=0.1)
    assert [r["teacher"] for r in first.records[0]["refinements"]] == list(family.teachers)
    train = {record["instruction"] for record in first.records}
    for problems in first.evaluation.values():
        assert len(problems) == 10
        assert not train & {problem.instruction for problem in problems}
