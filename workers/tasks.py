"""Thin queue entrypoints: ids in, one call, done (the work is in workers.curation, workers.probes and service)."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from celery import Task
from kombu.exceptions import OperationalError as KombuOperationalError
from sqlalchemy.exc import DBAPIError, OperationalError

from service.queue import FINALIZE_JOB_TASK, INGEST_JOB_TASK, PROBE_TASK, SCORE_CHUNK_TASK, enqueue_finalize
from workers.celery_app import app

log = logging.getLogger(__name__)

# Worth retrying: the database or the broker was briefly unreachable. Anything else is a real failure.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    KombuOperationalError,
    ConnectionError,
    TimeoutError,
)


class RetryingTask(Task):  # type: ignore[misc]
    """Retries a task through a brief database or broker outage, with jittered exponential backoff."""

    autoretry_for = TRANSIENT_ERRORS
    retry_backoff = 2
    retry_backoff_max = 60
    retry_jitter = True
    max_retries = 5


class CurationTask(RetryingTask):
    """Records a job's failure with its cause once a task has failed for good (not for an outage)."""

    def on_failure(
        self, exc: BaseException, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any], einfo: Any
    ) -> None:
        """Mark the job failed so it never stays `running` forever; an outage leaves the chunk to the sweep."""
        if isinstance(exc, TRANSIENT_ERRORS):
            # Retries ran out during an outage: failing the job would lose it to a blip. The sweep re-queues the
            # chunk (or finalizes the job) after FRONTIER_CHUNK_TIMEOUT_S, and FRONTIER_MAX_CHUNK_ATTEMPTS bounds it.
            log.warning(
                "job %s: %s gave up on %s; left to the sweep",
                args[0],
                self.name,
                type(exc).__name__,
                extra={"job_id": args[0], "task": self.name},
            )
            return
        try:
            self.record_failure(uuid.UUID(args[0]), f"{self.name}: {type(exc).__name__}: {exc}")
        except DBAPIError:
            # The database itself is what failed; the job stays as it was and the error is in the worker log.
            log.exception("could not record the failure of job %s", args[0], extra={"job_id": args[0]})

    def record_failure(self, job_id: uuid.UUID, error: str) -> None:
        """Record the job's failure with its cause."""
        from workers.curation import record_failure

        record_failure(job_id, error)


@app.task(name=SCORE_CHUNK_TASK, base=CurationTask)  # type: ignore[untyped-decorator]
def score_chunk(job_id: str, chunk_index: int) -> None:
    """Score one chunk of a job; the chunk that completes the job queues its finalize task."""
    from workers.curation import score_chunk as score

    if score(uuid.UUID(job_id), chunk_index):
        enqueue_finalize(uuid.UUID(job_id))


@app.task(name=FINALIZE_JOB_TASK, base=CurationTask)  # type: ignore[untyped-decorator]
def finalize_job(job_id: str) -> None:
    """Apply the job's policy to its stored scores once every chunk is in."""
    from workers.curation import finalize

    finalize(uuid.UUID(job_id))


class IngestTask(CurationTask):
    """Fails the job and removes what it stored once its ingest task has failed for good (not for an outage).

    An outage leaves it to the sweep, which re-sends the ingest of a job silent for FRONTIER_CHUNK_TIMEOUT_S; it
    resumes after the last stored batch.
    """

    def record_failure(self, job_id: uuid.UUID, error: str) -> None:
        """Fail the ingesting job and delete every row it stored."""
        from service.jobs.ingest import record_ingest_failure

        record_ingest_failure(job_id, error)


@app.task(name=INGEST_JOB_TASK, base=IngestTask)  # type: ignore[untyped-decorator]
def ingest_job(job_id: str) -> None:
    """Read an `ingesting` job's dataset file and store it in batches, queueing each batch's chunks as it commits."""
    from service.jobs.ingest import ingest_job as ingest

    ingest(uuid.UUID(job_id))


class ProbeConditionTask(RetryingTask):
    """Records a probe task's failure with its cause once its queue task has failed for good (not for an outage)."""

    def on_failure(
        self, exc: BaseException, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any], einfo: Any
    ) -> None:
        """Fail the (condition, seed) so its run never stays `running` forever; an outage leaves it to the sweep."""
        from workers.probes import record_failure

        probe_id, condition, seed = args[0], args[1], args[2]
        where = {"probe_id": probe_id, "condition": condition, "seed": seed, "task": self.name}
        if isinstance(exc, TRANSIENT_ERRORS):
            # Retries ran out during an outage: the sweep re-queues the task after FRONTIER_PROBE_TIMEOUT_S, and
            # FRONTIER_PROBE_MAX_ATTEMPTS bounds it.
            log.warning(
                "probe %s: %s gave up on %s; left to the sweep", probe_id, self.name, type(exc).__name__, extra=where
            )
            return
        try:
            record_failure(int(probe_id), str(condition), int(seed), f"{self.name}: {type(exc).__name__}: {exc}")
        except DBAPIError:
            log.exception("could not record the failure of probe %s %s seed %s", probe_id, condition, seed, extra=where)


@app.task(name=PROBE_TASK, base=ProbeConditionTask)  # type: ignore[untyped-decorator]
def probe_condition(probe_id: int, condition: str, seed: int) -> None:
    """Fine-tune a fresh copy of a job's student on one condition with one seed and measure its learning curve."""
    from workers.probes import run_probe_task

    run_probe_task(int(probe_id), condition, int(seed))
