"""Public views of probe runs: per-condition results in the run's condition order, seed summaries, progress, cost."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from core.probes import ProbeBudget, mean_sd
from service.jobs.presenters import as_utc
from service.models import ProbeRun, ProbeStatus, ProbeTask, ProbeTaskStatus
from service.probes import repository
from service.probes.schemas import (
    BudgetOut,
    ConditionOut,
    CurvePointOut,
    EvalOut,
    ProbeCost,
    ProbeList,
    ProbeOut,
    ProbeProgress,
    SeedOut,
    Summary,
)


def probe_out(session: Session, run: ProbeRun) -> ProbeOut:
    """The public view of one probe run (its tasks are read here)."""
    return _probe_out(run, repository.tasks_of(session, [run.id]))


def probe_list(session: Session, runs: Sequence[ProbeRun]) -> ProbeList:
    """The public view of several probe runs, in the given order (their tasks read in one query)."""
    by_run: dict[int, list[ProbeTask]] = defaultdict(list)
    for task in repository.tasks_of(session, [run.id for run in runs]):
        by_run[task.probe_run_id].append(task)
    return ProbeList(items=[_probe_out(run, by_run[run.id]) for run in runs])


def eval_note(run: ProbeRun) -> str:
    """A sentence saying what the run measures on."""
    n_items = len(run.eval_items)
    if run.eval_source != "held_out":
        return f"{n_items} uploaded problems; every condition trains on the job's samples as they are"
    reading = f"answer_pattern {run.answer_pattern!r}" if run.answer_pattern else "the default extraction"
    note = (
        f"{n_items} of the job's samples, spread over those whose original response carries an answer "
        f"({reading}), are held out of every condition's training data; each is measured against that answer"
    )
    asked = int(run.budget.get("held_out", n_items))
    if n_items < asked:
        note += f" (asked for {asked}: at most half the job's samples, and only those with an answer, are held out)"
    return note


def _point(raw: Any) -> CurvePointOut:
    return CurvePointOut(step=int(raw["step"]), loss=raw.get("loss"), exact_match=float(raw["exact_match"]))


def _seed_out(task: ProbeTask) -> SeedOut:
    return SeedOut(
        seed=task.seed,
        status=ProbeTaskStatus(task.status).value,
        curve=[_point(point) for point in task.curve],
        final=_point(task.final) if task.final is not None else None,
        cost=task.cost,
        error=task.error,
    )


def _summary(tasks: Sequence[ProbeTask], metric: str) -> Summary:
    values = [
        float(task.final[metric])
        for task in tasks
        if task.status == ProbeTaskStatus.done and task.final is not None and task.final.get(metric) is not None
    ]
    mean, sd = mean_sd(values)
    return Summary(mean=mean, sd=sd)


def _probe_out(run: ProbeRun, tasks: Sequence[ProbeTask]) -> ProbeOut:
    budget = ProbeBudget(**run.budget)
    by_condition: dict[str, list[ProbeTask]] = defaultdict(list)
    for task in sorted(tasks, key=lambda task: task.seed):
        by_condition[task.condition].append(task)
    conditions = [str(condition) for condition in run.conditions]
    results = [
        ConditionOut(
            condition=condition,
            n_examples=by_condition[condition][0].n_examples if by_condition[condition] else 0,
            exact_match=_summary(by_condition[condition], "exact_match"),
            loss=_summary(by_condition[condition], "loss"),
            seeds=[_seed_out(task) for task in by_condition[condition]],
        )
        for condition in conditions
    ]
    done = [task for task in tasks if task.status == ProbeTaskStatus.done]
    steps_total = budget.steps * len(tasks)
    steps_done = sum(budget.steps if task.status == ProbeTaskStatus.done else task.progress_step for task in tasks)
    costs = [task.cost for task in done if task.cost is not None]
    created_at = as_utc(run.created_at)
    assert created_at is not None
    return ProbeOut(
        id=run.id,
        job_id=run.job_id,
        status=ProbeStatus(run.status).value,
        budget=BudgetOut(**budget.as_dict()),
        answer_pattern=run.answer_pattern,
        eval=EvalOut(
            source="held_out" if run.eval_source == "held_out" else "uploaded",
            n_items=len(run.eval_items),
            held_out_samples=len(run.held_out_sample_ids),
            note=eval_note(run),
        ),
        conditions=conditions,
        progress=ProbeProgress(
            tasks_total=len(tasks),
            tasks_done=len(done),
            steps_total=steps_total,
            steps_done=min(steps_done, steps_total),
            fraction=round(min(steps_done, steps_total) / steps_total, 4) if steps_total else 0.0,
        ),
        results=results,
        cost=ProbeCost(
            steps=sum(int(cost.get("steps") or 0) for cost in costs),
            tokens=sum(int(cost.get("tokens") or 0) for cost in costs),
            seconds=round(sum(float(cost.get("seconds") or 0.0) for cost in costs), 3),
        ),
        error=run.error,
        created_at=created_at,
        started_at=as_utc(run.started_at),
        finished_at=as_utc(run.finished_at),
    )
