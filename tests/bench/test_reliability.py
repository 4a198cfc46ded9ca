"""The truth's agreement with itself: leave-one-draw-out top-1 and the two halves, on a hand-made run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.experiment.reliability import draw_scores, main, seed_agreement


def _seed(number: int, draws: dict[str, list[float]], probe_first: str | None) -> dict[str, Any]:
    conditions: dict[str, Any] = {
        f"teacher:{teacher}": {"draws": [{"accuracy": {"in_distribution": value}} for value in values]}
        for teacher, values in draws.items()
    }
    conditions["union"] = {"eval": {"in_distribution": {"accuracy": 0.1}}}
    return {
        "seed": number,
        "conditions": conditions,
        "report": {"ranking": [probe_first] if probe_first else [], "probe": {"conclusive": probe_first == "a"}},
        "probe": {"id": 1} if probe_first else None,
    }


def test_a_steady_truth_agrees_with_itself_and_scores_the_probe() -> None:
    """Every draw puts `a` first: one fine-tune per teacher is always right, and so is a probe that names `a`."""
    row = seed_agreement(_seed(0, {"a": [0.9, 0.8, 0.95, 0.85], "b": [0.5, 0.6, 0.4, 0.55]}, "a"))
    assert row.draws == 4
    assert row.draw_firsts == [["a"]] * 4
    assert row.halves_agree is True
    assert row.one_fine_tune == 1.0
    assert row.probe == 1.0
    assert row.one_fine_tune_regret == row.probe_regret == 0.0
    assert row.probe_right(row.all_draws) is True


def test_a_coin_of_a_truth_caps_what_any_recommendation_scores() -> None:
    """Two teachers that swap first place from draw to draw: the halves disagree and one fine-tune is a coin."""
    row = seed_agreement(_seed(1, {"a": [0.9, 0.9, 0.5, 0.5], "b": [0.5, 0.5, 0.9, 0.9]}, "b"))
    assert row.halves is not None
    assert row.halves_agree is False
    # Each left-out draw's first is the other teacher's in the mean of the other three (two of them favour it).
    assert row.one_fine_tune == 0.0
    # The probe names `b`: right against the means that leave out an `a` draw, wrong against the other two.
    assert row.probe == 0.5
    # Each left-out mean has its best at 0.767 and the other teacher at 0.633: a wrong pick costs 13.3 points.
    assert row.one_fine_tune_regret == pytest.approx(0.4 / 3)
    assert row.probe_regret == pytest.approx(0.2 / 3)
    assert row.probe_right(row.halves[0]) is False
    assert row.probe_right(row.halves[1]) is True


def test_a_tie_within_a_draw_counts_as_a_coin() -> None:
    """A draw that ties its first two names each with half a chance; the truth's best is `a` alone."""
    row = seed_agreement(_seed(2, {"a": [0.8, 0.9], "b": [0.8, 0.5]}, None))
    # Leave draw 0 out (a = b): other draw has `a` first -> 0.5. Leave draw 1 out (a first): draw 0 ties -> 1.0.
    assert row.one_fine_tune == pytest.approx(0.75)
    assert row.probe is None
    assert row.halves is None


def test_a_run_with_one_draw_is_refused() -> None:
    """One fine-tune per teacher cannot be checked against itself: the error names the flag that fixes it."""
    seed = {"seed": 0, "conditions": {"teacher:a": {"eval": {"in_distribution": {"accuracy": 0.5}}}}}
    with pytest.raises(ValueError, match="--truth-draws 2"):
        draw_scores(seed)


def test_the_command_prints_a_table_per_family(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m bench.experiment.reliability --out DIR` prints each family's rows and the totals."""
    seeds = [
        _seed(0, {"a": [0.9, 0.8, 0.95, 0.85], "b": [0.5, 0.6, 0.4, 0.55]}, "a"),
        _seed(1, {"a": [0.9, 0.9, 0.5, 0.5], "b": [0.5, 0.5, 0.9, 0.9]}, "b"),
    ]
    (tmp_path / "results.json").write_text(json.dumps({"families": {"toy": {"seeds": seeds}}}))
    assert main(["--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "### toy" in printed
    assert "| 1 | a, a, b, b |" in printed
    assert "names the other draws' best teacher in 1.0 of 2 (expected; its pick trains 6.7 points below" in printed
    assert "the probe in 1.5 of 2 (3.3 points below)" in printed
    assert "share a first teacher in 1 of 2" in printed
    # Seed 0's probe (`a`) was conclusive and right every time; seed 1's (`b`) inconclusive and a coin.
    assert "conclusive probe verdicts right in 1.0 of 1; inconclusive probe verdicts right in 0.5 of 1" in printed
    assert "a (conclusive): yes / yes / yes" in printed
