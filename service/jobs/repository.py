"""Every query over jobs, their students, chunks, samples and candidates; flushes, never commits.

Decision sets, decisions and the score table policies read are in decision_repository.py.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Row, Table, bindparam, delete, exists, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, joinedload

from core.checkpoint import CheckpointInfo
from core.dataset import SampleRecord, candidate_rows
from core.scores import SCORE_FIELDS
from service.db import Base, insert_ignoring_conflicts
from service.models import (
    Candidate,
    CandidateStatus,
    Chunk,
    ChunkStatus,
    Decision,
    DecisionSet,
    Job,
    JobStatus,
    Sample,
    Student,
    utcnow,
)

# Columns of a stored candidate as bulk_insert_candidates writes them.
CANDIDATE_COLUMNS = ("job_id", "sample_id", "position", "name", "teacher", "instruction", "input", "response", "status")


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


def get_or_create_student(session: Session, info: CheckpointInfo) -> Student:
    """The student row for this exact checkpoint content, created on first use.

    INSERT ... ON CONFLICT DO NOTHING, then SELECT: concurrent first jobs with one new student (32 clients
    in the load test) would otherwise race on the unique (path, fingerprint) and all but one fail.
    """
    where = (Student.path == info.path, Student.fingerprint == info.fingerprint)
    student = session.scalars(select(Student).where(*where)).one_or_none()
    if student is None:
        values = {
            "path": info.path,
            "fingerprint": info.fingerprint,
            "model_type": info.model_type,
            "max_length": info.max_length,
            "created_at": utcnow(),
        }
        session.execute(insert_ignoring_conflicts(session, Student).values(values))
        student = session.scalars(select(Student).where(*where)).one()
    return student


def _of_tenant(tenant_id: int | None) -> ColumnElement[bool]:
    """Jobs of this tenant; None is the local tenant of a deployment without API keys."""
    return Job.tenant_id.is_(None) if tenant_id is None else Job.tenant_id == tenant_id


def job_by_idempotency_key(session: Session, tenant_id: int | None, key: str) -> Job | None:
    """The tenant's job created with this Idempotency-Key, with its student, or None."""
    return session.scalars(
        select(Job).options(joinedload(Job.student)).where(_of_tenant(tenant_id), Job.idempotency_key == key)
    ).first()


def get_job(session: Session, job_id: uuid.UUID) -> Job | None:
    """The job with its student, or None."""
    return session.scalars(select(Job).options(joinedload(Job.student)).where(Job.id == job_id)).one_or_none()


def locked_job(session: Session, job_id: uuid.UUID) -> Job | None:
    """Take the job row's write lock for this transaction and return the job with its student (None if no such job).

    A no-op UPDATE rather than SELECT ... FOR UPDATE: it locks the row on Postgres and takes SQLite's write
    lock up front, so concurrent chunk completions of one job serialise on every backend. The job is then read
    afresh (populate_existing), so its status is the locked row's even when this session loaded it earlier.
    """
    statement = update(Job).where(Job.id == job_id).values(status=Job.status).returning(Job.id)
    if session.execute(statement, execution_options={"synchronize_session": False}).scalar_one_or_none() is None:
        return None
    return session.scalars(
        select(Job).options(joinedload(Job.student)).where(Job.id == job_id).execution_options(populate_existing=True)
    ).one()


def list_jobs(
    session: Session,
    *,
    tenant_id: int | None,
    status: str | None,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Sequence[Job]:
    """A tenant's jobs newest first, after an optional (created_at, id) keyset cursor."""
    query = (
        select(Job)
        .options(joinedload(Job.student))
        .where(_of_tenant(tenant_id))
        .order_by(Job.created_at.desc(), Job.id.desc())
        .limit(limit)
    )
    if status is not None:
        query = query.where(Job.status == status)
    if before is not None:
        created_at, job_id = before
        query = query.where((Job.created_at < created_at) | ((Job.created_at == created_at) & (Job.id < job_id)))
    return session.scalars(query).all()


def insert_samples(session: Session, job_id: uuid.UUID, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert sample rows (in ordinal order) and return their ids in the same order."""
    if not rows:
        return []
    # Core, not ORM, bulk inserts: the ORM splits executemany batches whenever a value flips to None.
    table = _table(Sample)
    result = session.connection().execute(
        insert(table).returning(table.c.id, sort_by_parameter_order=True),
        [{"job_id": job_id, **row} for row in rows],
    )
    return [int(sample_id) for sample_id in result.scalars()]


def insert_candidates(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert pending candidate rows in one executemany."""
    if rows:
        session.connection().execute(insert(_table(Candidate)), list(rows))


def insert_chunks(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert a job's chunk rows."""
    if rows:
        session.connection().execute(insert(_table(Chunk)), list(rows))


def bulk_insert_samples(
    session: Session, job_id: uuid.UUID, first_ordinal: int, records: Sequence[SampleRecord]
) -> list[int]:
    """Insert records as the job's samples numbered from `first_ordinal`; their ids in the same order.

    COPY on Postgres (an ingest batch's thousands of rows in one round trip); a bulk INSERT elsewhere. A sample id
    the job already has raises IntegrityError on either backend.
    """
    if not records:
        return []
    if session.get_bind().dialect.name != "postgresql":
        return insert_samples(
            session,
            job_id,
            [
                {
                    "ordinal": first_ordinal + offset,
                    "external_id": record.id,
                    "layout": record.layout,
                    "payload": record.raw,
                }
                for offset, record in enumerate(records)
            ],
        )
    _copy(
        session,
        "COPY samples (job_id, ordinal, external_id, layout, payload) FROM STDIN",
        (
            (job_id, first_ordinal + offset, record.id, record.layout, _json_text(record))
            for offset, record in enumerate(records)
        ),
    )
    ids = session.scalars(
        select(Sample.id)
        .where(Sample.job_id == job_id, Sample.ordinal >= first_ordinal, Sample.ordinal < first_ordinal + len(records))
        .order_by(Sample.ordinal)
    ).all()
    return [int(sample_id) for sample_id in ids]


def bulk_insert_candidates(
    session: Session, job_id: uuid.UUID, sample_ids: Sequence[int], records: Sequence[SampleRecord]
) -> None:
    """Insert the pending candidates of the given samples (COPY on Postgres, a bulk INSERT elsewhere)."""
    pending = CandidateStatus.pending.value
    rows = (
        (job_id, sample_id, position, *row, pending)
        for sample_id, record in zip(sample_ids, records, strict=True)
        for position, row in enumerate(candidate_rows(record))
    )
    if session.get_bind().dialect.name == "postgresql":
        _copy(session, f"COPY candidates ({', '.join(CANDIDATE_COLUMNS)}) FROM STDIN", rows)
    else:
        insert_candidates(session, [dict(zip(CANDIDATE_COLUMNS, row, strict=True)) for row in rows])


def _json_text(record: SampleRecord) -> str:
    """A record's JSON text: as read when the reader kept it (Postgres parses it into JSONB), else encoded."""
    return record.text if record.text is not None else json.dumps(record.raw, ensure_ascii=False)


def _copy(session: Session, statement: str, rows: Iterable[tuple[Any, ...]]) -> None:
    """COPY rows into a table inside the session's transaction (Postgres only); errors as SQLAlchemy's."""
    import psycopg

    connection: Any = session.connection().connection.driver_connection
    try:
        with connection.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
    except psycopg.Error as exc:
        # The same exception classes as any other statement (IntegrityError for a duplicate, OperationalError for an
        # outage), so callers need not know the rows went by COPY.
        raise DBAPIError.instance(statement, None, exc, psycopg.Error) from exc


# A step that bulk-writes at least this many rows refreshes the planner's statistics of the tables it wrote.
ANALYZE_MIN_ROWS = 10_000


def analyze(session: Session, *models: type[Base]) -> None:
    """Refresh Postgres' planner statistics of the given tables, inside the session's transaction.

    Bulk writes leave the statistics stale until autovacuum comes round (a minute or more later): a job's first
    exports and queries would then be planned as if its new rows did not exist (measured on 100,000 samples: a page
    of an export 100 ms instead of 2 ms). ANALYZE in the writing transaction counts that transaction's own rows, and
    reads a fixed-size sample (a few hundred ms at any table size). SQLite plans without gathered statistics here.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    for model in models:
        session.execute(text(f"ANALYZE {model.__tablename__}"))


def delete_job_rows(session: Session, job_id: uuid.UUID) -> None:
    """Delete every sample, candidate, chunk, decision set and decision of a job (its row stays)."""
    for model in (Decision, DecisionSet, Candidate, Sample, Chunk):
        table = _table(model)
        session.execute(delete(table).where(table.c.job_id == job_id))


def get_chunk(session: Session, job_id: uuid.UUID, index: int) -> Chunk | None:
    """One chunk of a job."""
    return session.scalars(select(Chunk).where(Chunk.job_id == job_id, Chunk.index == index)).one_or_none()


@dataclass(frozen=True, slots=True)
class StoredCandidate:
    """What the scoring engine needs to score one stored candidate."""

    id: int
    instruction: str
    input: str
    response: str


def chunk_candidates(session: Session, job_id: uuid.UUID, first_ordinal: int, n_samples: int) -> list[StoredCandidate]:
    """The candidates of a chunk's samples, in (ordinal, position) order."""
    rows = session.execute(
        select(Candidate.id, Candidate.instruction, Candidate.input, Candidate.response)
        .join(Sample, Sample.id == Candidate.sample_id)
        .where(
            Candidate.job_id == job_id,
            Sample.job_id == job_id,
            Sample.ordinal >= first_ordinal,
            Sample.ordinal < first_ordinal + n_samples,
        )
        .order_by(Sample.ordinal, Candidate.position)
    ).all()
    return [StoredCandidate(row.id, row.instruction, row.input, row.response) for row in rows]


def update_candidate_scores(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Write scores onto candidate rows by primary key in one executemany (rewriting the same values is harmless)."""
    if not rows:
        return
    table = _table(Candidate)
    columns = sorted({key for row in rows for key in row} - {"id"})
    statement = (
        update(table)
        .where(table.c.id == bindparam("candidate_id"))
        .values({column: bindparam(column) for column in columns})
    )
    params = [{"candidate_id": row["id"], **{column: row.get(column) for column in columns}} for row in rows]
    session.connection().execute(statement, params)


def mark_chunk_done(
    session: Session, job_id: uuid.UUID, index: int, *, scoring_seconds: float, finished_at: datetime
) -> bool:
    """Mark a chunk done; True only on the transition, so a redelivered chunk is counted once."""
    result = session.execute(
        update(Chunk)
        .where(Chunk.job_id == job_id, Chunk.index == index, Chunk.status != ChunkStatus.done)
        .values(status=ChunkStatus.done, finished_at=finished_at, scoring_seconds=scoring_seconds, error=None)
        .returning(Chunk.n_samples)
    ).scalar_one_or_none()
    return result is not None


def add_progress(
    session: Session,
    job_id: uuid.UUID,
    *,
    samples: int,
    scoring_seconds: float,
    cached_candidates: int = 0,
    scored_candidates: int = 0,
    scored_tokens: int = 0,
) -> None:
    """Add a finished chunk's samples, engine time, cache hits and scored totals to the job (atomic in SQL)."""
    session.execute(
        update(Job)
        .where(Job.id == job_id)
        .values(
            scored_samples=Job.scored_samples + samples,
            scoring_seconds=Job.scoring_seconds + scoring_seconds,
            cached_candidates=Job.cached_candidates + cached_candidates,
            scored_candidates=Job.scored_candidates + scored_candidates,
            scored_tokens=Job.scored_tokens + scored_tokens,
        )
    )


def chunks_left(session: Session, job_id: uuid.UUID) -> int:
    """How many of the job's chunks are not done."""
    return int(
        session.scalar(select(func.count()).where(Chunk.job_id == job_id, Chunk.status != ChunkStatus.done)) or 0
    )


def scoring_versions(session: Session, job_id: uuid.UUID) -> list[str]:
    """The distinct scoring-engine versions that scored the job's candidates."""
    statement = select(Candidate.scoring_version).where(Candidate.job_id == job_id).distinct()
    return sorted(version for version in session.scalars(statement).all() if version is not None)


@dataclass(frozen=True, slots=True)
class SampleFilter:
    """Filters over a job's samples for listing and export."""

    decision: str | None = None
    reason: str | None = None
    teacher: str | None = None
    chosen: str | None = None


def sample_page(
    session: Session,
    job_id: uuid.UUID,
    decision_set_id: int | None,
    filters: SampleFilter,
    *,
    after_ordinal: int,
    limit: int,
    external_id: str | None = None,
) -> Sequence[Row[*tuple[Any, ...]]]:
    """Samples (ordinal order, after a keyset cursor) joined with their decision in the given set."""
    query = (
        select(
            Sample.id,
            Sample.ordinal,
            Sample.external_id,
            Sample.layout,
            Sample.payload,
            Decision.decision,
            Decision.reason,
            Decision.chosen_candidate,
            Decision.detail,
        )
        .outerjoin(
            Decision,
            (Decision.sample_id == Sample.id)
            & (Decision.decision_set_id == (decision_set_id if decision_set_id is not None else -1)),
        )
        .where(Sample.job_id == job_id, Sample.ordinal > after_ordinal)
        .order_by(Sample.ordinal)
        .limit(limit)
    )
    if external_id is not None:
        query = query.where(Sample.external_id == external_id)
    if filters.decision is not None:
        query = query.where(Decision.decision == filters.decision)
    if filters.reason is not None:
        query = query.where(Decision.reason == filters.reason)
    if filters.chosen is not None:
        query = query.where(Decision.chosen_candidate == filters.chosen)
    if filters.teacher is not None:
        query = query.where(exists().where(Candidate.sample_id == Sample.id, Candidate.teacher == filters.teacher))
    return session.execute(query).all()


def candidates_of_samples(session: Session, sample_ids: Iterable[int]) -> Sequence[Candidate]:
    """Every candidate of the given samples, in (sample, position) order."""
    ids = list(sample_ids)
    if not ids:
        return []
    return session.scalars(
        select(Candidate).where(Candidate.sample_id.in_(ids)).order_by(Candidate.sample_id, Candidate.position)
    ).all()


def chosen_candidates(session: Session, decision_set_id: int, sample_ids: Iterable[int]) -> dict[int, Candidate]:
    """The candidate the decision set chose, by sample id, for those of the given samples that have one."""
    ids = list(sample_ids)
    if not ids:
        return {}
    chosen = session.scalars(
        select(Candidate)
        .join(
            Decision,
            (Decision.sample_id == Candidate.sample_id)
            & (Decision.chosen_candidate == Candidate.name)
            & (Decision.decision_set_id == decision_set_id),
        )
        # Both sides restricted to the page's samples: with only the candidates' side, Postgres may hash-join against
        # a scan of every decision of the set (measured at 1M samples: 500 ms a page instead of 5 ms).
        .where(Candidate.sample_id.in_(ids), Decision.sample_id.in_(ids))
    ).all()
    return {candidate.sample_id: candidate for candidate in chosen}


def score_values(candidate: Candidate) -> dict[str, Any]:
    """A candidate row's engine scores as a dict, in CandidateScores' field order."""
    return {name: getattr(candidate, name) for name in SCORE_FIELDS}


def job_layouts(session: Session, job_id: uuid.UUID) -> list[str]:
    """The distinct record layouts of a job's samples."""
    return sorted(session.scalars(select(Sample.layout).where(Sample.job_id == job_id).distinct()).all())


def stalled_jobs(session: Session, *, cutoff: datetime) -> list[uuid.UUID]:
    """Unfinished jobs with a chunk running since before `cutoff`, pending chunks but no progress since, fully
    scored before it (their finalize lost), or ingesting with no sign of life since (their ingest task lost)."""
    lost_worker = exists().where(Chunk.job_id == Job.id, Chunk.status == ChunkStatus.running, Chunk.started_at < cutoff)
    # Progress: any chunk of the job claimed, finished or re-sent since the cutoff.
    recent = exists().where(
        Chunk.job_id == Job.id,
        (Chunk.started_at >= cutoff) | (Chunk.finished_at >= cutoff) | (Chunk.queued_at >= cutoff),
    )
    waiting = exists().where(Chunk.job_id == Job.id, Chunk.status == ChunkStatus.pending)
    fully_scored = ~exists().where(Chunk.job_id == Job.id, Chunk.status != ChunkStatus.done)
    scoring = (
        Job.status.in_([JobStatus.queued, JobStatus.running])
        & (Job.created_at < cutoff)
        & (lost_worker | (waiting & ~recent) | (fully_scored & (func.coalesce(Job.scored_at, Job.created_at) < cutoff)))
    )
    ingest_lost = (Job.status == JobStatus.ingesting) & (func.coalesce(Job.ingest_updated_at, Job.created_at) < cutoff)
    statement = select(Job.id).where(scoring | ingest_lost).order_by(Job.created_at)
    return list(session.scalars(statement).all())


def last_chunk_activity(session: Session, job_id: uuid.UUID) -> datetime | None:
    """When any chunk of the job was last claimed, finished or re-sent (None if never)."""
    row = session.execute(
        select(func.max(Chunk.started_at), func.max(Chunk.finished_at), func.max(Chunk.queued_at)).where(
            Chunk.job_id == job_id
        )
    ).one()
    moments = [moment for moment in row if moment is not None]
    return max(moments) if moments else None


def unfinished_chunks(session: Session, job_id: uuid.UUID) -> Sequence[Chunk]:
    """The job's chunks that are not done, in index order."""
    return session.scalars(
        select(Chunk).where(Chunk.job_id == job_id, Chunk.status != ChunkStatus.done).order_by(Chunk.index)
    ).all()
