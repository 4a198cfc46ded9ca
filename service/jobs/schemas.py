"""HTTP shapes of jobs, samples and candidates (the v1 contract)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JobStatusName = Literal["queued", "running", "succeeded", "failed", "cancelled"]
DecisionName = Literal["retained", "rejected", "unscored"]


class JobCreate(BaseModel):
    """A small job as a JSON body: the samples inline instead of an uploaded file."""

    model_config = ConfigDict(extra="forbid")

    samples: list[Any] = Field(description="records in the native, Alpaca or chat layout")
    student: str = Field(description="student checkpoint directory (under an allowed root)")
    policy: str | None = Field(default=None, description="policy name; default `reflection`")
    params: dict[str, Any] | None = Field(default=None, description="policy parameters")
    template: Literal["plain", "chat", "alpaca"] | None = None
    name: str = ""


class Progress(BaseModel):
    """Samples whose chunk is scored, out of all; `cached`: candidates whose scores came from the score cache."""

    scored: int
    total: int
    candidates: int
    cached: int


class Counts(BaseModel):
    """Samples per decision (zero until the job is decided)."""

    retained: int
    rejected: int
    unscored: int


class StudentOut(BaseModel):
    """The exact student a job was scored with."""

    path: str
    fingerprint: str
    model_type: str
    max_length: int


class PolicyOut(BaseModel):
    """The policy a job is decided with, and its validated parameters."""

    name: str
    version: str
    params: dict[str, Any]


class Timings(BaseModel):
    """When the job was created, started scoring, finished scoring and finished."""

    created_at: datetime
    started_at: datetime | None
    scored_at: datetime | None
    finished_at: datetime | None
    scoring_seconds: float = Field(description="time spent inside the scoring engine, summed over chunks")
    samples_per_second: float | None


class JobOut(BaseModel):
    """A curation job: status, progress, counts, student identity, policy, timings and error."""

    id: uuid.UUID
    status: JobStatusName
    progress: Progress
    counts: Counts
    student: StudentOut
    policy: PolicyOut
    template: str
    dataset: dict[str, Any]
    timings: Timings
    error: str | None


class JobPage(BaseModel):
    """A page of jobs, newest first; pass `next_cursor` as `cursor` for the next page."""

    items: list[JobOut]
    next_cursor: str | None


class CandidateOut(BaseModel):
    """One candidate (the original or a teacher's refinement) with every score `frontier score` gives."""

    name: str
    teacher: str | None
    status: str
    error: str | None
    template: str | None
    scoring_version: str | None
    nll_instruction: float | None
    nll_response_given_instruction: float | None
    nll_response: float | None
    nll_instruction_given_response: float | None
    ppl_response_given_instruction: float | None
    ifd: float | None
    ifd_loss_ratio: float | None
    rifd: float | None
    n_instruction_tokens: int | None
    n_response_tokens: int | None
    n_response_tokens_backward: int | None
    n_instruction_tokens_backward: int | None
    instruction_truncated: bool | None
    instruction: str | None = None
    input: str | None = None
    response: str | None = None


class SampleOut(BaseModel):
    """A sample's decision, the reason, the chosen candidate and every candidate's scores."""

    sample_id: str
    ordinal: int
    decision: DecisionName | None
    reason: str | None
    chosen_candidate: str | None
    detail: dict[str, Any] | None
    candidates: list[CandidateOut]


class SamplePage(BaseModel):
    """A page of samples in input order; pass `next_cursor` as `cursor` for the next page."""

    items: list[SampleOut]
    next_cursor: str | None
    policy: PolicyOut | None


class ErrorOut(BaseModel):
    """What went wrong; `line` and `field` point into the uploaded dataset where they apply."""

    message: str
    line: int | None = None
    field: str | None = None
