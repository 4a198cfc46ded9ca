"""bench/probe.py: the probe benchmark runs every teacher's probe and reports its figures."""

from __future__ import annotations

import json
from pathlib import Path

from bench.probe import load_probe_data, main


def test_probe_data_holds_out_the_last_samples() -> None:
    """Eval items are the last samples; no teacher trains on them."""
    by_teacher, items = load_probe_data(held_out=4)
    held = {(item.instruction, item.input) for item in items}
    assert len(items) == 4
    assert len(by_teacher) >= 2
    for examples in by_teacher.values():
        assert examples
        assert not held & {(example.instruction, example.input) for example in examples}


def test_a_short_cpu_run_reports_every_teacher(tmp_path: Path) -> None:
    """Two steps on the CPU: every teacher's probe trains, and its figures are written."""
    out = tmp_path / "probe.json"
    assert main(["--shape", "tiny", "--steps", "2", "--held-out", "2", "--device", "cpu", "--json", str(out)]) == 0
    (result,) = json.loads(out.read_text())
    by_teacher, _ = load_probe_data(held_out=2)
    assert set(result["teachers"]) == set(by_teacher)
    for figures in result["teachers"].values():
        assert figures["method"] == "full"
        assert figures["steps_per_s"] > 0
        assert figures["loss_end"] > 0
