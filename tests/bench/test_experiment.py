"""The weak- vs strong-teacher experiment: task generation, answer extraction, and a one-seed smoke run."""

from __future__ import annotations

import json
import os
import random
from dataclasses import asdict
from pathlib import Path

import pytest

from bench.experiment.__main__ import main
from bench.experiment.families import FAMILIES
from bench.experiment.followup import main as followup_main
from bench.experiment.prefix import first_at, prefix_budget
from bench.experiment.prefix import main as prefix_main
from bench.experiment.reliability import main as reliability_main
from bench.experiment.reliability import seed_agreement
from bench.experiment.student import (
    MIN_NEW_TOKENS,
    STAMP,
    FineTunePlan,
    StudentPlan,
    longest_texts,
    new_tokens_for,
    pretrain_student,
    student_positions,
)
from bench.experiment.task import TEACHERS, Problem, build_task, mid_response, strong_response, weak_response
from core.probes import extract_answer
from service.policies import POLICIES


@pytest.mark.parametrize(("a", "b", "digits"), [(4821, 3975, 4), (98765, 43210, 5), (7, 5, 1), (99, 1, 2)])
def test_every_teacher_reaches_the_sum(a: int, b: int, digits: int) -> None:
    """Without a slip every teacher's solution ends in the exact sum."""
    problem = Problem(a, b, digits)
    for response in (strong_response(problem), mid_response(problem), weak_response(problem)):
        assert extract_answer(response) == str(a + b)


def test_a_slip_changes_the_weak_answer() -> None:
    """A slip is an arithmetic error the rest of the solution follows."""
    problem = Problem(4821, 3975, 4)
    assert extract_answer(weak_response(problem, slip_at=2)) != problem.answer


def test_task_is_deterministic_and_held_out() -> None:
    """The same seed gives the same data; evaluation problems never repeat a training prompt."""
    first = build_task(3, n_train=50, n_eval=20, weak_error_rate=0.2)
    assert first == build_task(3, n_train=50, n_eval=20, weak_error_rate=0.2)
    assert [r["teacher"] for r in first.records[0]["refinements"]] == list(TEACHERS)
    train = {record["instruction"] for record in first.records}
    for problems in first.evaluation.values():
        assert not train & {problem.instruction for problem in problems}
    slipped = sum(extract_answer(r["refinements"][2]["response"]) != r["response"][8:] for r in first.records)
    assert 0 < slipped < 50
    assert random.Random(0).random() == random.Random(0).random()


def test_extract_answer_reads_the_last_answer() -> None:
    """`Answer: N` wins over other numbers; without it the last number counts."""
    assert extract_answer("1+2=3\nAnswer: 3") == "3"
    assert extract_answer("Answer: 1,234 then Answer: 5") == "5"
    assert extract_answer("the sum is 12") == "12"
    assert extract_answer("no idea") is None


@pytest.mark.slow
def test_smoke_run_has_every_condition(tmp_path: Path) -> None:
    """One seed, a few steps: the pipeline runs through `frontier curate` and the table lists every condition."""
    out = tmp_path / "experiment"
    # Every family, the check families too (`make experiment` runs the published ones).
    args = ["--seeds", "0", "--out", str(out), "--train", "24", "--eval", "4", "--families", *FAMILIES]
    args += ["--pretrain-steps", "4", "--steps", "2", "--max-new-tokens", "8"]
    # Two fine-tunes at once, in processes of their own, as `make experiment` runs them.
    args += ["--jobs", "2"]
    # The probe stage of `frontier curate --probe`, at a smoke test's budget.
    args += ["--probe-params", json.dumps({"steps": 4, "eval_every": 2, "held_out": 4, "max_new_tokens": 8})]
    assert main(args) == 0
    table = (out / "table.md").read_text()
    results = json.loads((out / "results.json").read_text())
    assert list(results["families"]) == list(FAMILIES)
    for name, family in FAMILIES.items():
        expected = [
            "student",
            *(f"teacher:{t}" for t in family.teachers),
            "union",
            *(f"policy:{policy}" for policy in sorted(POLICIES)),
            # The report's recommended teacher kept through the allow-list: following the product's advice.
            "policy:recommended",
        ]
        conditions = list(results["families"][name]["seeds"][0]["conditions"])
        # A policy whose report flags a cut also runs with the suggested cut, right after itself (data-dependent).
        advised = [c for c in conditions if c.endswith("+suggested")]
        assert [c for c in conditions if c not in advised] == expected
        for condition in advised:
            assert conditions[conditions.index(condition) - 1] == condition.removesuffix("+suggested")
        assert f"### {name}" in table
        for condition in conditions:
            assert f"`{condition}`" in table
        assert (out / f"accuracy-{name}.svg").read_text().startswith("<svg")
        seed = results["families"][name]["seeds"][0]
        assert seed["probe"]["status"] == "succeeded"
        assert seed["report"]["ranking"]
        # The truth: each teacher fine-tuned twice (two data orders), its exact match the mean of the two.
        for teacher in family.teachers:
            result = seed["conditions"][f"teacher:{teacher}"]
            draws = [draw["accuracy"]["in_distribution"] for draw in result["draws"]]
            assert len(draws) == 2
            assert result["eval"]["in_distribution"]["accuracy"] == pytest.approx(sum(draws) / 2)
        # The recommended teacher's allow-list is that teacher's own training set: its fine-tunes, not new ones.
        recommended = seed["conditions"]["policy:recommended"]
        assert recommended["same_as"] == f"teacher:{seed['report']['ranking'][0]}"
        assert recommended["eval"] == seed["conditions"][recommended["same_as"]]["eval"]
    assert "probe cost share" in table

    # Where the probe was inconclusive (at a smoke budget every teacher stays at the floor), the follow-up it suggests
    # trains the contenders alone for twice the steps, through `frontier curate --probe`.
    assert followup_main(["--out", str(out), "--max-new-tokens", "8"]) == 0
    followup = json.loads((out / "followup.json").read_text())
    assert any(seeds[0]["follow_up"] for seeds in followup["families"].values())
    for name, family in FAMILIES.items():
        seed = followup["families"][name][0]
        report = results["families"][name]["seeds"][0]["report"]
        if report["probe"]["conclusive"]:
            assert seed["follow_up"] is None
            continue
        assert seed["follow_up"] == {**report["probe"]["follow_up"], "max_new_tokens": 8}
        assert seed["follow_up"]["steps"] == 8
        assert set(seed["exact_match"]) == set(report["probe"]["contenders"])
        assert seed["after"] in family.teachers
        assert seed["follow_up_share"] > 0

    # A probe that runs a prefix of the run's own recipe re-ranks each seed through `frontier curate --probe`.
    assert prefix_main(["--out", str(out), "--share", "0.5", "--max-new-tokens", "8"]) == 0
    prefix = json.loads((out / "prefix.json").read_text())
    assert (prefix["budget"]["steps"], prefix["budget"]["schedule_steps"]) == (1, 2)
    for name, family in FAMILIES.items():
        seed = prefix["families"][name][0]
        assert set(seed["curves"]) == set(family.teachers)
        assert sorted(seed["ranking"]) == sorted(family.teachers)
        assert seed["best"]
        assert set(seed["best"]) <= set(family.teachers)

    # The truth against itself: each of the two draws judged against the other, and the probe against each.
    assert reliability_main(["--out", str(out)]) == 0
    for name in FAMILIES:
        agreement = seed_agreement(results["families"][name]["seeds"][0])
        assert agreement.draws == 2
        assert 0.0 <= agreement.one_fine_tune <= 1.0
        assert agreement.probe is not None
        assert 0.0 <= agreement.probe <= 1.0


def test_a_cached_student_is_rebuilt_when_the_code_that_built_it_changed(tmp_path: Path) -> None:
    """The build stamp carries a digest of the pre-training code: the same code reuses the build, other code not."""
    plan = StudentPlan(steps=2)
    student = pretrain_student(tmp_path / "student", 0, plan, "addition")
    stamp, weights = student / STAMP, student / "model.safetensors"
    built = json.loads(stamp.read_text())
    # An old timestamp on the weights tells a rewrite from a reuse whatever the file system's clock resolution.
    os.utime(weights, ns=(0, 0))

    assert pretrain_student(tmp_path / "student", 0, plan, "addition") == student
    assert weights.stat().st_mtime_ns == 0  # reused: same seed, plan and code

    stale = {**built, "key": {**built["key"], "code": "from-older-code"}}
    stamp.write_text(json.dumps(stale))
    pretrain_student(tmp_path / "student", 0, plan, "addition")
    assert weights.stat().st_mtime_ns != 0  # rebuilt
    assert json.loads(stamp.read_text())["key"]["code"] == built["key"]["code"]


def test_the_student_is_sized_to_the_longest_training_text() -> None:
    """The default shape when every text fits; else half as much again, so no answer line is cut off."""
    record = {"instruction": "ab", "input": "", "response": "c", "refinements": [{"teacher": "t", "response": "defg"}]}
    # <start> a b \n \n d e f g <end>: ten tokens; the response is `defg` and the end token.
    assert longest_texts([record]) == (10, 5)
    assert student_positions(10) == StudentPlan().n_positions
    assert student_positions(200) == 320
    assert new_tokens_for(5) == MIN_NEW_TOKENS
    assert new_tokens_for(200) == 250
    with pytest.raises(ValueError, match="no training records"):
        longest_texts([])


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_keeps_the_default_student_and_generation_length(family: str) -> None:
    """The families' texts fit the default shape, so sizing from the data changes none of their runs."""
    longest_text, longest_response = longest_texts(
        FAMILIES[family].build(0, n_train=400, n_eval=4, weak_error_rate=0.1).records
    )
    assert student_positions(longest_text) == StudentPlan().n_positions
    assert new_tokens_for(longest_response) == MIN_NEW_TOKENS


def test_a_larger_student_keeps_its_positions(tmp_path: Path) -> None:
    """A student pre-trained with more positions is a checkpoint whose maximum length the engine reads as that."""
    from workers.probing.student import load_trainable_student

    student = pretrain_student(tmp_path / "student", 0, StudentPlan(steps=2, n_positions=192), "addition")
    assert load_trainable_student(student, device="cpu", lora_above_params=None).max_length == 192


def test_a_prefix_budget_runs_the_first_share_of_the_recipe() -> None:
    """The experiment's recipe, stopped at a share of its steps; ties at a curve point name every first teacher."""
    budget = prefix_budget(asdict(FineTunePlan(steps=500, batch_size=16, peak_lr=1e-3, warmup_steps=20)), 0.6)
    assert budget == {
        "steps": 300,
        "batch_size": 16,
        "peak_lr": 1e-3,
        "warmup_steps": 20,
        "schedule_steps": 500,
        "eval_every": 100,
    }
    curves = {"a": [(0, 0.0), (100, 0.5)], "b": [(0, 0.0), (100, 0.5)], "c": [(0, 0.1), (100, 0.25)]}
    assert first_at(curves, 100) == ["a", "b"]
    assert first_at(curves, 0) == ["c"]
