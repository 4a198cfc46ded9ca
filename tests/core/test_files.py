"""core.files.atomic_write: the file appears whole or not at all, with the mode any user file gets."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from core.files import atomic_write


def test_the_file_appears_only_when_complete_with_the_umask_mode(tmp_path: Path) -> None:
    target = tmp_path / "out" / "scores.jsonl"
    previous = os.umask(0o022)
    try:
        with atomic_write(target) as handle:
            handle.write("first line\n")
            assert not target.exists()  # still under its temporary name
        with atomic_write(tmp_path / "data.bin", binary=True) as raw:
            raw.write(b"\x00\x01")
    finally:
        os.umask(previous)
    assert target.read_text(encoding="utf-8") == "first line\n"
    assert (tmp_path / "data.bin").read_bytes() == b"\x00\x01"
    # Not mkstemp's 0600: readable by the group and others, as the umask allows.
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert sorted(p.name for p in target.parent.iterdir()) == ["scores.jsonl"]


def test_an_error_leaves_nothing_and_keeps_an_older_file(tmp_path: Path) -> None:
    target = tmp_path / "scores.jsonl"
    target.write_text("old\n", encoding="utf-8")

    def fail_halfway() -> None:
        with atomic_write(target) as handle:
            handle.write("half")
            raise RuntimeError("model failed")

    with pytest.raises(RuntimeError, match="model failed"):
        fail_halfway()
    assert target.read_text(encoding="utf-8") == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.jsonl"]
