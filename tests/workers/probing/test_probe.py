"""run_probe: the learning curve, its cost, the LoRA path, cancellation and determinism."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

from core.probes import CurvePoint, EvalItem, ProbeBudget, TrainingExample, generation_room
from workers.probing import ProbeOutcome, run_probe
from workers.probing.data import PromptEncoder
from workers.probing.student import load_trainable_student


def _probe(student: Path, examples: list[TrainingExample], items: list[EvalItem], budget: ProbeBudget) -> ProbeOutcome:
    return run_probe(student, examples, items, budget=budget, seed=0, device="cpu")


def test_curve_has_a_point_at_zero_every_eval_every_and_the_end(
    gpt2_student_dir: Path, examples: list[TrainingExample], eval_items: list[EvalItem], budget: ProbeBudget
) -> None:
    """Points at 0, 3, 6 and the last step (7), each reported as measured; the cost covers the whole run."""
    seen: list[CurvePoint] = []
    outcome = run_probe(
        gpt2_student_dir, examples, eval_items, budget=budget, seed=0, device="cpu", on_point=seen.append
    )
    assert [point.step for point in outcome.curve] == [0, 3, 6, 7]
    assert seen == list(outcome.curve)
    assert all(point.loss is not None and math.isfinite(point.loss) for point in outcome.curve)
    assert all(0.0 <= point.exact_match <= 1.0 for point in outcome.curve)
    # Seven steps at a high learning rate on sums in the eval items' own layout lower their held-out loss.
    first, last = outcome.curve[0].loss, outcome.final.loss
    assert first is not None
    assert last is not None
    assert last < first
    result = outcome.as_dict()
    assert result["final"] == {"step": 7, "loss": last, "exact_match": outcome.final.exact_match}
    cost = result["cost"]
    assert cost["method"] == "full"
    assert cost["parameters"] == cost["trainable_parameters"] > 0
    assert (cost["examples"], cost["steps"], cost["max_new_tokens"]) == (len(examples), 7, 6)
    # Every step feeds a batch of four whole rows, so at least four rows' worth of tokens, and no padding.
    assert 7 * 4 * 10 < cost["tokens"] < 7 * 4 * 100
    assert cost["seconds"] >= cost["train_seconds"] + cost["eval_seconds"] > 0
    assert [shown["answer"] for shown in result["completions"]] == ["7", "8", "9"]
    assert not outcome.stopped


def test_a_large_student_trains_a_lora_adapter(
    llama_student_dir: Path, examples: list[TrainingExample], eval_items: list[EvalItem], budget: ProbeBudget
) -> None:
    """Over the threshold, only an adapter trains; it starts as the student itself and then moves the loss."""
    outcome = run_probe(
        llama_student_dir, examples, eval_items, budget=budget, seed=0, device="cpu", lora_above_params=1_000
    )
    cost = outcome.as_dict()["cost"]
    assert cost["method"] == "lora"
    assert 0 < cost["trainable_parameters"] < cost["parameters"]
    assert [point.step for point in outcome.curve] == [0, 3, 6, 7]
    losses = [point.loss for point in outcome.curve]
    assert all(loss is not None and math.isfinite(loss) for loss in losses)
    assert losses[-1] != losses[0]
    # The adapter's second matrix starts at zero: before training the student is unchanged.
    full = run_probe(
        llama_student_dir,
        examples,
        eval_items,
        budget=ProbeBudget(steps=1, batch_size=4, eval_every=1, warmup_steps=0, max_new_tokens=2),
        seed=0,
        device="cpu",
    )
    assert full.cost.method == "full"
    assert full.curve[0].loss == pytest.approx(losses[0], rel=1e-5)


def test_should_stop_ends_the_run_at_a_curve_point(
    gpt2_student_dir: Path, examples: list[TrainingExample], eval_items: list[EvalItem], budget: ProbeBudget
) -> None:
    """A cancel seen at the step-3 point stops there: the curve so far, the steps actually taken."""
    points: list[CurvePoint] = []
    outcome = run_probe(
        gpt2_student_dir,
        examples,
        eval_items,
        budget=budget,
        seed=0,
        device="cpu",
        on_point=points.append,
        should_stop=lambda: len(points) >= 2,
    )
    assert [point.step for point in outcome.curve] == [0, 3]
    assert outcome.final.step == 3
    assert outcome.cost.steps == 3
    assert outcome.stopped


def test_a_longer_schedule_runs_a_prefix_of_that_fine_tune(
    gpt2_student_dir: Path, examples: list[TrainingExample], eval_items: list[EvalItem], budget: ProbeBudget
) -> None:
    """Seven steps of a 14-step schedule measure what the 14-step run measures on the way, not a 7-step run."""
    prefix = _probe(gpt2_student_dir, examples, eval_items, replace(budget, schedule_steps=14)).curve
    whole = _probe(gpt2_student_dir, examples, eval_items, replace(budget, steps=14)).curve
    alone = _probe(gpt2_student_dir, examples, eval_items, budget).curve
    assert [point.step for point in prefix] == [0, 3, 6, 7]
    assert prefix[:3] == whole[:3]  # steps 0, 3 and 6 of the same run
    # The 7-step run decays its learning rate sooner, so by step 6 it has trained differently.
    assert alone[2].loss != prefix[2].loss


def test_same_seed_same_curve(
    gpt2_student_dir: Path, examples: list[TrainingExample], eval_items: list[EvalItem], budget: ProbeBudget
) -> None:
    """Two runs with one seed give the same curve, completions and token count."""
    first = _probe(gpt2_student_dir, examples, eval_items, budget).as_dict()
    second = _probe(gpt2_student_dir, examples, eval_items, budget).as_dict()
    assert first["curve"] == second["curve"]
    assert first["completions"] == second["completions"]
    assert first["cost"]["tokens"] == second["cost"]["tokens"]


def test_a_probe_needs_examples_and_eval_items(
    gpt2_student_dir: Path, examples: list[TrainingExample], eval_items: list[EvalItem], budget: ProbeBudget
) -> None:
    """Nothing to train on, or nothing to measure, is refused before the student is loaded."""
    with pytest.raises(ValueError, match="training example"):
        _probe(gpt2_student_dir, [], eval_items, budget)
    with pytest.raises(ValueError, match="eval item"):
        _probe(gpt2_student_dir, examples, [], budget)


def test_the_answer_pattern_replaces_the_default_extraction(
    gpt2_student_dir: Path, examples: list[TrainingExample], budget: ProbeBudget
) -> None:
    """The user's pattern decides what the answer is; a pattern that is not a regular expression is refused."""
    # `\A` matches the empty string at the start of any completion, so the answer read is always "", which the
    # default extraction (an `Answer: X` or a number) never returns.
    items = [EvalItem("Add 1 and 1.", "", "")]
    matched = run_probe(gpt2_student_dir, examples, items, budget=budget, seed=0, device="cpu", answer_pattern=r"\A")
    assert [point.exact_match for point in matched.curve] == [1.0] * 4
    default = _probe(gpt2_student_dir, examples, items, budget)
    assert [point.exact_match for point in default.curve] == [0.0] * 4
    with pytest.raises(ValueError, match="regular expression"):
        run_probe(gpt2_student_dir, examples, items, budget=budget, seed=0, device="cpu", answer_pattern="(")


def test_without_a_generation_length_the_longest_response_sets_it(
    gpt2_student_dir: Path, examples: list[TrainingExample], eval_items: list[EvalItem], budget: ProbeBudget
) -> None:
    """No max_new_tokens: room for the longest training response in tokens, reported in the cost."""
    outcome = _probe(gpt2_student_dir, examples, eval_items, replace(budget, steps=1, max_new_tokens=None))
    student = load_trainable_student(gpt2_student_dir, device="cpu", lora_above_params=None)
    rows = PromptEncoder(student.tokenizer, "plain", max_length=student.max_length).training_rows(examples)
    longest = max(len(row.ids) - row.response_start for row in rows)
    assert outcome.cost.max_new_tokens == generation_room(longest) == longest + 16
