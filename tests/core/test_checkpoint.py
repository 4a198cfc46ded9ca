from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.checkpoint import CheckpointError, inspect_checkpoint
from tests.workers.scoring.builders import write_config


@pytest.fixture
def checkpoint(gpt2_student_dir: Path, tmp_path: Path) -> Path:
    """A private copy of a valid checkpoint that a test may break."""
    return Path(shutil.copytree(gpt2_student_dir, tmp_path / "student"))


def test_valid_checkpoint_is_fingerprinted(checkpoint: Path) -> None:
    info = inspect_checkpoint(checkpoint)
    assert info.path == str(checkpoint.resolve())
    assert info.model_type == "gpt2"
    assert info.max_length == 256
    assert info.weight_files == ("model.safetensors",)
    assert len(info.fingerprint) == 64
    assert inspect_checkpoint(checkpoint).fingerprint == info.fingerprint


@pytest.mark.parametrize("changed", ["model.safetensors", "config.json", "tokenizer.json"])
def test_fingerprint_follows_content(checkpoint: Path, changed: str) -> None:
    before = inspect_checkpoint(checkpoint).fingerprint
    with (checkpoint / changed).open("ab") as handle:
        handle.write(b" ")
    assert inspect_checkpoint(checkpoint).fingerprint != before


def test_pickle_only_weights_are_refused(checkpoint: Path) -> None:
    (checkpoint / "model.safetensors").rename(checkpoint / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match=r"only pickle weights \(pytorch_model\.bin\)"):
        inspect_checkpoint(checkpoint)


def test_remote_code_is_refused(checkpoint: Path) -> None:
    write_config(checkpoint, auto_map={"AutoModelForCausalLM": "modeling_evil.EvilModel"})
    with pytest.raises(CheckpointError, match="remote code"):
        inspect_checkpoint(checkpoint)


def test_remote_code_in_tokenizer_config_is_refused(checkpoint: Path) -> None:
    path = checkpoint / "tokenizer_config.json"
    path.write_text(path.read_text().rstrip().rstrip("}") + ', "auto_map": {"AutoTokenizer": ["x.Tok", null]}}')
    with pytest.raises(CheckpointError, match=r"tokenizer_config\.json asks for remote code"):
        inspect_checkpoint(checkpoint)


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda d: shutil.rmtree(d), "does not exist"),
        (lambda d: (d / "config.json").unlink(), "has no config.json"),
        (lambda d: (d / "config.json").write_text("{not json"), "config.json is not valid JSON"),
        (lambda d: (d / "model.safetensors").unlink(), "has no .safetensors weights"),
        (lambda d: (d / "tokenizer.json").unlink(), "has no tokenizer files"),
        (lambda d: write_config(d, model_type=None), "has no 'model_type'"),
    ],
)
def test_broken_checkpoints_name_what_is_wrong(checkpoint: Path, breakage: object, message: str) -> None:
    breakage(checkpoint)  # type: ignore[operator]
    with pytest.raises(CheckpointError, match=message):
        inspect_checkpoint(checkpoint)


def test_allowed_roots_refuse_outside_paths_symlinks_and_traversal(checkpoint: Path, tmp_path: Path) -> None:
    root = tmp_path / "students"
    root.mkdir()
    inside = Path(shutil.copytree(checkpoint, root / "ok"))
    assert inspect_checkpoint(inside, allowed_roots=[root]).path == str(inside.resolve())
    with pytest.raises(CheckpointError, match="outside the allowed student roots"):
        inspect_checkpoint(checkpoint, allowed_roots=[root])
    with pytest.raises(CheckpointError, match="outside the allowed student roots"):
        inspect_checkpoint(root / ".." / "student", allowed_roots=[root])
    (root / "link").symlink_to(checkpoint, target_is_directory=True)
    with pytest.raises(CheckpointError, match="outside the allowed student roots"):
        inspect_checkpoint(root / "link", allowed_roots=[root])
    # A weight file that links out of the roots is refused too.
    (inside / "model.safetensors").unlink()
    (inside / "model.safetensors").symlink_to(checkpoint / "model.safetensors")
    with pytest.raises(CheckpointError, match="outside the allowed student roots"):
        inspect_checkpoint(inside, allowed_roots=[root])
