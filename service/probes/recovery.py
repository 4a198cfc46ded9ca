"""Stuck probe tasks: re-queue a task whose worker is gone, fail one out of attempts, re-send lost messages.

Plain functions over a session (they flush, never commit): the worker's sweeper and `frontier sweep` call them
through workers.probes.sweep_probes, one run per transaction, under the run's row lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from service.jobs.presenters import as_utc
from service.models import PROBE_FINISHED_STATUSES, ProbeTaskStatus
from service.probes import lifecycle, repository


@dataclass(frozen=True, slots=True)
class ProbeRecovery:
    """What one sweep did to one probe run: (condition, seed) tasks re-queued, and those it failed."""

    probe_id: int
    requeued: tuple[tuple[str, int], ...] = ()
    failed: tuple[str, ...] = ()


def stalled_probe_runs(session: Session, *, now: datetime, timeout_s: float) -> list[int]:
    """Unfinished probe runs with a task that has shown no sign of life for `timeout_s` seconds, oldest first."""
    return repository.stalled_probe_runs(session, cutoff=now - timedelta(seconds=timeout_s))


def recover_probe_run(
    session: Session, probe_id: int, *, now: datetime, timeout_s: float, max_attempts: int
) -> ProbeRecovery:
    """Re-queue the run's stalled tasks; fail a stalled task that is out of attempts.

    A task `running` with no new curve point for the timeout lost its worker (killed, or hung): it goes back to
    `pending` and is re-sent, unless it has been started `max_attempts` times, which fails it with the cause (and
    the run with it once its other tasks settle). When no task of the run has shown a sign of life within the
    timeout, its `pending` tasks lost their messages (a broker restarted without persistence, or down when the run
    was created): they are re-sent. A duplicate message is harmless: a settled task is skipped, a re-run's older
    start stops at its next curve point, and the result is stored once.
    """
    run = repository.locked_probe_run(session, probe_id)
    if run is None or run.status in PROBE_FINISHED_STATUSES:
        return ProbeRecovery(probe_id)
    cutoff = now - timedelta(seconds=timeout_s)
    last_activity = as_utc(repository.last_task_activity(session, probe_id) or run.created_at)
    assert last_activity is not None
    stalled = last_activity < cutoff
    requeued: list[tuple[str, int]] = []
    failed: list[str] = []
    for task in repository.unfinished_tasks(session, probe_id):
        last_seen = as_utc(task.updated_at or task.started_at)
        lost_worker = task.status == ProbeTaskStatus.running and last_seen is not None and last_seen < cutoff
        lost_message = task.status == ProbeTaskStatus.pending and stalled
        if not (lost_worker or lost_message):
            continue
        if lost_worker:
            assert last_seen is not None
            if task.attempts >= max_attempts:
                cause = (
                    f"no result after {task.attempts} attempts, the last silent since {last_seen:%Y-%m-%d %H:%M:%S} "
                    f"UTC (its worker died or hung each time; FRONTIER_PROBE_TIMEOUT_S={timeout_s:g}, "
                    f"FRONTIER_PROBE_MAX_ATTEMPTS={max_attempts})"
                )
                lifecycle.fail_probe_task(session, probe_id, task.condition, task.seed, cause)
                failed.append(f"{task.condition} seed {task.seed}: {cause}")
                continue
            task.status = ProbeTaskStatus.pending
        task.queued_at = now
        requeued.append((task.condition, task.seed))
    session.flush()
    return ProbeRecovery(probe_id, requeued=tuple(requeued), failed=tuple(failed))
