"""The worker side of a probe run: claim a (condition, seed), train and measure it with the probe engine, store it.

Plain functions (no Celery here) so they are testable directly; workers.tasks wraps them. The probe engine
(workers.probing: torch, transformers, peft) is imported inside the function so importing this module stays
cheap and fork-safe, and a skipped delivery (task done, run cancelled) never pays for torch.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from core.checkpoint import inspect_checkpoint
from service.db import session_scope, unit_of_work
from service.models import utcnow
from service.probes import lifecycle, recovery
from service.queue import send_probe_tasks
from service.settings import Settings, get_settings

if TYPE_CHECKING:
    from core.probes import CurvePoint

log = logging.getLogger(__name__)

# Errors that may clear on a retry (the database or broker blinked); everything else fails the task with its cause.
_TRANSIENT_NAMES = frozenset({"OperationalError", "InterfaceError", "ConnectionError", "TimeoutError"})


class StudentChangedError(RuntimeError):
    """The checkpoint on disk no longer matches the fingerprint the job was scored with."""


def run_probe_task(probe_id: int, condition: str, seed: int, settings: Settings | None = None) -> bool:
    """Train and measure one (condition, seed) of a probe run and store its result; True when this finished the run.

    Each curve point is committed as it is measured (in its own short transaction), and the run's cancellation is
    checked at each. Safe to run more than once (redelivery): a settled task is skipped and the result is stored
    once. A non-transient error fails the task, with its cause, instead of raising.
    """
    settings = settings or get_settings()
    with session_scope() as session:
        work = lifecycle.claim_probe_task(
            session,
            probe_id,
            condition,
            seed,
            max_attempts=settings.probe_max_attempts,
            timeout_s=settings.probe_timeout_s,
        )
    if work is None:
        return False
    where = {"probe_id": probe_id, "condition": condition, "seed": seed}

    def on_point(point: CurvePoint) -> None:
        with session_scope() as session:
            lifecycle.record_curve_point(session, probe_id, condition, seed, point.as_dict(), attempt=work.attempt)

    def should_stop() -> bool:
        with session_scope() as session:
            return lifecycle.should_stop(session, probe_id, condition, seed, attempt=work.attempt)

    try:
        fingerprint = inspect_checkpoint(work.student_path).fingerprint
        if fingerprint != work.student_fingerprint:
            raise StudentChangedError(
                f"student checkpoint {work.student_path!r} changed since the job was scored "
                f"(fingerprint {fingerprint[:12]} != {work.student_fingerprint[:12]})"
            )
        from workers.probing import run_probe

        outcome = run_probe(
            work.student_path,
            work.examples,
            work.eval_items,
            budget=work.budget,
            seed=seed,
            template=work.template,
            answer_pattern=work.answer_pattern,
            device=settings.device,
            lora_above_params=settings.probe_lora_above_params,
            on_point=on_point,
            should_stop=should_stop,
        )
    except Exception as exc:
        if type(exc).__name__ in _TRANSIENT_NAMES:
            raise
        log.exception("probe %s %s seed %s failed", probe_id, condition, seed, extra=where)
        with session_scope() as session:
            return lifecycle.fail_probe_task(session, probe_id, condition, seed, f"{type(exc).__name__}: {exc}")
    if outcome.stopped:
        # Cancelled, or this start was superseded (re-queued by the sweep): a truncated curve is not a result.
        log.info("probe %s %s seed %s stopped early", probe_id, condition, seed, extra=where)
        return False
    with session_scope() as session:
        return lifecycle.record_probe_result(session, probe_id, condition, seed, outcome.as_dict())


def record_failure(probe_id: int, condition: str, seed: int, error: str) -> None:
    """Fail a probe task for good with `error` (used when its queue task gives up)."""
    with session_scope() as session:
        lifecycle.fail_probe_task(session, probe_id, condition, seed, error)


def sweep_probes(settings: Settings | None = None) -> list[recovery.ProbeRecovery]:
    """Recover every stalled probe run (service.probes.recovery), each in its own transaction; returns what was done.

    Re-queued tasks are sent before their transaction commits: if the broker is down the transaction rolls back,
    so the next sweep tries them again instead of waiting another timeout.
    """
    settings = settings or get_settings()
    now = utcnow()
    with session_scope() as session:
        stalled = recovery.stalled_probe_runs(session, now=now, timeout_s=settings.probe_timeout_s)
    done: list[recovery.ProbeRecovery] = []
    for probe_id in stalled:
        with unit_of_work() as uow:
            result = recovery.recover_probe_run(
                uow.session,
                probe_id,
                now=now,
                timeout_s=settings.probe_timeout_s,
                max_attempts=settings.probe_max_attempts,
            )
            if result.requeued:
                send_probe_tasks(probe_id, result.requeued, settings)
        if result.requeued or result.failed:
            log.warning("sweep: probe %s: %s", probe_id, result, extra={"probe_id": probe_id})
        done.append(result)
    return done
