"""Torch-free inspection of a student checkpoint directory: safety checks and a content fingerprint.

The API calls this when a job is created (a bad student is refused before anything is stored) and the
scoring engine calls it before loading weights, so both sides apply the same rules:

- the student is a local directory with a `config.json`, safetensors weights and a tokenizer;
- pickle weights (`.bin`, `.pt`, `.pth`, `.ckpt`, `.pkl`) are never loaded: a directory that has only those
  is refused, and one that has both is loaded from safetensors alone;
- a config or tokenizer config that asks for remote code (`auto_map`) is refused: `trust_remote_code`
  is never enabled;
- with `allowed_roots`, the resolved path (symlinks followed) must lie inside one of them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from core.errors import InputError

PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle"})
TOKENIZER_FILES = frozenset(
    {
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "vocab.json",
        "merges.txt",
        "vocab.txt",
        "tokenizer.model",
        "added_tokens.json",
        "chat_template.jinja",
        "chat_template.json",
    }
)
# Config keys that name the student's context length, in the order transformers' architectures use them.
MAX_LENGTH_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx")
_HASH_BLOCK = 1 << 20


class CheckpointError(InputError):
    """A student checkpoint that cannot or must not be loaded; the message says what is wrong."""

    def __init__(self, message: str, *, field: str | None = "student") -> None:
        super().__init__(message, field=field)


@dataclass(frozen=True, slots=True)
class CheckpointInfo:
    """What a student checkpoint is: its resolved path and a hash of everything that shapes its scores."""

    path: str
    fingerprint: str
    model_type: str
    max_length: int
    weight_files: tuple[str, ...]


def inspect_checkpoint(path: str | Path, *, allowed_roots: Sequence[Path] | None = None) -> CheckpointInfo:
    """Check that `path` is a safe, loadable student checkpoint and fingerprint its contents."""
    raw = Path(path).expanduser()
    try:
        resolved = raw.resolve(strict=True)
    except (FileNotFoundError, RuntimeError) as exc:
        raise CheckpointError(f"student checkpoint {str(path)!r} does not exist") from exc
    if allowed_roots is not None:
        _check_inside_roots(resolved, str(path), allowed_roots)
    if not resolved.is_dir():
        raise CheckpointError(f"student checkpoint {str(path)!r} is not a directory")

    config = _read_json(resolved / "config.json", what="config.json")
    if "auto_map" in config:
        raise CheckpointError(
            f"student checkpoint {str(path)!r}: config.json asks for remote code (auto_map); "
            "trust_remote_code is never enabled"
        )
    tokenizer_config_path = resolved / "tokenizer_config.json"
    if tokenizer_config_path.exists():
        tokenizer_config = _read_json(tokenizer_config_path, what="tokenizer_config.json")
        if "auto_map" in tokenizer_config:
            raise CheckpointError(
                f"student checkpoint {str(path)!r}: tokenizer_config.json asks for remote code (auto_map); "
                "trust_remote_code is never enabled"
            )
    model_type = config.get("model_type")
    if not isinstance(model_type, str) or not model_type:
        raise CheckpointError(f"student checkpoint {str(path)!r}: config.json has no 'model_type'")

    files = sorted(p for p in resolved.iterdir() if p.is_file())
    weights = [p for p in files if p.suffix == ".safetensors"]
    if not weights:
        pickled = [p.name for p in files if p.suffix in PICKLE_SUFFIXES]
        if pickled:
            raise CheckpointError(
                f"student checkpoint {str(path)!r} has only pickle weights ({', '.join(pickled)}); "
                "pickle files can run code when loaded and are refused: convert them to safetensors"
            )
        raise CheckpointError(f"student checkpoint {str(path)!r} has no .safetensors weights")
    if allowed_roots is not None:
        # A weight file linked from outside the roots would let a job read arbitrary files.
        for weight in weights:
            _check_inside_roots(weight.resolve(), weight.name, allowed_roots)
    tokenizer = [p for p in files if p.name in TOKENIZER_FILES]
    if not any(p.name in {"tokenizer.json", "vocab.json", "vocab.txt", "tokenizer.model"} for p in tokenizer):
        raise CheckpointError(f"student checkpoint {str(path)!r} has no tokenizer files")

    lengths = [value for key in MAX_LENGTH_KEYS if isinstance(value := config.get(key), int)]
    max_length = lengths[0] if lengths else None
    if max_length is None or max_length <= 1:
        raise CheckpointError(
            f"student checkpoint {str(path)!r}: config.json names no context length ({', '.join(MAX_LENGTH_KEYS)})"
        )
    fingerprint = _fingerprint([resolved / "config.json", *weights, *tokenizer])
    return CheckpointInfo(
        path=str(resolved),
        fingerprint=fingerprint,
        model_type=model_type,
        max_length=max_length,
        weight_files=tuple(p.name for p in weights),
    )


def _check_inside_roots(resolved: Path, shown: str, roots: Sequence[Path]) -> None:
    for root in roots:
        if resolved.is_relative_to(Path(root).expanduser().resolve()):
            return
    raise CheckpointError(f"student checkpoint {shown!r} is outside the allowed student roots")


def _read_json(path: Path, *, what: str) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CheckpointError(f"student checkpoint {str(path.parent)!r} has no {what}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"student checkpoint {str(path.parent)!r}: {what} is not valid JSON") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"student checkpoint {str(path.parent)!r}: {what} is not a JSON object")
    return data


# Hashing multi-GB weights costs seconds; a file whose (size, mtime_ns, inode) is unchanged keeps its hash.
_file_hash_cache: dict[tuple[str, int, int, int], str] = {}


def _file_digest(path: Path) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    cached = _file_hash_cache.get(key)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_HASH_BLOCK):
            digest.update(block)
    _file_hash_cache[key] = digest.hexdigest()
    return _file_hash_cache[key]


def _fingerprint(paths: Sequence[Path]) -> str:
    combined = hashlib.sha256()
    for path in sorted(paths, key=lambda p: p.name):
        combined.update(path.name.encode())
        combined.update(b"\0")
        combined.update(_file_digest(path).encode())
        combined.update(b"\n")
    return combined.hexdigest()
