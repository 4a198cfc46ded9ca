from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.scores import SCORE_FIELDS
from frontier.cli import main
from tests.workers.scoring.builders import build_random_student, write_config

GOOD = {
    "id": "s-1",
    "instruction": "Add two and three.",
    "input": "",
    "response": "The answer is five.",
    "refinements": [
        {"teacher": "teacher-a", "response": "Two plus three makes five."},
        {"teacher": "teacher-b", "instruction": "What is two plus three?", "response": "Five."},
    ],
}
# Every field of the engine's contract, plus the status, the template and the error.
OUTPUT_KEYS = {"status", "template", "error", *SCORE_FIELDS}


def _write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_score_writes_one_line_per_candidate(gpt2_student_dir: Path, tmp_path: Path) -> None:
    data = _write_jsonl(
        tmp_path / "data.jsonl", [json.dumps(GOOD), json.dumps({**GOOD, "id": "s-2", "refinements": []})]
    )
    out = tmp_path / "scores.jsonl"
    assert main(["score", str(data), "--student", str(gpt2_student_dir), "--out", str(out), "--device", "cpu"]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["sample_id"], r["candidate"], r["teacher"]) for r in lines] == [
        ("s-1", "original", None),
        ("s-1", "teacher-a", "teacher-a"),
        ("s-1", "teacher-b", "teacher-b"),
        ("s-2", "original", None),
    ]
    for record in lines:
        assert record.keys() >= OUTPUT_KEYS
        assert record["status"] == "scored"
        assert record["template"] == "plain"
        assert record["ifd"] > 0
        assert record["rank_mean"] >= 1
        assert record["rsr"] > 0
        assert len(record["student_fingerprint"]) == 64
    # The teacher that rewrote the instruction is scored on its own instruction.
    assert lines[2]["n_instruction_tokens"] != lines[0]["n_instruction_tokens"]


@pytest.fixture(scope="module")
def long_student_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Selective Reflection-Tuning's reverse prompt holds the whole response: it needs more than 256 tokens here."""
    return build_random_student(tmp_path_factory.mktemp("long-gpt2"), max_length=1024)


@pytest.mark.parametrize("template", ["cherry", "reflection", "superfiltering"])
def test_score_with_a_research_template(long_student_dir: Path, tmp_path: Path, template: str) -> None:
    data = _write_jsonl(tmp_path / "data.jsonl", [json.dumps(GOOD)])
    out = tmp_path / "scores.jsonl"
    argv = ["score", str(data), "--student", str(long_student_dir), "--out", str(out), "--device", "cpu"]
    assert main([*argv, "--template", template]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 3
    for record in lines:
        assert record.keys() >= OUTPUT_KEYS
        assert record["template"] == template
        assert record["status"] == "scored", record["error"]
        assert record["ifd"] > 0
        assert record["rank_mean"] >= 1
        assert record["rsr"] > 0
        assert record["rank_clip"] == 100
        # Only Selective Reflection-Tuning measures the reversed direction.
        assert (record["rifd"] is not None) is (template == "reflection")


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ([json.dumps(GOOD), "{not json"], "line 2"),
        ([json.dumps({**GOOD, "response": 42})], "field 'response'"),
        ([json.dumps({k: v for k, v in GOOD.items() if k != "id"})], "field 'id'"),
        ([json.dumps(GOOD), json.dumps(GOOD)], "duplicate"),
        ([json.dumps({**GOOD, "refinements": [{"teacher": "t", "response": None}]})], "line 1"),
    ],
)
def test_bad_records_stop_before_any_model_work(
    gpt2_student_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], lines: list[str], expected: str
) -> None:
    data = _write_jsonl(tmp_path / "data.jsonl", lines)
    out = tmp_path / "scores.jsonl"
    assert main(["score", str(data), "--student", str(gpt2_student_dir), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "error" in error
    assert expected in error
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [data]


def test_empty_and_missing_files_are_clear_errors(
    gpt2_student_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = _write_jsonl(tmp_path / "empty.jsonl", [])
    assert main(["score", str(empty), "--student", str(gpt2_student_dir), "--out", str(tmp_path / "o")]) == 2
    assert "empty" in capsys.readouterr().err
    missing = tmp_path / "nope.jsonl"
    assert main(["score", str(missing), "--student", str(gpt2_student_dir), "--out", str(tmp_path / "o")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_unsafe_students_are_refused(
    gpt2_student_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    data = _write_jsonl(tmp_path / "data.jsonl", [json.dumps(GOOD)])
    pickled = Path(shutil.copytree(gpt2_student_dir, tmp_path / "pickled"))
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    remote = Path(shutil.copytree(gpt2_student_dir, tmp_path / "remote"))
    write_config(remote, auto_map={"AutoModelForCausalLM": "evil.Model"})
    for student, message in ((pickled, "pickle"), (remote, "remote code")):
        out = tmp_path / f"{student.name}.jsonl"
        assert main(["score", str(data), "--student", str(student), "--out", str(out)]) == 2
        assert message in capsys.readouterr().err
        assert not out.exists()


def test_frontier_score_on_the_example_data(student_dir: Path, example_data: Path, tmp_path: Path) -> None:
    """The installed entry point, on the trained example student and the example dataset."""
    out = tmp_path / "scores.jsonl"
    frontier = Path(sys.executable).parent / "frontier"
    completed = subprocess.run(
        [str(frontier), "score", str(example_data), "--student", str(student_dir), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    samples = {json.loads(line)["id"] for line in example_data.read_text().splitlines() if line.strip()}
    assert {r["sample_id"] for r in records} == samples
    assert all(r["status"] == "scored" for r in records), [r["error"] for r in records if r["error"]]
    assert "scored" in completed.stderr
