"""A Celery worker on this machine, as a child process: the embedded deployment's "in-process" worker.

The embedded default runs the very same worker as production (same app, same tasks, same queue), consuming
the filesystem broker under the data dir; `frontier serve` and `frontier curate` start one and stop it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from core.processes import stop_process
from service.settings import Settings


def worker_command(settings: Settings, *, pool: str = "solo", loglevel: str = "WARNING") -> list[str]:
    """The command line of a one-process worker on the settings' GPU queue and ingest queue.

    `solo` (default) scores in the worker process itself; `prefork` is production's shape: a parent that
    never imports torch and one forked child that loads the student on its first task. Production runs a CPU
    worker for the ingest queue; this one machine's worker takes both, ingests first (one task at a time).
    """
    command = [sys.executable, "-m", "celery", "-A", "workers.celery_app", "--quiet", "worker"]
    queues = f"{settings.gpu_queue},{settings.ingest_queue_name}"
    command += ["-Q", queues, "-l", loglevel, "-n", f"frontier-local-{os.getpid()}@%h"]
    command += ["-P", pool, "-c", "1", "--without-gossip", "--without-mingle", "--without-heartbeat"]
    return command


@contextmanager
def local_worker(
    settings: Settings, env: Mapping[str, str] | None = None, *, pool: str = "solo"
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a worker child process for the duration of the block, then stop it (warm shutdown, then kill)."""
    # The worker's own stdout goes to our stderr: stdout belongs to the command (curate prints the output dir).
    process = subprocess.Popen(
        worker_command(settings, pool=pool), env=dict(env) if env is not None else None, stdout=sys.stderr.fileno()
    )
    try:
        yield process
    finally:
        stop_process(process, timeout=30)
