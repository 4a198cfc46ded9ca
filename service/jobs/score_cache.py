"""The score cache: engine scores shared across jobs, keyed by what determines them and nothing else.

Key = (hash of the candidate's texts, student fingerprint, template, scoring version). The fingerprint is a
content hash of the checkpoint's weights, tokenizer and config, so a checkpoint rewritten under the same
path never matches an old entry; bumping the engine's SCORING_VERSION retires every entry at once. Only
`scored` results are stored: an unscored candidate is tried again by the next job. Queries flush, never
commit; the caller's unit of work commits them with the chunk's scores.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db import insert_ignoring_conflicts
from service.models import ScoreCacheEntry, utcnow

# Bound parameters per IN (...) query: far below SQLite's 32,766 and Postgres' 65,535 limits.
_LOOKUP_BATCH = 1000


def text_hash(instruction: str, input: str, response: str) -> str:
    """SHA-256 of a candidate's three texts, unambiguous about where one ends and the next begins."""
    canonical = json.dumps([instruction, input, response], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _batches(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _LOOKUP_BATCH):
        yield items[start : start + _LOOKUP_BATCH]


def lookup(
    session: Session, *, fingerprint: str, template: str, scoring_version: str, hashes: Collection[str]
) -> dict[str, dict[str, Any]]:
    """Cached scores by text hash, for those of `hashes` this student, template and version already scored."""
    found: dict[str, dict[str, Any]] = {}
    for batch in _batches(sorted(set(hashes))):
        rows = session.execute(
            select(ScoreCacheEntry.text_hash, ScoreCacheEntry.scores).where(
                ScoreCacheEntry.student_fingerprint == fingerprint,
                ScoreCacheEntry.template == template,
                ScoreCacheEntry.scoring_version == scoring_version,
                ScoreCacheEntry.text_hash.in_(batch),
            )
        ).all()
        found.update({row.text_hash: dict(row.scores) for row in rows})
    return found


def store(
    session: Session,
    *,
    fingerprint: str,
    template: str,
    scoring_version: str,
    entries: Mapping[str, Mapping[str, Any]],
) -> None:
    """Add scores by text hash; an entry another worker stored first is kept (same key, same scores)."""
    if not entries:
        return
    now = utcnow()
    rows = [
        {
            "text_hash": key,
            "student_fingerprint": fingerprint,
            "template": template,
            "scoring_version": scoring_version,
            "scores": dict(scores),
            "created_at": now,
        }
        for key, scores in entries.items()
    ]
    session.execute(insert_ignoring_conflicts(session, ScoreCacheEntry), rows)
