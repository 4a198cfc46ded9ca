"""ORM models: students, jobs and their chunks, samples, candidates (with scores), decision sets, decisions,
the score cache shared across jobs, and probe runs with their (condition, seed) tasks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.decisions import DecisionName
from service.db import Base

# SQLite only auto-increments INTEGER PRIMARY KEY; Postgres gets a BIGINT identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class JobStatus(StrEnum):
    """Where a job is in its life; `ingesting`: its dataset is being read and stored by an ingest task."""

    ingesting = "ingesting"
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


FINISHED_STATUSES = frozenset({JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled})


class ChunkStatus(StrEnum):
    """Where one chunk of a job's samples is in scoring."""

    pending = "pending"
    running = "running"
    done = "done"
    failed = "failed"


class ProbeStatus(StrEnum):
    """Where a probe run is in its life."""

    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


PROBE_FINISHED_STATUSES = frozenset({ProbeStatus.succeeded, ProbeStatus.failed, ProbeStatus.cancelled})


class ProbeTaskStatus(StrEnum):
    """Where one (condition, seed) of a probe run is: waiting, training, done, or failed for good."""

    pending = "pending"
    running = "running"
    done = "done"
    failed = "failed"


class CandidateStatus(StrEnum):
    """A candidate waiting for its scores, scored, or refused by the engine (with an error)."""

    pending = "pending"
    scored = "scored"
    unscored = "unscored"


class Tenant(Base):
    """A team: owns API keys and jobs; one tenant never sees another's."""

    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiKey(Base):
    """An API key of a tenant: the SHA-256 of the key, found by its public prefix (service.auth)."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Student(Base):
    """A student checkpoint as it was when a job used it: resolved path plus content fingerprint."""

    __tablename__ = "students"
    __table_args__ = (UniqueConstraint("path", "fingerprint"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(64))
    model_type: Mapped[str] = mapped_column(String(100))
    max_length: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Job(Base):
    """One curation job: a dataset scored by one student and decided by one policy."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index(None, "created_at"),
        Index(None, "tenant_id", "created_at"),
        # One job per (tenant, Idempotency-Key); NULL keys never collide.
        UniqueConstraint("tenant_id", "idempotency_key"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    # None: the local tenant of a deployment without API keys.
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    # SHA-256 of what the request asked for, so a reused key with another request is a 409, not this job.
    request_hash: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default=JobStatus.queued)
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id"))
    policy: Mapped[str] = mapped_column(String(100))
    policy_params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    template: Mapped[str] = mapped_column(String(20))
    # The clip of the token ranks behind rank_mean and rsr (arXiv 2601.14249 uses 100).
    rank_clip: Mapped[int] = mapped_column(Integer, default=100, server_default="100")
    dataset_name: Mapped[str] = mapped_column(String(300), default="")
    dataset_format: Mapped[str] = mapped_column(String(20))
    chunk_size: Mapped[int] = mapped_column(Integer)
    n_chunks: Mapped[int] = mapped_column(Integer)
    total_samples: Mapped[int] = mapped_column(Integer)
    total_candidates: Mapped[int] = mapped_column(Integer)
    scored_samples: Mapped[int] = mapped_column(Integer, default=0)
    # Candidates whose scores came from the score cache instead of the engine.
    cached_candidates: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Scored candidates and the tokens of their four scored spans, added once per chunk: what /metrics reads.
    scored_candidates: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    scored_tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    retained_count: Mapped[int] = mapped_column(Integer, default=0)
    rejected_count: Mapped[int] = mapped_column(Integer, default=0)
    unscored_count: Mapped[int] = mapped_column(Integer, default=0)
    # Seconds spent inside the scoring engine, summed over chunks: the bare-scoring share of the job's time.
    scoring_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    scored_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A dataset stored by an ingest task (service.jobs.ingest) in batches: the file it reads and its format, and
    # whether the job owns it (a spooled upload, deleted once ingest ends). None for a job created whole.
    source_path: Mapped[str | None] = mapped_column(Text)
    source_format: Mapped[str | None] = mapped_column(String(20))
    source_owned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Records read, validated and stored so far (the job's samples; batches commit whole).
    ingested_records: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Starts of the ingest task since it last stored a batch: bounded by FRONTIER_MAX_CHUNK_ATTEMPTS.
    ingest_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The ingest's last sign of life (created, a batch stored, re-sent by the sweep): the sweep times it out from here.
    ingest_updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The line (JSONL) or row (Parquet) of the record that failed the ingest, if one did.
    rejected_line: Mapped[int | None] = mapped_column(Integer)

    student: Mapped[Student] = relationship(lazy="raise")


class Chunk(Base):
    """A contiguous run of a job's samples (by ordinal) scored by one task."""

    __tablename__ = "chunks"
    __table_args__ = (UniqueConstraint("job_id", "index"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)
    first_ordinal: Mapped[int] = mapped_column(Integer)
    n_samples: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default=ChunkStatus.pending)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    scoring_seconds: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the sweep last re-sent the chunk's task (None: only the job's creation queued it).
    queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Sample(Base):
    """One input record of a job, kept verbatim so exports answer in the input's own layout."""

    __tablename__ = "samples"
    __table_args__ = (UniqueConstraint("job_id", "ordinal"), UniqueConstraint("job_id", "external_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    ordinal: Mapped[int] = mapped_column(Integer)
    external_id: Mapped[str] = mapped_column(Text)
    layout: Mapped[str] = mapped_column(String(20))
    # JSON text, not JSONB: nothing queries inside it, it is only read back whole for exports, and Postgres stores
    # text without converting it (a fifth faster to COPY at ingest).
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


class Candidate(Base):
    """The original or one teacher's refinement of a sample, with every score the engine gave it."""

    __tablename__ = "candidates"
    # Chunk writes update rows keyed by this triple, so a redelivered chunk rewrites the same values.
    __table_args__ = (UniqueConstraint("job_id", "sample_id", "name"), Index(None, "sample_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # No foreign keys here, by design (migration 0009): candidates are written only by the ingest, in the transaction
    # that wrote their samples, from the ids it read back, and deleted only with their job's samples
    # (repository.delete_job_rows). Checking two keys per row was half of Postgres' work per ingested sample.
    job_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    sample_id: Mapped[int] = mapped_column(BigId)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    teacher: Mapped[str | None] = mapped_column(String(200))
    instruction: Mapped[str] = mapped_column(Text)
    input: Mapped[str] = mapped_column(Text)
    response: Mapped[str] = mapped_column(Text)

    status: Mapped[str] = mapped_column(String(20), default=CandidateStatus.pending)
    error: Mapped[str | None] = mapped_column(Text)
    template: Mapped[str | None] = mapped_column(String(20))
    scoring_version: Mapped[str | None] = mapped_column(String(20))
    nll_instruction: Mapped[float | None] = mapped_column(Float)
    nll_response_given_instruction: Mapped[float | None] = mapped_column(Float)
    nll_response: Mapped[float | None] = mapped_column(Float)
    nll_instruction_given_response: Mapped[float | None] = mapped_column(Float)
    ppl_response_given_instruction: Mapped[float | None] = mapped_column(Float)
    ifd: Mapped[float | None] = mapped_column(Float)
    ifd_loss_ratio: Mapped[float | None] = mapped_column(Float)
    rifd: Mapped[float | None] = mapped_column(Float)
    # Rank statistics over the L(A|Q) tokens (Rank-Surprisal Ratio); NULL for scores older than version 2.
    rank_mean: Mapped[float | None] = mapped_column(Float)
    rsr: Mapped[float | None] = mapped_column(Float)
    rank_clip: Mapped[int | None] = mapped_column(Integer)
    n_instruction_tokens: Mapped[int | None] = mapped_column(Integer)
    n_response_tokens: Mapped[int | None] = mapped_column(Integer)
    n_response_tokens_backward: Mapped[int | None] = mapped_column(Integer)
    n_instruction_tokens_backward: Mapped[int | None] = mapped_column(Integer)
    instruction_truncated: Mapped[bool | None] = mapped_column(Boolean)
    scored_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ScoreCacheEntry(Base):
    """One candidate text's engine scores under one exact student, template and scoring version.

    Keyed by content, not by job: a second job over overlapping data with the same student reuses them. The
    student is keyed by its content fingerprint, so a checkpoint rewritten under the same path misses.
    """

    __tablename__ = "score_cache"

    text_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    student_fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    template: Mapped[str] = mapped_column(String(20), primary_key=True)
    scoring_version: Mapped[str] = mapped_column(String(20), primary_key=True)
    scores: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DecisionSet(Base):
    """One run of a policy over a job's stored scores: the policy's name, version and parameters."""

    __tablename__ = "decision_sets"
    __table_args__ = (Index(None, "job_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    policy: Mapped[str] = mapped_column(String(100))
    policy_version: Mapped[str] = mapped_column(String(20))
    params: Mapped[dict[str, Any]] = mapped_column()
    retained_count: Mapped[int] = mapped_column(Integer, default=0)
    rejected_count: Mapped[int] = mapped_column(Integer, default=0)
    unscored_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Decision(Base):
    """A policy's verdict on one sample: retained, rejected or unscored, the chosen candidate and why."""

    __tablename__ = "decisions"
    __table_args__ = (
        UniqueConstraint("decision_set_id", "sample_id"),
        Index(None, "job_id", "decision_set_id", "decision"),
        # Deleting a sample (a failed ingest leaves none behind) looks its decisions up by sample: without this
        # index, each deleted sample would scan every decision of every job.
        Index(None, "sample_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    decision_set_id: Mapped[int] = mapped_column(ForeignKey("decision_sets.id", ondelete="CASCADE"))
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    sample_id: Mapped[int] = mapped_column(ForeignKey("samples.id", ondelete="CASCADE"))
    decision: Mapped[DecisionName] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(100))
    chosen_candidate: Mapped[str | None] = mapped_column(String(200))
    # The policy-specific evidence (e.g. the rank or the thresholds crossed), for "why was this kept?".
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ProbeRun(Base):
    """A short fine-tune of a fresh copy of a job's student on each condition, measured on the same eval items.

    The eval items are stored inline (at most FRONTIER_PROBE_MAX_EVAL_ITEMS): a run stays reproducible from its
    own row even when it was given an uploaded eval set.
    """

    __tablename__ = "probe_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(20), default=ProbeStatus.queued)
    # core.probes.ProbeBudget as JSON.
    budget: Mapped[dict[str, Any]] = mapped_column()
    answer_pattern: Mapped[str | None] = mapped_column(Text)
    # Condition names (core.probes) in the order results are shown.
    conditions: Mapped[list[Any]] = mapped_column()
    eval_source: Mapped[str] = mapped_column(String(20))
    # core.probes.EvalItem rows as JSON.
    eval_items: Mapped[list[Any]] = mapped_column()
    # Sample ids held out of every condition's training data (empty with an uploaded eval set).
    held_out_sample_ids: Mapped[list[Any]] = mapped_column(default=list)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ProbeTask(Base):
    """One (condition, seed) of a probe run: trained and evaluated by one worker task, its curve growing as it runs."""

    __tablename__ = "probe_tasks"
    __table_args__ = (UniqueConstraint("probe_run_id", "condition", "seed"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    probe_run_id: Mapped[int] = mapped_column(ForeignKey("probe_runs.id", ondelete="CASCADE"))
    condition: Mapped[str] = mapped_column(String(300))
    seed: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default=ProbeTaskStatus.pending)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Training examples of the condition (held-out samples excluded), counted when the run was created.
    n_examples: Mapped[int] = mapped_column(Integer, default=0)
    # The step of the latest curve point: the task's progress.
    progress_step: Mapped[int] = mapped_column(Integer, default=0)
    # core.probes.CurvePoint rows; the engine's final, cost and first completions once done.
    curve: Mapped[list[Any]] = mapped_column(default=list)
    final: Mapped[dict[str, Any] | None] = mapped_column()
    cost: Mapped[dict[str, Any] | None] = mapped_column()
    completions: Mapped[list[Any] | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the sweep last re-sent the task (None: only the run's creation queued it).
    queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The last sign of life: claimed, a curve point, or the result. The sweep times a running task out from here.
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
