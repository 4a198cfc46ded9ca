"""The Celery worker app: configured from service settings, tasks in workers.tasks.

Start a GPU worker with `celery -A workers.celery_app worker -Q gpu -c 1` (one process per GPU). The student
is loaded lazily by the first task in each worker process, never in the parent before fork.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from celery import Celery
from celery.exceptions import SecurityWarning
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    celeryd_init,
    worker_process_init,
    worker_ready,
    worker_shutdown,
)

from service.db import dispose_engines
from service.logs import JsonFormatter
from service.queue import celery_config
from service.settings import get_settings
from workers.sweeper import start_sweeper, stop_sweeper

app = Celery("frontier", include=["workers.tasks"])
app.conf.update(celery_config(get_settings()))


@celeryd_init.connect  # type: ignore[untyped-decorator]
def _embedded_privileges(**_: Any) -> None:
    # Sent just before Celery's privilege check, which warns a root worker to drop to another user (--uid) lest
    # messages others put on a shared broker run as root. The embedded broker is a folder of the user who runs the
    # command, holding JSON only: no one else queues for this worker, and another user could not write that user's
    # database and output. There the warning only repeats whom the command was run as; on any other broker it stays.
    if get_settings().embedded_broker:
        warnings.filterwarnings("ignore", category=SecurityWarning)


@worker_process_init.connect  # type: ignore[untyped-decorator]
def _fresh_process(**_: Any) -> None:
    # A forked child must not reuse the parent's pooled database connections.
    dispose_engines()


@worker_ready.connect  # type: ignore[untyped-decorator]
def _start_sweeper(**_: Any) -> None:
    # In the main process, after the pool has forked: stuck work is found even while every child is busy.
    start_sweeper(get_settings())


@worker_shutdown.connect  # type: ignore[untyped-decorator]
def _stop_sweeper(**_: Any) -> None:
    stop_sweeper()


@after_setup_logger.connect  # type: ignore[untyped-decorator]
@after_setup_task_logger.connect  # type: ignore[untyped-decorator]
def _json_logs(logger: logging.Logger, **_: Any) -> None:
    # Celery sets up its own handlers; with FRONTIER_LOG_FORMAT=json they write JSON lines instead.
    if get_settings().log_format == "json":
        for handler in logger.handlers:
            handler.setFormatter(JsonFormatter())
