"""`frontier curate`, `serve` and `migrate`: argument handling and bad input, without starting a worker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.templates import TEMPLATES
from frontier.cli import build_parser, main
from service import migrate
from service.settings import get_settings
from tests.services import as_jsonl, configure, example_records


def test_commands_are_registered() -> None:
    parser = build_parser()
    for argv in (
        ["curate", "d.jsonl", "--student", "s", "--out", "o"],
        ["serve", "--no-worker"],
        ["migrate"],
        ["report", "00000000-0000-0000-0000-000000000001"],
    ):
        assert callable(parser.parse_args(argv).handler)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b'{"id": "a", "instruction": "x", "response": "y"}\n{"id": "a", "instruction": "x", "response": "z"}\n',
            "line 2, field 'id': duplicate id 'a' (first on line 1)",
        ),
        (b"", "the file is empty"),
        (b'{"id": "a", "instruction": "x"}\n', "line 1, field 'response': missing"),
    ],
)
def test_curate_refuses_a_bad_dataset_and_writes_nothing(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    small_student: Path,
    capsys: pytest.CaptureFixture[str],
    data: bytes,
    message: str,
) -> None:
    monkeypatch.setenv("FRONTIER_DATA_DIR", str(tmp_path / "state"))
    path = tmp_path / "data.jsonl"
    path.write_bytes(data)
    out = tmp_path / "out"
    assert main(["curate", str(path), "--student", str(small_student), "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
    get_settings.cache_clear()


def test_curate_refuses_a_bad_student_before_queueing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FRONTIER_DATA_DIR", str(tmp_path / "state"))
    path = tmp_path / "data.jsonl"
    path.write_bytes(b'{"id": "a", "instruction": "x", "response": "y"}\n')
    out = tmp_path / "out"
    assert main(["curate", str(path), "--student", str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not list(out.glob("*.jsonl"))
    get_settings.cache_clear()


def test_migrate_creates_the_schema(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(monkeypatch, {"FRONTIER_DATA_DIR": str(tmp_path)})
    assert main(["migrate"]) == 0
    assert migrate.current_revision() == migrate.head_revision()
    assert f"database at revision {migrate.head_revision()}" in capsys.readouterr().out
    get_settings.cache_clear()


def test_report_refuses_an_unknown_job(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(monkeypatch, {"FRONTIER_DATA_DIR": str(tmp_path)})
    migrate.upgrade()
    missing = "00000000-0000-0000-0000-000000000001"
    assert main(["report", missing, "--data-dir", str(tmp_path)]) == 2
    assert f"job {missing} not found" in capsys.readouterr().err
    get_settings.cache_clear()


def test_curate_with_the_alpaca_template_runs_end_to_end(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, small_student: Path
) -> None:
    monkeypatch.setenv("FRONTIER_DATA_DIR", str(tmp_path / "state"))
    path = tmp_path / "data.jsonl"
    path.write_bytes(as_jsonl(example_records(6)))
    out = tmp_path / "out"
    argv = ["curate", str(path), "--student", str(small_student), "--out", str(out), "--template", "alpaca"]
    assert main(argv) == 0
    decisions = [json.loads(line) for line in (out / "decisions.jsonl").read_text().splitlines()]
    assert len(decisions) == 6
    scored = [c for d in decisions for c in d["candidates"] if c["status"] == "scored"]
    assert scored
    assert {c["template"] for c in scored} == {"alpaca"}
    get_settings.cache_clear()


def test_an_unknown_template_is_refused_by_the_cli_naming_the_known_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (
        ["curate", "d.jsonl", "--student", "s", "--out", str(tmp_path / "out"), "--template", "vicuna"],
        ["score", "d.jsonl", "--student", "s", "--out", str(tmp_path / "s.jsonl"), "--template", "vicuna"],
        ["jobs", "submit", "d.jsonl", "--student", "s", "--template", "vicuna"],
    ):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 2
        err = capsys.readouterr().err
        assert "vicuna" in err
        assert all(name in err for name in TEMPLATES), err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--probe", "--eval-set", "{tmp}/missing.jsonl"], "--eval-set {tmp}/missing.jsonl: no such file"),
        (["--probe", "--eval-set", "{tmp}/bad.jsonl"], "line 2, field 'answer': missing"),
        (["--probe-steps", "4"], "--probe-steps needs --probe"),
        (["--eval-set", "{tmp}/bad.jsonl"], "--eval-set needs --probe"),
        (["--probe", "--probe-steps", "1000000"], "FRONTIER_PROBE_MAX_STEPS"),
        (["--probe", "--probe-params", "[1]"], "--probe-params: expected a JSON object"),
        (["--probe", "--probe-params", '{"stepz": 3}'], "unknown probe parameter"),
    ],
)
def test_curate_refuses_a_bad_probe_request_before_scoring_anything(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    small_student: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    monkeypatch.setenv("FRONTIER_DATA_DIR", str(tmp_path / "state"))
    data = tmp_path / "data.jsonl"
    data.write_bytes(as_jsonl(example_records(4)))
    (tmp_path / "bad.jsonl").write_text('{"instruction": "q", "answer": "1"}\n{"instruction": "q"}\n')
    out = tmp_path / "out"
    argv = ["curate", str(data), "--student", str(small_student), "--out", str(out)]
    assert main([*argv, *(arg.replace("{tmp}", str(tmp_path)) for arg in extra)]) == 2
    assert message.replace("{tmp}", str(tmp_path)) in capsys.readouterr().err
    assert not out.exists()
    get_settings.cache_clear()


def test_jobs_probe_and_probes_parse_their_options() -> None:
    parser = build_parser()
    args = parser.parse_args(
        ["jobs", "probe", "J", "--steps", "4", "--seeds", "2", "--decision-set", "2", "3", "--decision-set", "5"]
    )
    assert (args.steps, args.seeds, args.decision_sets, args.wait) == (4, 2, [2, 3, 5], False)
    assert callable(args.handler)
    shown = parser.parse_args(["jobs", "probes", "J", "7", "--json"])
    assert (shown.job, shown.probe, shown.json) == ("J", "7", True)
    assert parser.parse_args(["jobs", "probes", "J"]).probe is None
    with pytest.raises(SystemExit):
        parser.parse_args(["jobs", "probe", "J", "--steps", "0"])
