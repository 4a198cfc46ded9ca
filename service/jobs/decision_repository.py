"""Every query over decision sets and their decisions, and the score columns policies decide from; flushes, never
commits.

A job's scores are read in bounded pieces: its samples by ordinal range (`score_rows`, one batch at a time) and the
frontier's numeric columns likewise (`difficulty_columns`); decisions are written batch by batch through one
`decision_writer` (a single COPY on Postgres). Nothing here returns a whole job's rows at once.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import Connection, Select, Table, and_, func, insert, select
from sqlalchemy.orm import Session, aliased

from service.models import Candidate, CandidateStatus, Decision, DecisionSet, Sample

# The decisions' columns as a batch writes them, in this order.
DECISION_COLUMNS = ("decision_set_id", "job_id", "sample_id", "decision", "reason", "chosen_candidate", "detail")


def sample_span(connection: Connection, job_id: uuid.UUID) -> tuple[int, int, int]:
    """The job's first and last sample ordinals and its sample count ((0, -1, 0) for none)."""
    low, high, count = connection.execute(
        select(func.min(Sample.ordinal), func.max(Sample.ordinal), func.count()).where(Sample.job_id == job_id)
    ).one()
    return (0, -1, 0) if not count else (int(low), int(high), int(count))


def score_rows(
    connection: Connection,
    job_id: uuid.UUID,
    low: int,
    end: int,
    *,
    texts: bool,
    stride: int = 1,
    first_ordinal: int = 0,
) -> Sequence[Sequence[Any]]:
    """The policy-relevant scores of the candidates of samples with ordinals in [low, end) (with `stride` k > 1 only
    those whose ordinal minus `first_ordinal` is a multiple of k), ordered by (sample ordinal, candidate position).

    `same_instruction` says whether the candidate keeps its sample's original instruction and input (compared in
    the database, so instruction texts never travel); `response` comes only with `texts` (for hedging).
    """
    # The original is the candidate at position 0 (the dataset's own record, stored first).
    original = aliased(Candidate)
    columns: list[Any] = [
        Sample.id.label("sample_pk"),
        Sample.external_id,
        Candidate.name,
        Candidate.teacher,
        Candidate.status,
        Candidate.error,
        Candidate.ifd,
        Candidate.rifd,
        Candidate.ifd_loss_ratio,
        Candidate.nll_response_given_instruction,
        Candidate.rank_mean,
        Candidate.rsr,
        and_(Candidate.instruction == original.instruction, Candidate.input == original.input).label(
            "same_instruction"
        ),
    ]
    if texts:
        columns.append(Candidate.response)
    query = (
        select(*columns)
        .join(Candidate, Candidate.sample_id == Sample.id)
        .join(original, and_(original.sample_id == Sample.id, original.position == 0))
        .where(Sample.job_id == job_id, Sample.ordinal >= low, Sample.ordinal < end)
        .order_by(Sample.ordinal, Candidate.position)
    )
    if stride > 1:
        query = query.where((Sample.ordinal - first_ordinal) % stride == 0)
    return _rows(connection, query)


def difficulty_columns(
    connection: Connection, job_id: uuid.UUID, first_ordinal: int, end_ordinal: int
) -> Sequence[Sequence[Any]]:
    """(ifd, rifd, L(A|Q)) of the scored candidates that have all three, of samples with ordinals in
    [first_ordinal, end_ordinal), in no particular order.

    By ordinal range like `score_rows` (the samples' index, then each sample's candidates), not one scan of the
    job's candidates: the planner would read the whole candidates table, every job's texts included.
    """
    query = (
        select(Candidate.ifd, Candidate.rifd, Candidate.nll_response_given_instruction)
        .join(Sample, Sample.id == Candidate.sample_id)
        .where(
            Sample.job_id == job_id,
            Sample.ordinal >= first_ordinal,
            Sample.ordinal < end_ordinal,
            Candidate.status == CandidateStatus.scored,
            Candidate.ifd.is_not(None),
            Candidate.rifd.is_not(None),
            Candidate.nll_response_given_instruction.is_not(None),
        )
    )
    return _rows(connection, query)


def add_decision_set(
    session: Session, job_id: uuid.UUID, *, policy: str, version: str, params: dict[str, Any], counts: dict[str, int]
) -> DecisionSet:
    """A new decision set row for a policy run."""
    decision_set = DecisionSet(
        job_id=job_id,
        policy=policy,
        policy_version=version,
        params=params,
        retained_count=counts.get("retained", 0),
        rejected_count=counts.get("rejected", 0),
        unscored_count=counts.get("unscored", 0),
    )
    session.add(decision_set)
    session.flush()
    return decision_set


@contextmanager
def score_reader(session: Session) -> Iterator[tuple[Connection, bool]]:
    """The connection to stream a job's committed scores on, and whether it is one of its own: a second one on
    Postgres (a thread can read ahead on it, and a decide's COPY keeps the session's busy), the session's own
    elsewhere."""
    connection = session.connection()
    if not _copies(connection):
        yield connection, False
        return
    with connection.engine.connect() as reader:
        yield reader, True


@contextmanager
def decision_writer(session: Session) -> Iterator[Callable[[Sequence[tuple[Any, ...]]], None]]:
    """A writer of a decision set's decisions, batch by batch, in the session's transaction; each row a tuple in
    DECISION_COLUMNS order (detail a dict).

    On Postgres one COPY takes every batch: the server checks and stores the rows (three foreign keys each, most of
    its cost) while the next batch is being decided. Elsewhere each batch is one executemany INSERT.
    """
    connection = session.connection()
    if _copies(connection):
        driver = connection.connection.driver_connection
        assert driver is not None
        statement = f"COPY decisions ({', '.join(DECISION_COLUMNS)}) FROM STDIN"
        with driver.cursor() as cursor, cursor.copy(statement) as copy:

            def copy_rows(rows: Sequence[tuple[Any, ...]]) -> None:
                for row in rows:
                    copy.write_row((*row[:-1], json.dumps(row[-1])))

            yield copy_rows
        return

    def insert_rows(rows: Sequence[tuple[Any, ...]]) -> None:
        if rows:
            connection.execute(
                insert(cast(Table, Decision.__table__)),
                [dict(zip(DECISION_COLUMNS, row, strict=True)) for row in rows],
            )

    yield insert_rows


def _rows(connection: Connection, query: Select[*tuple[Any, ...]]) -> Sequence[Sequence[Any]]:
    """Every row of `query` as plain tuples, for the hot reads: a million samples' candidates go through here.

    On Postgres the psycopg cursor is asked for binary results (floats arrive as floats, not text to parse);
    elsewhere a Core execution. Either way the rows stay the driver's tuples, not SQLAlchemy rows.
    """
    if not _copies(connection):
        # The driver's own tuples: the hot reads select no column a result processor would convert.
        result = connection.execute(query)
        try:
            return cast(list[tuple[Any, ...]], result.cursor.fetchall())
        finally:
            result.close()
    compiled = query.compile(dialect=connection.dialect)
    driver = connection.connection.driver_connection
    assert driver is not None
    with driver.cursor(binary=True) as cursor:
        cursor.execute(str(compiled), compiled.params)
        return cast(list[tuple[Any, ...]], cursor.fetchall())


def _copies(connection: Connection) -> bool:
    """True when decisions are written with COPY: Postgres through psycopg 3."""
    return connection.dialect.name == "postgresql" and connection.dialect.driver == "psycopg"


def latest_decision_set(session: Session, job_id: uuid.UUID) -> DecisionSet | None:
    """The job's most recent decision set (the one its own policy made, until re-decided)."""
    return session.scalars(
        select(DecisionSet).where(DecisionSet.job_id == job_id).order_by(DecisionSet.id.desc()).limit(1)
    ).one_or_none()


def get_decision_set(session: Session, job_id: uuid.UUID, decision_set_id: int) -> DecisionSet | None:
    """One of the job's decision sets (None when it has no such set)."""
    return session.scalars(
        select(DecisionSet).where(DecisionSet.job_id == job_id, DecisionSet.id == decision_set_id)
    ).one_or_none()


def list_decision_sets(session: Session, job_id: uuid.UUID) -> Sequence[DecisionSet]:
    """The job's decision sets, oldest (the job's own) first."""
    return session.scalars(select(DecisionSet).where(DecisionSet.job_id == job_id).order_by(DecisionSet.id)).all()


def decisions_in_range(
    connection: Connection,
    decision_set_id: int,
    job_id: uuid.UUID,
    low: int,
    end: int,
    *,
    stride: int = 1,
    first_ordinal: int = 0,
) -> dict[int, tuple[str, str, str | None]]:
    """A decision set's decisions on the samples `score_rows` reads for the same range and stride, keyed by sample
    row id: (decision, reason, chosen_candidate).

    Each looked up from its sample, in the (decision set, sample) unique index, whatever the planner believes: a set
    written moments ago has no statistics yet, and a join planned from the set's side reads all its rows (a
    million) for every batch.
    """

    def field(column: Any) -> Any:
        return (
            select(column)
            .where(Decision.decision_set_id == decision_set_id, Decision.sample_id == Sample.id)
            .scalar_subquery()
        )

    query = select(Sample.id, field(Decision.decision), field(Decision.reason), field(Decision.chosen_candidate)).where(
        Sample.job_id == job_id, Sample.ordinal >= low, Sample.ordinal < end
    )
    if stride > 1:
        query = query.where((Sample.ordinal - first_ordinal) % stride == 0)
    return {row[0]: (row[1], row[2], row[3]) for row in _rows(connection, query) if row[1] is not None}


def reason_counts(session: Session, decision_set_id: int) -> dict[str, dict[str, int]]:
    """Samples per reason code, grouped by decision, in one decision set."""
    rows = session.execute(
        select(Decision.decision, Decision.reason, func.count())
        .where(Decision.decision_set_id == decision_set_id)
        .group_by(Decision.decision, Decision.reason)
        .order_by(Decision.decision, Decision.reason)
    ).all()
    counts: dict[str, dict[str, int]] = {}
    for decision, reason, count in rows:
        counts.setdefault(decision, {})[reason] = int(count)
    return counts
