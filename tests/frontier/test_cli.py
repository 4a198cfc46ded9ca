"""`frontier curate`, `serve` and `migrate`: argument handling and bad input, without starting a worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from frontier.cli import build_parser, main
from service import schema
from service.settings import get_settings
from tests.services import configure


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
    assert schema.current_revision() == schema.head_revision()
    assert f"database at revision {schema.head_revision()}" in capsys.readouterr().out
    get_settings.cache_clear()


def test_report_refuses_an_unknown_job(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(monkeypatch, {"FRONTIER_DATA_DIR": str(tmp_path)})
    schema.upgrade()
    missing = "00000000-0000-0000-0000-000000000001"
    assert main(["report", missing, "--data-dir", str(tmp_path)]) == 2
    assert f"job {missing} not found" in capsys.readouterr().err
    get_settings.cache_clear()
