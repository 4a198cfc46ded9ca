"""Probe budgets, eval sets and answer extraction: the torch-free contract the API checks requests against."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.dataset import DatasetError, LimitError
from core.probes import (
    ProbeBudget,
    ProbeLimits,
    check_answer_pattern,
    condition_kind,
    extract_answer,
    follow_up_params,
    generation_room,
    mean_sd,
    normalize_answer,
    parse_budget,
    parse_eval_set,
)


@pytest.mark.parametrize(
    ("params", "warmup"),
    [({}, ProbeBudget().warmup_steps), ({"steps": 4}, 0), ({"steps": 40}, 4), ({"steps": 4, "warmup_steps": 2}, 2)],
)
def test_a_short_budget_gets_a_shorter_warm_up(params: dict[str, int], warmup: int) -> None:
    """Without a warm-up given, the default shrinks to a tenth of a budget too short for it."""
    assert parse_budget(params).warmup_steps == warmup


def test_budget_refusals_name_the_field_or_the_setting() -> None:
    with pytest.raises(LimitError, match="FRONTIER_PROBE_MAX_STEPS") as over:
        parse_budget({"steps": 10}, ProbeLimits(probe_max_steps=5))
    assert over.value.field == "steps"
    for bad, field in (({"steps": 0}, "steps"), ({"peak_lr": 2.0}, "peak_lr"), ({"stepz": 3}, "stepz")):
        with pytest.raises(DatasetError) as refused:
            parse_budget(bad)
        assert refused.value.field == field
    with pytest.raises(DatasetError, match="fewer warm-up steps"):
        parse_budget({"steps": 5, "warmup_steps": 5})


def test_a_schedule_longer_than_the_run_makes_the_probe_a_prefix() -> None:
    """`schedule_steps` defaults to the run's own length and may only be longer; it is bounded like `steps`."""
    assert parse_budget({}).schedule_steps is None
    assert parse_budget({"steps": 300, "schedule_steps": None}).schedule_steps is None
    assert parse_budget({"steps": 300, "batch_size": 16, "schedule_steps": 500}).schedule_steps == 500
    with pytest.raises(DatasetError, match="at least as long as the steps run") as short:
        parse_budget({"steps": 5, "schedule_steps": 4})
    assert short.value.field == "schedule_steps"
    with pytest.raises(LimitError, match="FRONTIER_PROBE_MAX_STEPS") as over:
        parse_budget({"steps": 5, "schedule_steps": 10}, ProbeLimits(probe_max_steps=8))
    assert over.value.field == "schedule_steps"


def test_the_default_generation_length_leaves_room_after_the_longest_response() -> None:
    """At least 16 tokens more than the longest response, a quarter more for long ones; None is the default."""
    assert generation_room(10) == 26
    assert generation_room(400) == 500
    assert parse_budget({}).max_new_tokens is None
    assert parse_budget({"max_new_tokens": None}).max_new_tokens is None
    assert parse_budget({"max_new_tokens": 64}).max_new_tokens == 64


def test_answers_are_read_from_the_end() -> None:
    assert extract_answer("12+3=15\nAnswer: 1,215") == "1215"
    assert extract_answer("it is 3, no 4") == "4"
    assert extract_answer("nothing") is None
    # The last answer line: its number when it holds one, else the whole line (words, lists, fractions).
    assert extract_answer("reverse it letter by letter\nAnswer: dcba.") == "dcba"
    assert extract_answer("Answer: first\nAnswer:  second guess  \nthe end") == "second guess"
    assert extract_answer("so x is known\nAnswer: x = 5") == "5"
    assert extract_answer("Answer: 12 apples\nAnswer: twelve") == "twelve"
    assert extract_answer("Answer: 1,234 then Answer: 5") == "5"
    assert extract_answer("Answer: -5\nAnswer:\n") == "-5"
    assert extract_answer("5 3 8 1\nAnswer: 1  3 5 8") == "1 3 5 8"
    assert extract_answer("Answer: 1 3 5 8") != extract_answer("Answer: 1 3 5 9")
    assert extract_answer("Answer: 1,2,3") == "1,2,3"
    assert extract_answer("Answer: 3/4.") == "3/4"
    assert normalize_answer(" 1 3  5 ") == "1 3 5"
    assert normalize_answer("1,234") == "1234"
    assert extract_answer("x=7; y=9", check_answer_pattern(r"x=(\d+)")) == "7"
    with pytest.raises(DatasetError, match="not a valid regular expression"):
        check_answer_pattern("(")


def test_eval_sets_name_the_line_and_field() -> None:
    items = parse_eval_set(
        b'{"instruction": "Add 1 and 2.", "answer": 3}\n\n{"instruction": "q", "input": "i", "answer": "1,000"}\n'
    )
    assert [(item.answer, item.reference) for item in items] == [("3", "Answer: 3"), ("1000", "Answer: 1000")]
    with pytest.raises(DatasetError, match="line 2, field 'answer': missing"):
        parse_eval_set(b'{"instruction": "a", "answer": "1"}\n{"instruction": "b"}\n')
    table = pa.table({"instruction": ["a", "b"], "answer": ["1", None]})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    with pytest.raises(DatasetError, match="row 2, field 'answer'"):
        parse_eval_set(buffer.getvalue())
    with pytest.raises(LimitError, match="FRONTIER_PROBE_MAX_EVAL_ITEMS"):
        parse_eval_set(b'{"instruction": "a", "answer": "1"}\n' * 3, max_items=2)


def test_conditions_and_summaries() -> None:
    assert condition_kind("teacher:weak") == ("teacher", "weak")
    assert condition_kind("decision_set:4") == ("decision_set", "4")
    assert condition_kind("union") == ("union", None)
    assert mean_sd([0.5]) == (0.5, None)
    mean, sd = mean_sd([0.2, 0.4])
    assert mean == pytest.approx(0.3)
    assert sd == pytest.approx(0.1414, abs=1e-4)


def test_a_follow_up_trains_the_contenders_twice_as_long_within_the_schedule() -> None:
    """The run's own budget, doubled steps, only the contenders; a prefix probe stops at its schedule's end."""
    budget = ProbeBudget().as_dict()
    follow_up = follow_up_params(budget, ["b", "a"])
    assert follow_up is not None
    assert follow_up == {
        **{name: value for name, value in budget.items() if value is not None},
        "steps": 2 * budget["steps"],
        "teachers": ["b", "a"],
    }
    prefix = {**budget, "steps": 300, "schedule_steps": 500}
    assert (follow_up_params(prefix, ["a", "b"]) or {}).get("steps") == 500
    assert follow_up_params({**budget, "steps": 500, "schedule_steps": 500}, ["a", "b"]) is None
    assert follow_up_params(budget, ["a"]) is None
