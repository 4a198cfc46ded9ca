"""Datasets given by reference (a path on the server's machine): the path must resolve inside an allowed root.

Mirrors the student roots of core.checkpoint: symlinks and `..` are resolved before the check, so neither a link
inside a root that points outside nor a traversal reaches another file. The roots are checked before the file's
existence, so a refused path says nothing about what exists outside the roots.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from core.dataset import DatasetError
from core.errors import InputError

ROOTS_SETTING = "FRONTIER_DATASET_ROOTS"
PATH_FIELD = "dataset.path"


class DatasetPathRefusedError(InputError):
    """A referenced dataset outside the allowed roots, or references turned off (403)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field=PATH_FIELD)


def resolve_dataset_path(path: str, roots: Sequence[Path] | None) -> Path:
    """The real path of a referenced dataset file inside one of `roots` (None: any local path).

    Raises DatasetPathRefusedError when it resolves outside every root, and DatasetError (field `dataset.path`)
    when it is not absolute, does not exist, is not a regular file or cannot be read.
    """
    if not path.strip():
        raise DatasetError("missing: the dataset's path on the server", field=PATH_FIELD)
    given = Path(path).expanduser()
    if not given.is_absolute():
        raise DatasetError(f"expected an absolute path, got {path!r}", field=PATH_FIELD)
    try:
        resolved = given.resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise DatasetError(f"dataset {path!r} cannot be resolved: {exc}", field=PATH_FIELD) from exc
    if roots is not None and not any(resolved.is_relative_to(Path(root).expanduser().resolve()) for root in roots):
        raise DatasetPathRefusedError(f"dataset {path!r} is outside the allowed dataset roots ({ROOTS_SETTING})")
    if not resolved.exists():
        raise DatasetError(f"dataset {path!r} does not exist", field=PATH_FIELD)
    if not resolved.is_file():
        raise DatasetError(f"dataset {path!r} is not a regular file", field=PATH_FIELD)
    try:
        with resolved.open("rb"):
            pass
    except OSError as exc:
        raise DatasetError(f"dataset {path!r} cannot be read: {exc.strerror or exc}", field=PATH_FIELD) from exc
    return resolved
