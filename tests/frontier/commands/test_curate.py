"""`frontier curate` as the quickstart runs it (the job's progress and result, and nothing that reads as a warning),
and with --probe (a probe run on the finished job, into probe.json)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from frontier.cli import main
from service.settings import get_settings
from tests.services import as_jsonl, configure, example_records

pytestmark = pytest.mark.slow

NOISE = ("Warning", "WARNING", "No hostname")


def test_a_first_run_prints_progress_and_result_and_no_warnings(
    student_dir: Path, example_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "quickstart"
    # The embedded default, as on a fresh machine: no FRONTIER_* settings from the test session.
    env = {key: value for key, value in os.environ.items() if not key.startswith("FRONTIER_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "frontier.cli",
            "curate",
            str(example_data),
            "--student",
            str(student_dir),
            "--out",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == str(out.resolve())
    said = result.stderr.splitlines()
    total = sum(1 for _ in example_data.open(encoding="utf-8"))
    assert f"frontier curate: scored {total}/{total}" in said, result.stderr
    assert any(line.startswith("frontier curate: {'retained': ") for line in said), result.stderr
    noisy = [line for line in (result.stdout + result.stderr).splitlines() if any(word in line for word in NOISE)]
    assert noisy == [], result.stderr


def test_curate_with_probe_writes_probe_json_and_prints_its_results(
    monkeypatch: pytest.MonkeyPatch, small_student: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    configure(monkeypatch, {"FRONTIER_DATA_DIR": str(tmp_path / "state")})
    data = tmp_path / "slice.jsonl"
    data.write_bytes(as_jsonl(example_records(16)))
    out = tmp_path / "out"
    tiny = json.dumps({"eval_every": 2, "held_out": 4, "max_new_tokens": 8, "batch_size": 4})
    argv = ["curate", str(data), "--student", str(small_student), "--out", str(out)]
    assert main([*argv, "--probe", "--probe-steps", "4", "--probe-seeds", "2", "--probe-params", tiny]) == 0
    # capfd: the embedded worker writes to the real stderr descriptor.
    printed = capfd.readouterr()
    assert printed.out.strip().splitlines()[-1] == str(out.resolve())
    probe = json.loads((out / "probe.json").read_text(encoding="utf-8"))
    assert probe["status"] == "succeeded"
    assert probe["budget"]["steps"] == 4
    assert probe["budget"]["seeds"] == 2
    assert probe["eval"]["source"] == "held_out"
    assert probe["eval"]["n_items"] == 4
    # The default run compares the teachers only (the recommendation needs nothing else).
    assert probe["conditions"], probe
    assert all(c.startswith("teacher:") for c in probe["conditions"]), probe["conditions"]
    assert [r["condition"] for r in probe["results"]] == probe["conditions"]
    for result in probe["results"]:
        assert [seed["status"] for seed in result["seeds"]] == ["done", "done"]
        assert result["exact_match"]["mean"] is not None
        assert result["exact_match"]["sd"] is not None
        assert all([p["step"] for p in seed["curve"]] == [0, 2, 4] for seed in result["seeds"])
    # The results table on stderr, a row per condition; the curation's own files are all there too.
    said = printed.err.splitlines()
    assert any(line.startswith("frontier curate: CONDITION") for line in said), printed.err
    for condition in probe["conditions"]:
        assert any(line.startswith(f"frontier curate: {condition} ") for line in said), printed.err
    for name in ("retained.jsonl", "rejected.jsonl", "decisions.jsonl", "report.json", "manifest.json", "README.md"):
        assert (out / name).is_file(), name
    get_settings.cache_clear()


def test_a_worker_that_exits_fails_the_command_instead_of_hanging(
    monkeypatch: pytest.MonkeyPatch, small_student: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    configure(monkeypatch, {"FRONTIER_DATA_DIR": str(tmp_path / "state")})
    data = tmp_path / "slice.jsonl"
    data.write_bytes(as_jsonl(example_records(4)))
    # A local worker that dies before taking any task (a crash, an OOM kill): nothing else would run the job.
    monkeypatch.setattr(
        "workers.local.worker_command", lambda settings, **_: [sys.executable, "-c", "raise SystemExit(3)"]
    )
    code = main(["curate", str(data), "--student", str(small_student), "--out", str(tmp_path / "out")])
    assert code == 2
    said = capfd.readouterr().err
    assert "the local worker exited with code 3 before the work it was running finished" in said, said
    assert not (tmp_path / "out" / "retained.jsonl").exists()
    get_settings.cache_clear()
