"""HTTP shapes of jobs, samples and candidates (the v1 contract)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.decisions import DecisionName
from core.scores import MAX_RANK_CLIP
from core.templates import TemplateName

# `ingesting`: accepted, its dataset still being read and stored by an ingest task (chunks already stored may score).
JobStatusName = Literal["ingesting", "queued", "running", "succeeded", "failed", "cancelled"]


class DatasetRef(BaseModel):
    """A dataset file on the server's machine, under FRONTIER_DATASET_ROOTS: JSONL, gzip JSONL or Parquet."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="absolute path of the file on the server (symlinks resolved, inside a root)")
    format: Literal["jsonl", "parquet"] | None = Field(
        default=None, description="default: by the file's name, else its magic bytes (gzip JSONL is `jsonl`)"
    )


class JobCreate(BaseModel):
    """A job as a JSON body: the samples inline, or a dataset file on the server by reference (exactly one)."""

    model_config = ConfigDict(extra="forbid")

    samples: list[Any] | None = Field(default=None, description="records in the native, Alpaca or chat layout")
    dataset: DatasetRef | None = Field(
        default=None, description="a dataset file on the server instead of `samples`; always ingested in the background"
    )
    student: str = Field(description="student checkpoint directory (under an allowed root)")
    policy: str | None = Field(default=None, description="policy name; default `reflection`")
    params: dict[str, Any] | None = Field(default=None, description="policy parameters")
    template: TemplateName | None = None
    rank_clip: int | None = Field(
        default=None,
        ge=1,
        le=MAX_RANK_CLIP,
        description="clip r of the token ranks behind rank_mean and rsr; default 100 (arXiv 2601.14249)",
    )
    name: str = Field(default="", description="the dataset's name shown with the job (default: the file's name)")


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
    rank_clip: int = Field(description="clip r of the token ranks behind each candidate's rank_mean and rsr")
    dataset: dict[str, Any]
    timings: Timings
    error: str | None
    ingested_records: int = Field(
        default=0,
        description="records read, validated and stored so far; grows while `ingesting`, then equals progress.total",
    )
    rejected_line: int | None = Field(
        default=None, description="the line (JSONL) or row (Parquet) whose record failed the ingest, if one did"
    )


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
    rank_mean: float | None = Field(description="mean clipped token rank of the response under L(A|Q)")
    rsr: float | None = Field(description="Rank-Surprisal Ratio: sum of clipped ranks / sum of NLL (lower = better)")
    rank_clip: int | None
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
    decision_set: int | None = Field(default=None, description="the decision set the decisions come from")


class DecideIn(BaseModel):
    """A policy and its parameters to run over a job's stored scores."""

    model_config = ConfigDict(extra="forbid")

    policy: str = Field(description="a registered policy name (GET /v1/policies)")
    params: dict[str, Any] | None = Field(default=None, description="policy parameters; defaults fill the rest")


class DecisionSetOut(BaseModel):
    """One run of a policy over a job's stored scores."""

    id: int
    policy: PolicyOut
    counts: Counts
    created_at: datetime
    own: bool = Field(description="made by the job's own policy when it finished")
    latest: bool = Field(description="the most recent: what samples, export and report use by default")


class DecisionSetList(BaseModel):
    """A job's decision sets, oldest first."""

    items: list[DecisionSetOut]


class Sweep(BaseModel):
    """One policy parameter and the values to try it at."""

    model_config = ConfigDict(extra="forbid")

    param: str
    values: list[Any] = Field(min_length=1, max_length=100)


class WhatIfIn(BaseModel):
    """A policy, its base parameters, and one parameter to sweep."""

    model_config = ConfigDict(extra="forbid")

    policy: str
    params: dict[str, Any] | None = None
    sweep: Sweep


class TeacherAcceptance(BaseModel):
    """How many of a teacher's candidates (or the originals) a decision kept as the sample's chosen candidate."""

    candidates: int
    accepted: int
    acceptance: float | None


class WhatIfPoint(BaseModel):
    """The outcome of the policy at one value of the swept parameter."""

    value: Any
    params: dict[str, Any]
    counts: Counts
    retained_fraction: float
    teachers: dict[str, TeacherAcceptance]


class WhatIfOut(BaseModel):
    """A parameter sweep computed in memory over the stored scores; nothing is written."""

    policy: str
    version: str
    param: str
    points: list[WhatIfPoint]


class CandidatePoint(BaseModel):
    """One candidate on the IFD × r-IFD plane, its frontier score and zone, and what the decision set did with it."""

    sample_id: str
    candidate: str
    teacher: str | None = Field(description="None for the original")
    ifd: float | None
    rifd: float | None
    frontier_score: float | None
    zone: str = Field(description="frontier_band zone under the band in `frontier` (unscored, misaligned, ...)")
    decision: DecisionName = Field(
        description="retained: chosen for a retained sample; rejected: scored but not chosen; unscored: no scores"
    )
    sample_decision: DecisionName | None
    reason: str | None = Field(description="the sample's reason code")


class PointsOut(BaseModel):
    """Every candidate of a job as a plot point (what the dashboard's scatter and histograms draw)."""

    job_id: uuid.UUID
    decision_set: DecisionSetOut
    frontier: dict[str, Any] = Field(description="the frontier_band parameters the frontier scores and zones use")
    total_points: int = Field(description="the job's candidates; `points` holds them all when stride is 1")
    stride: int = Field(description="every stride-th sample's candidates are in `points` (1: every sample)")
    points: list[CandidatePoint] = Field(description="samples in input order, the original first within each")


class ErrorOut(BaseModel):
    """What went wrong; `line` and `field` point into the uploaded dataset where they apply."""

    message: str
    line: int | None = None
    field: str | None = None


class Quantiles(BaseModel):
    """The 10th, 25th, 50th, 75th and 90th percentiles (linear interpolation) and the mean."""

    p10: float
    p25: float
    p50: float
    p75: float
    p90: float
    mean: float


class Hedging(BaseModel):
    """A teacher's hedging words per 100 words, its change against the originals, and how often it strips them."""

    mean_rate: float | None
    mean_change_vs_original: float | None
    overconfident_style: int
    overconfident_share: float | None


class ProbeFit(BaseModel):
    """A teacher's result in the job's latest succeeded probe run: mean and sd over the seeds that finished."""

    exact_match: float | None = Field(description="greedy exact match on the probe's eval items after its budget")
    exact_match_sd: float | None = Field(description="sample sd over seeds (None with one seed)")
    loss: float | None = Field(description="held-out loss of the reference responses (diagnostic: not ranked by)")
    loss_sd: float | None
    seeds: int


class ProbeEvidence(BaseModel):
    """The probe run the ranking rests on, and how clear its verdict is."""

    probe_id: int
    steps: int
    batch_size: int
    seeds: int
    eval_source: str
    eval_items: int
    conclusive: bool = Field(
        description="the first teacher's exact match exceeds the second's by more than `noise`; when false the "
        "ranking's first place is uncertain among `contenders`"
    )
    contenders: list[str] = Field(
        default_factory=list,
        description="the probe's first teacher and every teacher within the eval noise of it, best first: the "
        "teachers an inconclusive run cannot tell apart (it still ranks them: exact ties in score-only order)",
    )
    margin: float | None = Field(description="first minus second teacher's mean exact match")
    noise: float | None = Field(
        description="two standard errors of that difference from the number of eval problems (x seeds) measured"
    )
    spread: float | None = Field(description="the larger seed sd of those two teachers (None with one seed)")
    margin_exceeds_spread: bool | None = Field(description="margin > spread; None when the spread is unknown")
    tokens: int = Field(description="tokens fed over all the run's optimiser steps (its training cost)")
    earlier_probe_id: int | None = Field(
        default=None,
        description="when this run is a follow-up (it trained the contenders of an earlier run, not every "
        "teacher): that earlier run, whose order ranks the other teachers after this run's",
    )
    follow_up: dict[str, Any] | None = Field(
        default=None,
        description="when the verdict is inconclusive: probe parameters that train only the contenders, for twice "
        "the steps (POST /v1/jobs/{id}/probes, or `frontier jobs probe JOB --teachers ... --steps N`); none when "
        "the first teacher is `at_ceiling`",
    )
    at_ceiling: bool = Field(
        default=False,
        description="the first teacher solved every eval problem: a longer probe cannot set it further apart, "
        "more (or harder) eval problems can",
    )


class TeacherReport(BaseModel):
    """One teacher's refinements (or the originals) measured against this student's frontier."""

    teacher: str
    is_original: bool
    rank: int | None = Field(description="1 = closest to the student's frontier; None for the originals")
    candidates: int
    scored: int
    accepted: int = Field(description="candidates chosen for a retained sample by the decision set")
    accepted_share: float | None
    ifd: Quantiles | None
    rifd: Quantiles | None
    frontier_score: Quantiles | None
    rank_mean: float | None = Field(
        description="mean of rank_mean (mean clipped token rank under L(A|Q)) over its candidates with rank statistics"
    )
    rsr: float | None = Field(
        description="dataset-level Rank-Surprisal Ratio (arXiv 2601.14249): mean rank_mean / mean L(A|Q) over its "
        "candidates with rank statistics (lower = better); None when none has ranks"
    )
    beat_original: int | None = Field(description="refinements that beat their original (docs/policies.md)")
    beat_original_share: float | None
    zones: dict[str, float] = Field(
        description="share of candidates per frontier_band zone (unscored, misaligned, not_feasible, below, inside, "
        "beyond; tested in that order, so `inside` is what the policy can keep)"
    )
    band: dict[str, float] = Field(
        description="share of scored candidates below, inside and beyond the band by frontier score alone"
    )
    hedging: Hedging
    probe: ProbeFit | None = Field(default=None, description="its condition in the job's latest succeeded probe run")


class FrontierOut(BaseModel):
    """The band and reference the zones were computed with."""

    params: dict[str, Any]
    from_decision_set: bool = Field(description="the decision set is a frontier_band run (else its defaults)")
    loss_median: float | None
    loss_scale: float | None
    log_ifd_median: float | None
    log_ifd_scale: float | None


class ReportWarning(BaseModel):
    """Something to know before training on a decision set, with the parameter change it suggests, if any."""

    code: Literal["low_yield", "cut_fails_most"] = Field(
        description="low_yield: it keeps under 5% of the samples; cut_fails_most: `param` fails 90% or more"
    )
    message: str
    param: str | None = Field(default=None, description="the policy parameter the warning is about")
    suggested: float | None = Field(default=None, description="a value relative to this job: its median of the score")


RankingBasis = Literal["probe", "rsr", "frontier"]


class SuggestedDecide(BaseModel):
    """The re-decide that trains on the recommended teacher only: POST /v1/jobs/{id}/decide with this body."""

    policy: str
    params: dict[str, Any]
    command: str = Field(description="the same as a `frontier jobs decide` command line")


class ReportOut(BaseModel):
    """Which teacher's outputs sit closest to this student's frontier, with the numbers behind it."""

    job_id: uuid.UUID
    student: StudentOut
    decision_set: DecisionSetOut
    frontier: FrontierOut
    teachers: list[TeacherReport] = Field(description="the originals first, then teachers by rank")
    ranking: list[str] = Field(description="teachers, best first: ranking[0] is the recommended teacher")
    ranking_basis: RankingBasis = Field(
        description="the evidence `ranking` rests on: `probe` (exact match after a short fine-tune per teacher) when "
        "the job's latest succeeded probe run separates the first teacher from the rest; else `rsr` (dataset-level "
        "Rank-Surprisal Ratio, lower first) when every teacher's candidates carry rank statistics; else `frontier` "
        "(share inside the frontier band)"
    )
    probe: ProbeEvidence | None = Field(
        default=None, description="the job's latest succeeded probe run, whether or not it decided the ranking"
    )
    rankings: dict[str, list[str]] = Field(
        description="each signal's own ranking (`probe`, `rsr`, `frontier`), so disagreement is visible"
    )
    signals_agree: bool = Field(description="whether every signal in `rankings` puts the same teacher first")
    suggested_decide: SuggestedDecide | None = Field(
        default=None, description="keep only the recommended teacher's refinements: one re-decide, these parameters"
    )
    recommendation: str | None
    warnings: list[ReportWarning] = Field(
        default_factory=list,
        description="what to know before training on this decision set: it keeps under 5% of the samples, or an "
        "IFD / r-IFD cut fails 90% or more of the scored candidates (with the job's median as a relative cut)",
    )


class CodeVersion(BaseModel):
    """The code that made the decisions."""

    package: str
    version: str
    git_commit: str | None


class ManifestOut(BaseModel):
    """Everything a curated dataset depends on, for one decision set of a job."""

    job_id: uuid.UUID
    dataset: dict[str, Any]
    created_at: datetime
    finished_at: datetime | None
    student: StudentOut
    template: str
    scoring_versions: list[str]
    candidates: int
    decision_set: DecisionSetOut
    reasons: dict[str, dict[str, int]] = Field(description="samples per reason code, by decision")
    code: CodeVersion
    generated_at: datetime
