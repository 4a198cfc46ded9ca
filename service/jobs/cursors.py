"""Opaque page cursors: a keyset position as URL-safe base64, and InputError for any cursor this API did not issue."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime

from core.errors import InputError


def _not_issued() -> InputError:
    return InputError("cursor: not a cursor this API issued", field="cursor")


def _encode(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def _decode(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise _not_issued() from exc


def job_cursor(created_at: datetime, job_id: uuid.UUID) -> str:
    """The cursor of a job list page that ends at this job (jobs run newest first)."""
    return _encode(f"{created_at.isoformat()}|{job_id}")


def job_position(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The (created_at, id) a job list cursor points after."""
    created, _, job_id = _decode(cursor).partition("|")
    try:
        return datetime.fromisoformat(created), uuid.UUID(job_id)
    except ValueError as exc:
        raise _not_issued() from exc


def sample_cursor(ordinal: int) -> str:
    """The cursor of a sample page that ends at this sample ordinal."""
    return _encode(str(ordinal))


def sample_position(cursor: str) -> int:
    """The sample ordinal a sample page cursor points after."""
    try:
        return int(_decode(cursor))
    except ValueError as exc:
        raise _not_issued() from exc
