"""The worker side of a curation job: stored candidates -> the scoring engine -> stored scores -> decisions.

Plain functions (no Celery here) so they are testable directly; workers.tasks wraps them. The scoring
engine (torch) is imported inside the functions so importing this module stays cheap and fork-safe.
"""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.dataset import SampleRecord, candidate_texts
from service.db import session_scope, unit_of_work
from service.jobs import lifecycle, recovery, score_cache
from service.models import utcnow
from service.queue import send_chunks, send_ingest
from service.settings import Settings, get_settings

if TYPE_CHECKING:
    from core.scores import Candidate
    from workers.scoring import Scorer

log = logging.getLogger(__name__)

# Errors that may clear on a retry; everything else fails the job with its cause.
_TRANSIENT_NAMES = frozenset({"OperationalError", "InterfaceError", "ConnectionError", "TimeoutError"})


class StudentChangedError(RuntimeError):
    """The checkpoint on disk no longer matches the fingerprint the job was created with."""


def candidates_of(record: SampleRecord) -> list[tuple[str, str | None, Candidate]]:
    """Every candidate of a sample as (candidate name, teacher or None, Candidate), the original first."""
    from core.scores import Candidate

    return [
        (text.name, text.teacher, Candidate(instruction=text.instruction, response=text.response, input=text.input))
        for text in candidate_texts(record)
    ]


_scorers: dict[tuple[str, str, str, int, int | None], Scorer] = {}


def get_scorer(path: str, fingerprint: str, template: str, rank_clip: int, settings: Settings) -> Scorer:
    """This process's scorer for a student, template and rank clip; the student loads on first use, not before fork."""
    from transformers.utils import logging as transformers_logging

    from workers.scoring import Scorer, get_student

    key = (path, fingerprint, template, rank_clip, settings.batch_tokens)
    scorer = _scorers.get(key)
    if scorer is None:
        # Celery logs whatever a worker writes to stderr as WARNING, so transformers' "Loading weights" bar would read
        # as warnings (and no one watches it). Its loading report, on missing or unexpected weights, is a log record.
        transformers_logging.disable_progress_bar()
        student = get_student(path, device=settings.device, precision=settings.dtype)
        if student.identity.fingerprint != fingerprint:
            raise StudentChangedError(
                f"student checkpoint {path!r} changed since the job was created "
                f"(fingerprint {student.identity.fingerprint[:12]} != {fingerprint[:12]})"
            )
        scorer = _scorers[key] = Scorer(
            student, template=template, batch_tokens=settings.batch_tokens, rank_clip=rank_clip
        )
    return scorer


def score_chunk(job_id: uuid.UUID, chunk_index: int, settings: Settings | None = None) -> bool:
    """Score one chunk's candidates and store them in one transaction; True when the job is now fully scored.

    Candidates already in the score cache are not scored again (the student is not even loaded when all
    are). Safe to run more than once for the same chunk (redelivery): a done chunk is skipped, and writes
    are keyed by candidate. A non-transient error fails the job with its cause instead of raising.
    """
    settings = settings or get_settings()
    with session_scope() as session:
        work = recovery.claim_chunk(session, job_id, chunk_index, max_attempts=settings.max_chunk_attempts)
    if work is None:
        with session_scope() as session:
            return lifecycle.chunk_completes_job(session, job_id)
    # Only now: a skipped delivery (chunk done, job cancelled) never pays for importing torch.
    from core.scores import SCORING_VERSION, Candidate

    # The rank clip shapes rank_mean and rsr, so it is part of what a cached result was computed under.
    cache_key = {
        "fingerprint": work.student_fingerprint,
        "template": work.template,
        "scoring_version": f"{SCORING_VERSION}/r{work.rank_clip}",
    }
    hashes = [score_cache.text_hash(c.instruction, c.input, c.response) for c in work.candidates]
    cached: dict[str, dict[str, Any]] = {}
    if settings.score_cache:
        with session_scope() as session:
            cached = score_cache.lookup(session, hashes=hashes, **cache_key)
    missing = [c for c, key in zip(work.candidates, hashes, strict=True) if key not in cached]
    seconds = 0.0
    fresh: dict[int, dict[str, Any]] = {}
    try:
        if missing:
            scorer = get_scorer(work.student_path, work.student_fingerprint, work.template, work.rank_clip, settings)
            started = time.perf_counter()
            scores = scorer.score(
                [Candidate(instruction=c.instruction, response=c.response, input=c.input) for c in missing]
            )
            seconds = time.perf_counter() - started
            fresh = {c.id: score.as_dict() for c, score in zip(missing, scores, strict=True)}
    except Exception as exc:
        if type(exc).__name__ in _TRANSIENT_NAMES:
            raise
        log.exception("job %s chunk %s failed", job_id, chunk_index, extra={"job_id": job_id, "chunk": chunk_index})
        with session_scope() as session:
            lifecycle.fail_job(
                session, job_id, f"chunk {chunk_index}: {type(exc).__name__}: {exc}", chunk_index=chunk_index
            )
        return False
    rows: list[dict[str, Any]] = [
        {"id": candidate.id, "scoring_version": SCORING_VERSION, **fresh.get(candidate.id, cached.get(key, {}))}
        for candidate, key in zip(work.candidates, hashes, strict=True)
    ]
    new_entries = {
        key: fresh[candidate.id]
        for candidate, key in zip(work.candidates, hashes, strict=True)
        if candidate.id in fresh and fresh[candidate.id]["status"] == "scored"
    }
    with session_scope() as session:
        completes = lifecycle.record_chunk_scores(
            session,
            job_id,
            chunk_index,
            rows,
            scoring_seconds=seconds,
            cached_candidates=len(work.candidates) - len(missing),
        )
        if settings.score_cache:
            score_cache.store(session, entries=new_entries, **cache_key)
        return completes


def finalize(job_id: uuid.UUID) -> bool:
    """Apply the job's policy if every chunk is scored; True when this call finished the job."""
    with session_scope() as session:
        return lifecycle.finalize_job(session, job_id)


def record_failure(job_id: uuid.UUID, error: str) -> None:
    """Mark a job failed with `error` (used when a task gives up)."""
    with session_scope() as session:
        lifecycle.fail_job(session, job_id, error)


def sweep_uploads(settings: Settings | None = None) -> list[Path]:
    """Delete spooled uploads no job reads that have sat for FRONTIER_CHUNK_TIMEOUT_S (where this process sees the
    upload folder: the API's and the ingest workers' shared volume); returns the files removed."""
    settings = settings or get_settings()
    with session_scope() as session:
        leftovers = recovery.leftover_uploads(
            session, settings.upload_folder, now=utcnow(), older_than_s=settings.chunk_timeout_s
        )
    removed: list[Path] = []
    for path in leftovers:
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        log.warning("sweep: removed the leftover upload %s", path)
        removed.append(path)
    return removed


def sweep(settings: Settings | None = None) -> list[recovery.Recovery]:
    """Recover every stalled job (service.jobs.recovery), each in its own transaction; returns what was done.

    Re-queued chunks and ingests are sent before their transaction commits: if the broker is down the transaction
    rolls back, so the next sweep tries them again instead of waiting another timeout. Probe runs have their own sweep
    (workers.probes.sweep_probes); the worker's sweeper and `frontier sweep` run both.
    """
    settings = settings or get_settings()
    now = utcnow()
    with session_scope() as session:
        stalled = recovery.stalled_jobs(session, now=now, timeout_s=settings.chunk_timeout_s)
    done: list[recovery.Recovery] = []
    for job_id in stalled:
        with unit_of_work() as uow:
            result = recovery.recover_job(
                uow.session,
                job_id,
                now=now,
                timeout_s=settings.chunk_timeout_s,
                max_attempts=settings.max_chunk_attempts,
            )
            if result.requeued:
                send_chunks(job_id, result.requeued, settings)
            if result.ingest_requeued:
                send_ingest(job_id, settings)
        if result.requeued or result.failed or result.finalized or result.ingest_requeued:
            log.warning("sweep: job %s: %s", job_id, result, extra={"job_id": job_id})
        done.append(result)
    return done
