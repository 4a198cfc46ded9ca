"""Files that appear only when complete (written beside their final path under a temporary name, then renamed), and
the names of spooled uploads."""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_write(path: Path, *, binary: bool = False) -> Iterator[IO[Any]]:
    """Open a file that appears at `path` only when the block ends without error; on error nothing is left.

    Not tempfile.mkstemp: its 0600 mode would stay on the renamed file. Mode "x" makes the temporary name ours
    alone, and the process umask applies, as for any file the user writes.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.part")
    try:
        with open(temporary, "xb") if binary else open(temporary, "x", encoding="utf-8") as handle:
            yield handle
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


# A spooled upload's name (the API writes it, the ingest reads it, the sweep removes leftovers by this pattern).
SPOOL_PATTERN = "upload-*.part"


def spool_path(folder: Path) -> Path:
    """A new, unique path for a spooled upload in `folder`."""
    return folder / SPOOL_PATTERN.replace("*", uuid.uuid4().hex)
