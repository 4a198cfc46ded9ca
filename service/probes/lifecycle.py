"""A probe run's life: create it whole or not at all, claim its (condition, seed) tasks, record their curve points
and results exactly once, fail or cancel it.

Plain functions over a session (they flush, never commit). Every change to a run or its tasks after creation is
made under the run's row lock (`repository.locked_probe_run`), except a curve point, which locks only its own
task row: any number of workers, sweepers and API requests may touch one run at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from core.dataset import ORIGINAL, DatasetError, LimitError
from core.errors import ConflictError, NotFoundError
from core.probes import (
    UNION,
    EvalItem,
    ProbeBudget,
    TrainingExample,
    check_answer_pattern,
    condition_kind,
    decision_set_condition,
    eval_items_from_json,
    extract_answer,
    setting_name,
    teacher_condition,
)
from service.db import UnitOfWork
from service.jobs import decision_repository, guards
from service.jobs import repository as job_repository
from service.jobs.presenters import as_utc
from service.models import (
    PROBE_FINISHED_STATUSES,
    ProbeRun,
    ProbeStatus,
    ProbeTask,
    ProbeTaskStatus,
    utcnow,
)
from service.probes import repository
from service.probes.params import parse_probe_request
from service.settings import Settings

EVAL_UPLOADED = "uploaded"
EVAL_HELD_OUT = "held_out"
CANCELLED_TASK = "the probe run was cancelled before this task finished"


def create_probe_run(
    uow: UnitOfWork,
    settings: Settings,
    job_id: uuid.UUID,
    *,
    params: dict[str, Any] | None = None,
    eval_file: bytes | None = None,
    enqueue: Callable[[int, list[tuple[str, int]]], None] | None = None,
) -> ProbeRun:
    """Check a probe request against a succeeded job, store the run with one task per (condition, seed), queue them.

    Every refusal comes before anything is written: a bad parameter or eval set (DatasetError, 422), a value over
    a limit (LimitError, 413), a job that has not succeeded (ConflictError, 409). The tasks are queued only after
    the transaction commits (`enqueue(probe_id, [(condition, seed), ...])`).
    """
    request = parse_probe_request(params, eval_file=eval_file, limits=settings.probe_limits)
    session = uow.session
    guards.succeeded_job(session, job_id, "probed")
    for decision_set_id in request.decision_sets:
        if decision_repository.get_decision_set(session, job_id, decision_set_id) is None:
            raise DatasetError(
                f"job {job_id} has no decision set {decision_set_id} (GET /v1/jobs/{job_id}/decision-sets lists them)",
                field="decision_sets",
            )
    teachers = repository.job_teachers(session, job_id)
    unknown = [name for name in request.teachers if name not in teachers]
    if unknown:
        raise DatasetError(
            f"job {job_id} has no teacher {unknown[0]!r} (its teachers: {', '.join(teachers)})", field="teachers"
        )
    if request.teachers:
        teachers = [teacher for teacher in teachers if teacher in request.teachers]
    conditions = [
        *(teacher_condition(teacher) for teacher in teachers),
        *((ORIGINAL, UNION) if request.baselines else ()),
        *(decision_set_condition(decision_set_id) for decision_set_id in request.decision_sets),
    ]
    ceiling = settings.probe_max_conditions
    if len(conditions) > ceiling:
        raise LimitError(
            f"the probe would train {len(conditions)} conditions ({len(teachers)} teachers, "
            f"{'original, union and ' if request.baselines else ''}"
            f"{len(request.decision_sets)} decision sets), over {ceiling}",
            limit=setting_name("probe_max_conditions"),
            field="decision_sets" if request.decision_sets else None,
        )
    held_out_ids: list[int] = []
    if request.eval_items is not None:
        eval_items, source = request.eval_items, EVAL_UPLOADED
    else:
        held_out_ids, eval_items = _hold_out(session, job_id, request.budget, request.answer_pattern)
        source = EVAL_HELD_OUT
    n_examples = {
        condition: repository.count_condition_examples(session, job_id, condition, held_out_ids)
        for condition in conditions
    }
    for condition, count in n_examples.items():
        if count == 0:
            kind, _ = condition_kind(condition)
            raise DatasetError(
                f"condition {condition!r} has no training example outside the held-out samples",
                field="decision_sets" if kind == "decision_set" else "held_out",
            )

    run = ProbeRun(
        job_id=job_id,
        status=ProbeStatus.queued,
        budget=request.budget.as_dict(),
        answer_pattern=request.answer_pattern,
        conditions=conditions,
        eval_source=source,
        eval_items=[asdict(item) for item in eval_items],
        held_out_sample_ids=held_out_ids,
        created_at=utcnow(),
    )
    session.add(run)
    session.flush()
    tasks = [(condition, seed) for condition in conditions for seed in range(request.budget.seeds)]
    repository.insert_tasks(
        session,
        [
            {
                "probe_run_id": run.id,
                "condition": condition,
                "seed": seed,
                "status": ProbeTaskStatus.pending,
                "attempts": 0,
                "n_examples": n_examples[condition],
                "progress_step": 0,
                "curve": [],
            }
            for condition, seed in tasks
        ],
    )
    if enqueue is not None:
        probe_id = run.id
        uow.after_commit(lambda: enqueue(probe_id, tasks))
    return run


def _hold_out(
    session: Session, job_id: uuid.UUID, budget: ProbeBudget, answer_pattern: str | None
) -> tuple[list[int], list[EvalItem]]:
    """Pick the held-out samples: evenly spread over those whose original response carries an extractable answer.

    Deterministic (the same job and request hold out the same samples). At most half of the job's samples are held
    out, so every condition keeps data to train on; the answer is what the extraction reads in the original
    response, which is also the reference of the held-out loss.
    """
    pattern = check_answer_pattern(answer_pattern)
    samples = repository.original_samples(session, job_id)
    eligible = [
        (sample, answer)
        for sample in samples
        if (answer := extract_answer(sample.response, pattern)) is not None and answer != ""
    ]
    n = min(budget.held_out, len(eligible), len(samples) // 2)
    if n < 1:
        reading = f"answer_pattern {answer_pattern!r}" if answer_pattern else "the default extraction"
        if not eligible:
            reason = f"none of the job's {len(samples)} original responses carries an answer that {reading} can read"
        else:
            reason = f"the job has only {len(samples)} sample(s): holding one out would leave nothing to train on"
        raise DatasetError(
            f"no sample can be held out to measure on: {reason}; upload an eval set (instruction, input, answer)"
            + ("" if answer_pattern else " or give an answer_pattern"),
            field="eval_set",
        )
    picked = [eligible[index * len(eligible) // n] for index in range(n)]
    items = [EvalItem(sample.instruction, sample.input, answer, sample.response) for sample, answer in picked]
    return [sample.sample_id for sample, _ in picked], items


@dataclass(frozen=True, slots=True)
class ProbeWork:
    """What a worker needs to train and measure one (condition, seed): the student, the data and the budget."""

    probe_id: int
    condition: str
    seed: int
    # Which start of the task this is: curve points of an older start are dropped.
    attempt: int
    student_path: str
    student_fingerprint: str
    template: str
    budget: ProbeBudget
    examples: list[TrainingExample]
    eval_items: list[EvalItem]
    answer_pattern: str | None


def claim_probe_task(
    session: Session, probe_id: int, condition: str, seed: int, *, max_attempts: int, timeout_s: float
) -> ProbeWork | None:
    """Mark a task running and return its work; None when the run is finished or gone, the task settled, or a live
    start of it is running.

    A start that has shown a sign of life (claim or curve point) within `timeout_s` is alive: the delivery is a
    duplicate (a broker re-handing a long task after its visibility timeout, a message the sweep re-sent) and is
    dropped rather than restarting hours of training. A silent one is presumed dead and the task starts again; the
    sweep re-queues it after the same timeout. A task already started `max_attempts` times fails instead (with the
    run, once its other tasks settle): one that kills its worker every time must not be redelivered forever.
    """
    run = repository.locked_probe_run(session, probe_id)
    if run is None or run.status in PROBE_FINISHED_STATUSES:
        return None
    task = repository.get_task(session, probe_id, condition, seed)
    if task is None or task.status in (ProbeTaskStatus.done, ProbeTaskStatus.failed):
        return None
    now = utcnow()
    last_seen = as_utc(task.updated_at or task.started_at)
    alive = last_seen is not None and now - last_seen < timedelta(seconds=timeout_s)
    if task.status == ProbeTaskStatus.running and alive:
        return None
    if task.attempts >= max_attempts:
        _fail_task(
            session,
            run,
            task,
            f"started {task.attempts} times without a result (its worker died or lost the database each time; "
            f"FRONTIER_PROBE_MAX_ATTEMPTS={max_attempts})",
        )
        return None
    job = job_repository.get_job(session, run.job_id)
    if job is None:
        return None
    if run.status == ProbeStatus.queued:
        run.status = ProbeStatus.running
    if run.started_at is None:
        run.started_at = now
    task.status = ProbeTaskStatus.running
    task.attempts += 1
    task.started_at = task.updated_at = now
    # A re-run measures its curve again from step 0.
    task.curve, task.progress_step, task.error = [], 0, None
    session.flush()
    return ProbeWork(
        probe_id=probe_id,
        condition=condition,
        seed=seed,
        attempt=task.attempts,
        student_path=job.student.path,
        student_fingerprint=job.student.fingerprint,
        template=job.template,
        budget=ProbeBudget(**run.budget),
        examples=repository.condition_examples(session, run.job_id, condition, run.held_out_sample_ids),
        eval_items=eval_items_from_json(run.eval_items),
        answer_pattern=run.answer_pattern,
    )


def record_curve_point(
    session: Session, probe_id: int, condition: str, seed: int, point: Mapping[str, Any], *, attempt: int
) -> bool:
    """Append one measured curve point to a running task; False (nothing written) when `attempt` is not its latest
    start or it is no longer running."""
    task = repository.get_task(session, probe_id, condition, seed, lock=True)
    if task is None or task.status != ProbeTaskStatus.running or task.attempts != attempt:
        return False
    # A new list: the JSON column is not mutation-tracked.
    task.curve = [*task.curve, dict(point)]
    task.progress_step = int(point["step"])
    task.updated_at = utcnow()
    session.flush()
    return True


def should_stop(session: Session, probe_id: int, condition: str, seed: int, *, attempt: int) -> bool:
    """Whether a running start of a task should stop: its run was cancelled (or is gone), or the task is no longer
    this start's (the sweep re-queued it, or another start finished it)."""
    run = session.get(ProbeRun, probe_id, populate_existing=True)
    if run is None or run.status == ProbeStatus.cancelled:
        return True
    task = repository.get_task(session, probe_id, condition, seed)
    return task is None or task.status != ProbeTaskStatus.running or task.attempts != attempt


def record_probe_result(session: Session, probe_id: int, condition: str, seed: int, outcome: Mapping[str, Any]) -> bool:
    """Store a task's result (curve, final, cost, completions) exactly once; True when this finished the run.

    Idempotent under the run's lock: a task already done (a redelivered or duplicated task) or failed for good
    is left as it is, and so is every task of a finished (e.g. cancelled) run. The last task to settle finishes
    the run: `succeeded` when every task is done, else `failed` with the first failure as the cause.
    """
    run = repository.locked_probe_run(session, probe_id)
    if run is None or run.status in PROBE_FINISHED_STATUSES:
        return False
    task = repository.get_task(session, probe_id, condition, seed)
    if task is None or task.status not in (ProbeTaskStatus.pending, ProbeTaskStatus.running):
        return False
    now = utcnow()
    final = outcome.get("final")
    task.status = ProbeTaskStatus.done
    # The engine's whole curve: whatever an older start of the task appended is replaced.
    task.curve = list(outcome.get("curve") or [])
    task.final = dict(final) if final is not None else None
    task.cost = dict(outcome["cost"]) if outcome.get("cost") is not None else None
    task.completions = list(outcome.get("completions") or [])
    task.progress_step = int(final["step"]) if final is not None else task.progress_step
    task.error = None
    task.finished_at = task.updated_at = now
    session.flush()
    return _settle(session, run)


def fail_probe_task(session: Session, probe_id: int, condition: str, seed: int, error: str) -> bool:
    """Fail a task for good with its cause (no-op once it or its run has settled); True when this finished the run."""
    run = repository.locked_probe_run(session, probe_id)
    if run is None or run.status in PROBE_FINISHED_STATUSES:
        return False
    task = repository.get_task(session, probe_id, condition, seed)
    if task is None or task.status not in (ProbeTaskStatus.pending, ProbeTaskStatus.running):
        return False
    return _fail_task(session, run, task, error)


def _fail_task(session: Session, run: ProbeRun, task: ProbeTask, error: str) -> bool:
    now = utcnow()
    task.status = ProbeTaskStatus.failed
    task.error = error[:4000]
    task.finished_at = task.updated_at = now
    session.flush()
    return _settle(session, run)


def _settle(session: Session, run: ProbeRun) -> bool:
    """Finish the run once none of its tasks is pending or running; True when this call finished it."""
    statuses = repository.task_statuses(session, run.id)
    if statuses.get(ProbeTaskStatus.pending, 0) or statuses.get(ProbeTaskStatus.running, 0):
        return False
    failed = statuses.get(ProbeTaskStatus.failed, 0)
    run.finished_at = utcnow()
    if failed:
        first = repository.first_failed_task(session, run.id)
        assert first is not None
        others = f" (and {failed - 1} more of {sum(statuses.values())} tasks)" if failed > 1 else ""
        run.status = ProbeStatus.failed
        run.error = f"{first.condition} seed {first.seed}: {first.error}{others}"[:4000]
    else:
        run.status = ProbeStatus.succeeded
    session.flush()
    return True


def cancel_probe_run(session: Session, job_id: uuid.UUID, probe_id: int) -> ProbeRun:
    """Cancel a queued or running probe run: its unfinished tasks stop at their next curve point; results kept."""
    if repository.get_probe_run(session, job_id, probe_id) is None:
        raise NotFoundError(f"job {job_id} has no probe run {probe_id}")
    run = repository.locked_probe_run(session, probe_id)
    assert run is not None
    if run.status in PROBE_FINISHED_STATUSES:
        raise ConflictError(f"probe run {probe_id} is already {run.status}")
    now = utcnow()
    run.status = ProbeStatus.cancelled
    run.finished_at = now
    for task in repository.unfinished_tasks(session, probe_id):
        task.status = ProbeTaskStatus.failed
        task.error = CANCELLED_TASK
        task.finished_at = task.updated_at = now
    session.flush()
    return run


def probe_run(session: Session, job_id: uuid.UUID, probe_id: int) -> ProbeRun:
    """One of the job's probe runs, or NotFoundError."""
    run = repository.get_probe_run(session, job_id, probe_id)
    if run is None:
        raise NotFoundError(f"job {job_id} has no probe run {probe_id}")
    return run
