"""frontier.probe_view: the probe run's results table, facts, listing and progress lines, from ProbeOut JSON."""

from __future__ import annotations

import io
from typing import Any

from frontier.probe_view import ProbeProgress, describe, fraction, listing, mean_sd, results_rows, results_table


def seed(n: int, status: str = "done", *, em: float = 0.5, tokens: int = 100) -> dict[str, Any]:
    """One seed of a condition, done with a cost (or pending without one)."""
    done = status == "done"
    return {
        "seed": n,
        "status": status,
        "curve": [{"step": 0, "loss": 2.0, "exact_match": 0.0}, {"step": 4, "loss": 1.0, "exact_match": em}],
        "final": {"step": 4, "loss": 1.0, "exact_match": em} if done else None,
        "cost": {"method": "full", "steps": 4, "tokens": tokens, "seconds": 0.25} if done else None,
        "error": None,
    }


def probe(status: str = "succeeded") -> dict[str, Any]:
    """A ProbeOut of two conditions whose names this module never hard-codes in what it checks."""
    return {
        "id": 3,
        "job_id": "j",
        "status": status,
        "budget": {
            "steps": 4,
            "batch_size": 2,
            "peak_lr": 0.001,
            "warmup_steps": 0,
            "eval_every": 2,
            "seeds": 2,
            "held_out": 4,
            "max_new_tokens": 8,
        },
        "answer_pattern": None,
        "eval": {"source": "held_out", "n_items": 4, "held_out_samples": 4, "note": "four held out"},
        "conditions": ["teacher:x", "curriculum:new-kind"],
        "progress": {"tasks_total": 4, "tasks_done": 3, "steps_total": 16, "steps_done": 14, "fraction": 0.875},
        "results": [
            {
                "condition": "teacher:x",
                "n_examples": 9,
                "exact_match": {"mean": 0.625, "sd": 0.125},
                "loss": {"mean": 1.0, "sd": 0.0},
                "seeds": [seed(0, em=0.5, tokens=1200), seed(1, em=0.75, tokens=1300)],
            },
            {
                "condition": "curriculum:new-kind",
                "n_examples": 5,
                "exact_match": {"mean": 0.25, "sd": None},
                "loss": {"mean": None, "sd": None},
                "seeds": [seed(0, em=0.25), {**seed(1, "failed"), "error": "boom"}],
            },
        ],
        "cost": {"steps": 12, "tokens": 2600, "seconds": 0.75},
        "error": None,
        "created_at": "2026-12-02T10:00:00Z",
    }


def test_results_rows_summarise_each_condition_in_the_runs_order() -> None:
    rows = results_rows(probe())
    assert rows == [
        ["teacher:x", "62.5 ± 12.5%", "1.000 ± 0.000", "2/2", "9", "8", "2,500", "0.5"],
        ["curriculum:new-kind", "25.0%", "-", "1/2 (1 failed)", "5", "4", "100", "0.2"],
    ]
    table = results_table(probe())
    assert table[0].split()[0] == "CONDITION"
    # Columns line up: every cell of a column starts at the same offset.
    assert {line.index(row[1]) for line, row in zip(table[1:], rows, strict=True)} == {table[0].index("EXACT MATCH")}


def test_mean_sd_and_fraction_read_missing_values_as_nothing_yet() -> None:
    assert mean_sd(None) == "-"
    assert mean_sd({"mean": 0.5, "sd": None}, percent=True) == "50.0%"
    assert mean_sd({"mean": 1.23456, "sd": 0.1}) == "1.235 ± 0.100"
    assert fraction({}) == 0.0
    assert fraction({"progress": {"fraction": 1.5}}) == 1.0


def test_describe_and_listing_show_the_run() -> None:
    text = "\n".join(describe(probe()))
    assert "status      succeeded" in text
    assert "3/4 tasks, 14/16 steps (88%)" in text
    assert "4 steps of 2 examples, peak lr 0.001 (0 warm-up), a curve point every 2 steps, 2 seeds" in text
    assert "4 items (held_out): four held out" in text
    assert "12 steps, 2,600 tokens, 0.8s" in text
    prefix = {**probe(), "budget": {**probe()["budget"], "schedule_steps": 10}}
    assert "4 steps (the first of a 10-step schedule) of 2 examples" in "\n".join(describe(prefix))
    lines = listing([probe("running"), probe()])
    assert lines[0].split()[:3] == ["PROBE", "STATUS", "PROGRESS"]
    assert [line.split()[1] for line in lines[1:]] == ["running", "succeeded"]
    assert "2026-12-02 10:00:00" in lines[1]


class Terminal(io.StringIO):
    """A stream that says it is a terminal, so the bar draws."""

    def isatty(self) -> bool:
        return True


def test_progress_prints_a_line_per_change_off_a_terminal_and_a_bar_on_one() -> None:
    log = io.StringIO()
    follow = ProbeProgress(log, "x: ")
    for state in ("queued", "running", "running", "succeeded"):
        follow({**probe(state), "progress": {**probe()["progress"], "fraction": 1.0 if state == "succeeded" else 0.5}})
    follow.close()
    assert log.getvalue().splitlines() == [
        "x: probe 3 queued: 3/4 tasks, 14/16 steps (50%)",
        "x: probe 3 running: 3/4 tasks, 14/16 steps (50%)",
        "x: probe 3 succeeded: 3/4 tasks, 14/16 steps (100%)",
    ]
    tty = Terminal()
    bar = ProbeProgress(tty, "x: ")
    bar(probe("running"))
    bar.close()
    assert "\rprobe 3 running 3/4 tasks [" in tty.getvalue()
    assert "14/16 steps" in tty.getvalue()
