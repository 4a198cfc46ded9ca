"""HTTP shapes of probe runs (the v1 contract of docs/probes.md)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.probes import EvalSource, ProbeStatusName

ProbeTaskStatusName = Literal["pending", "running", "done", "failed"]


class EvalItemIn(BaseModel):
    """One problem of an inline eval set."""

    id: str | int | None = Field(default=None, description="ignored: for the caller's own bookkeeping")
    instruction: str
    input: str = ""
    answer: str | int | float = Field(description="the exact answer a completion must give")
    response: str | None = Field(default=None, description="reference response for the held-out loss")


class ProbeCreate(BaseModel):
    """A probe request as a JSON body: budget fields (defaults when left out), answer pattern, decision sets, eval set.

    Documents the body; the values are checked by service.probes.params (one set of rules and messages for the
    JSON body and the multipart `params`).
    """

    model_config = ConfigDict(extra="forbid")

    steps: int | None = Field(default=None, description="optimiser steps per (condition, seed); default 750")
    batch_size: int | None = Field(default=None, description="examples per step; default 2")
    peak_lr: float | None = Field(
        default=None,
        description="peak learning rate; default by student: 3e-3 x 64 / width for a full fine-tune (at most 3e-3), "
        "2e-4 for a LoRA adapter (the one used is in each seed's cost)",
    )
    warmup_steps: int | None = Field(default=None, description="linear warm-up steps; default 10")
    schedule_steps: int | None = Field(
        default=None,
        description="length of the learning-rate schedule; default `steps`. Longer, the probe runs the first `steps` "
        "of it: with your fine-tune's batch_size, peak_lr, warmup_steps and steps as schedule_steps, a prefix of "
        "that fine-tune",
    )
    eval_every: int | None = Field(default=None, description="steps between curve points; default 150")
    seeds: int | None = Field(default=None, description="seeds per condition; default 1")
    held_out: int | None = Field(default=None, description="samples held out when no eval set is given; default 64")
    max_new_tokens: int | None = Field(
        default=None,
        description="greedy generation length; default: room for each condition's longest training response (a "
        "quarter more, at least 16 tokens more; the one used is in each seed's cost)",
    )
    answer_pattern: str | None = Field(
        default=None,
        description="regex whose group (or whole match) is the answer; default: the last `Answer:` line, else"
        " the last number",
    )
    baselines: bool | None = Field(
        default=None,
        description="also train `original` and `union` beside the teachers; default false (the default budget is "
        "sized for the teachers alone)",
    )
    decision_sets: list[int] | None = Field(
        default=None, description="decision set ids of this job: each adds the condition `decision_set:ID`"
    )
    teachers: list[str] | None = Field(
        default=None,
        description="train only these teachers (default: every teacher of the job); the report's `probe.follow_up` "
        "names the contenders of an inconclusive run",
    )
    eval_set: list[EvalItemIn] | None = Field(
        default=None, description="problems to measure on; default: `held_out` of the job's own samples"
    )


class BudgetOut(BaseModel):
    """What every (condition, seed) trains and evaluates."""

    steps: int
    batch_size: int
    peak_lr: float | None = Field(description="None: chosen per student (each seed's cost says which)")
    warmup_steps: int
    schedule_steps: int | None = Field(default=None, description="None: the schedule ends with the run (`steps`)")
    eval_every: int
    seeds: int
    held_out: int
    max_new_tokens: int | None = Field(
        default=None, description="None: room for each condition's longest response (each seed's cost says how much)"
    )


class EvalOut(BaseModel):
    """Where the eval items came from, how many, and how many of the job's samples were held out of training."""

    source: EvalSource
    n_items: int
    held_out_samples: int
    note: str


class ProbeProgress(BaseModel):
    """Tasks and optimiser steps done, out of all (a running task counts the steps of its latest curve point)."""

    tasks_total: int
    tasks_done: int
    steps_total: int
    steps_done: int
    fraction: float


class Summary(BaseModel):
    """Mean and sample standard deviation over the seeds that are done (sd null with one seed)."""

    mean: float | None
    sd: float | None


class CurvePointOut(BaseModel):
    """One learning-curve point: after `step` steps, the held-out loss and exact match."""

    step: int
    loss: float | None
    exact_match: float


class SeedOut(BaseModel):
    """One (condition, seed): its status, learning curve, final point, cost and error."""

    seed: int
    status: ProbeTaskStatusName
    curve: list[CurvePointOut]
    final: CurvePointOut | None
    cost: dict[str, Any] | None
    error: str | None


class ConditionOut(BaseModel):
    """One condition's results: its training examples, summaries over done seeds, and each seed."""

    condition: str
    n_examples: int
    exact_match: Summary
    loss: Summary
    seeds: list[SeedOut]


class ProbeCost(BaseModel):
    """What the run's done tasks cost together: optimiser steps, tokens fed, seconds."""

    steps: int
    tokens: int
    seconds: float


class ProbeOut(BaseModel):
    """A probe run: what was asked, its eval items' source, progress, per-condition results, cost and error."""

    id: int
    job_id: uuid.UUID
    status: ProbeStatusName
    budget: BudgetOut
    answer_pattern: str | None
    eval: EvalOut
    conditions: list[str]
    progress: ProbeProgress
    results: list[ConditionOut]
    cost: ProbeCost
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ProbeList(BaseModel):
    """A job's probe runs, newest first."""

    items: list[ProbeOut]
