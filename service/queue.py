"""The broker side the service needs: Celery configuration shared with the workers, and enqueue by task name.

The service never imports workers (or torch): it sends tasks by name, and `workers.celery_app` builds its
worker app from the same `celery_config` so both sides always agree on broker, queue and delivery rules.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from celery import Celery
from kombu.exceptions import OperationalError as KombuOperationalError

from service.filesystem_broker import TRANSPORT as FILESYSTEM_TRANSPORT
from service.settings import Settings, get_settings

SCORE_CHUNK_TASK = "frontier.score_chunk"
FINALIZE_JOB_TASK = "frontier.finalize_job"
PROBE_TASK = "frontier.probe_condition"
INGEST_JOB_TASK = "frontier.ingest_job"

log = logging.getLogger(__name__)


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings for both the enqueuing API and the GPU workers."""
    url = settings.broker_dsn
    options: dict[str, Any] = {}
    transport: str | None = None
    if settings.embedded_broker:
        # The folder is on this machine. kombu warns "No hostname was supplied" on every connection to a URL that
        # names no host (the default `filesystem://`); the filesystem transport ignores the host, so name this one.
        parts = urlsplit(url)
        if not parts.hostname:
            url = parts._replace(netloc="localhost").geturl()
        folder = settings.broker_folder
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        # One folder both ways: producer and consumer are the API/CLI and the local worker on this machine.
        options = {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
            "polling_interval": 0.05,
        }
        # kombu's own filesystem channel lets a consumer read a message before it is written (filesystem_broker).
        transport = FILESYSTEM_TRANSPORT
    return {
        "broker_url": url,
        "broker_transport": transport,
        "broker_transport_options": options,
        "broker_connection_retry_on_startup": True,
        "task_default_queue": settings.gpu_queue,
        # Ingest (parsing and storing a dataset) is CPU and database work: its own queue, so a CPU worker takes it
        # and GPU workers keep scoring (an exact name wins over the pattern).
        "task_routes": {
            INGEST_JOB_TASK: {"queue": settings.ingest_queue_name},
            "frontier.*": {"queue": settings.gpu_queue},
        },
        "task_serializer": "json",
        "accept_content": ["json"],
        # Progress and results live in the database; a result backend would be a second source of truth.
        "task_ignore_result": True,
        # At-least-once: a chunk is acknowledged only after its scores are committed (writes are idempotent),
        # and a worker takes one chunk at a time so a crash loses at most the one in hand.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # A chunk being scored when the broker connection drops finishes and commits; its message comes back
        # (or the sweep re-sends it) and is skipped as done. Cancelling it would throw the scores away.
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "worker_hijack_root_logger": False,
    }


_queues: dict[tuple[int, str], Celery] = {}


def get_queue(settings: Settings | None = None) -> Celery:
    """This process's producer-only Celery app (created lazily, never shared across a fork)."""
    settings = settings or get_settings()
    key = (os.getpid(), settings.broker_dsn + str(settings.broker_folder))
    app = _queues.get(key)
    if app is None:
        app = Celery("frontier-api", set_as_current=False)
        app.conf.update(celery_config(settings))
        _queues[key] = app
    return app


def send_chunks(job_id: uuid.UUID, indexes: Iterable[int], settings: Settings | None = None) -> None:
    """Queue one scoring task per given chunk of a job; raises if the broker cannot be reached."""
    app = get_queue(settings)
    with app.producer_or_acquire() as producer:
        for index in indexes:
            app.send_task(SCORE_CHUNK_TASK, args=[str(job_id), index], producer=producer)


def enqueue_chunks(job_id: uuid.UUID, n_chunks: int, settings: Settings | None = None) -> None:
    """Queue one scoring task per chunk of a new job; if the broker is down, the sweep queues them later."""
    try:
        send_chunks(job_id, range(n_chunks), settings)
    except KombuOperationalError:
        # The job is already committed: it is accepted, and the sweep re-sends chunks that wait past
        # FRONTIER_CHUNK_TIMEOUT_S, so refusing the request now would only invite a duplicate job.
        log.warning("job %s: broker unreachable, its %d chunks wait for the sweep", job_id, n_chunks, exc_info=True)


def enqueue_chunk_indexes(job_id: uuid.UUID, indexes: Sequence[int], settings: Settings | None = None) -> None:
    """Queue scoring tasks for some chunks of a job (an ingest batch's); if the broker is down, the sweep does later."""
    try:
        send_chunks(job_id, indexes, settings)
    except KombuOperationalError:
        log.warning("job %s: broker unreachable, %d chunks wait for the sweep", job_id, len(indexes), exc_info=True)


def send_ingest(job_id: uuid.UUID, settings: Settings | None = None) -> None:
    """Queue the job's ingest task on the ingest queue; raises if the broker cannot be reached."""
    get_queue(settings).send_task(INGEST_JOB_TASK, args=[str(job_id)])


def enqueue_ingest(job_id: uuid.UUID, settings: Settings | None = None) -> None:
    """Queue the ingest task of a new `ingesting` job; if the broker is down, the sweep queues it later."""
    try:
        send_ingest(job_id, settings)
    except KombuOperationalError:
        # The job is committed and accepted: the sweep re-sends the ingest of a job silent for
        # FRONTIER_CHUNK_TIMEOUT_S, so refusing the request now would only invite a duplicate job.
        log.warning("job %s: broker unreachable, its ingest waits for the sweep", job_id, exc_info=True)


def enqueue_finalize(job_id: uuid.UUID, settings: Settings | None = None) -> None:
    """Queue the job's finalize task (it applies the policy once every chunk is scored)."""
    get_queue(settings).send_task(FINALIZE_JOB_TASK, args=[str(job_id)])


def send_probe_tasks(probe_id: int, tasks: Iterable[tuple[str, int]], settings: Settings | None = None) -> None:
    """Queue one probe task per (condition, seed) of a probe run; raises if the broker cannot be reached."""
    app = get_queue(settings)
    with app.producer_or_acquire() as producer:
        for condition, seed in tasks:
            app.send_task(PROBE_TASK, args=[probe_id, condition, seed], producer=producer)


def enqueue_probe_tasks(probe_id: int, tasks: Sequence[tuple[str, int]], settings: Settings | None = None) -> None:
    """Queue the tasks of a new probe run; if the broker is down, the sweep queues them later."""
    try:
        send_probe_tasks(probe_id, tasks, settings)
    except KombuOperationalError:
        # The run is committed and accepted: the sweep re-sends pending tasks of a run that shows no activity for
        # FRONTIER_PROBE_TIMEOUT_S, so refusing now would only invite a duplicate run.
        log.warning(
            "probe %s: broker unreachable, its %d tasks wait for the sweep", probe_id, len(tasks), exc_info=True
        )


def check_broker(settings: Settings | None = None, timeout: float = 2.0) -> None:
    """Raise if the broker cannot be reached within `timeout` seconds."""
    app = get_queue(settings)
    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=timeout)
