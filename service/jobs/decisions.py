"""Deciding a job: its stored scores as a policy's `ScoreSource`, a policy run stored as a decision set, and the sets.

Bounded in memory at any job size: the scores are streamed in batches of BATCH_SAMPLES samples (an ordinal range
each), the frontier reference is built from two numeric columns, and each batch's verdicts are written before the
next is read. The response texts are read only when something needs their hedging (a policy asked to
`reject_overconfident`, the report), and the hedging rate is computed in the stream, never kept.
"""

from __future__ import annotations

import queue
import threading
import uuid
from collections import Counter
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import numpy as np
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from core.confidence import hedging_rate, strips_hedging
from service.jobs import decision_repository, repository
from service.jobs.guards import get_job, succeeded_job
from service.jobs.presenters import decision_set_out
from service.jobs.schemas import DecisionSetList, DecisionSetOut
from service.models import Decision, DecisionSet
from service.policies import CandidateScore, SampleScores, get_policy
from service.policies.base import ScoreBatch
from service.policies.frontier import DifficultyPoints, FrontierReference

T = TypeVar("T")

# Samples per batch: ~3 candidates each, a few MB of objects and one write per batch.
BATCH_SAMPLES = 5000


@dataclass(frozen=True, slots=True)
class StoredBatch(ScoreBatch):
    """A batch of a stored job, with a decision set's (decision, reason, chosen candidate) on its samples, keyed by
    their row ids, when the batches were asked for one."""

    decisions: dict[int, tuple[str, str, str | None]] | None = None


class StoredScores:
    """A stored job's scores as a policy's `ScoreSource`: streamed from the database in batches of samples, read on
    `connection` (decision_repository.score_reader's: with `prefetch`, one of its own that a thread reads ahead on)."""

    def __init__(
        self, connection: Connection, job_id: uuid.UUID, batch_samples: int | None = None, *, prefetch: bool = False
    ):
        self.connection = connection
        self.job_id = job_id
        self.batch_samples = batch_samples or BATCH_SAMPLES
        # Read the next batch in a thread while this one is decided: only on a connection nothing else uses.
        self.prefetch = prefetch
        self._span: tuple[int, int, int] | None = None
        self._reference: tuple[FrontierReference | None] | None = None

    def _sample_span(self) -> tuple[int, int, int]:
        if self._span is None:
            self._span = decision_repository.sample_span(self.connection, self.job_id)
        return self._span

    def sample_count(self) -> int:
        """How many samples the job has."""
        return self._sample_span()[2]

    def _ranges(self, stride: int = 1) -> Iterator[tuple[int, int]]:
        """The job's ordinals in [first, end) ranges holding batch_samples samples taken every `stride`-th."""
        first, last, _ = self._sample_span()
        for low in range(first, last + 1, self.batch_samples * stride):
            yield low, low + self.batch_samples * stride

    def batches(
        self, *, hedging: bool, stride: int = 1, decision_set_id: int | None = None
    ) -> Generator[StoredBatch, None, None]:
        """Every sample in ordinal order, BATCH_SAMPLES at a time; hedging figures only with `hedging`, and the
        decisions of `decision_set_id` on each batch's samples when given.

        With `stride` k only the samples whose ordinal is a multiple of k past the first (every k-th sample of the
        job, its ordinals being 0..n-1); `start` then counts the samples sent.
        """
        batches = self._read(hedging, stride, decision_set_id)
        return prefetched(batches) if self.prefetch else batches

    def _read(self, hedging: bool, stride: int, decision_set_id: int | None) -> Generator[StoredBatch, None, None]:
        start = 0
        for low, end in self._ranges(stride):
            batch = self._batch(start, low, end, hedging, stride, decision_set_id)
            if batch is not None:
                yield batch
                start += len(batch.samples)

    def _batch(
        self, start: int, low: int, end: int, hedging: bool, stride: int, decision_set_id: int | None
    ) -> StoredBatch | None:
        """One batch: its rows are dropped once grouped (with texts they weigh several times the batch itself)."""
        first = self._sample_span()[0]
        rows = decision_repository.score_rows(
            self.connection, self.job_id, low, end, texts=hedging, stride=stride, first_ordinal=first
        )
        samples, row_ids = _group(rows, hedging)
        if not samples:
            return None
        decisions = None
        if decision_set_id is not None:
            decisions = decision_repository.decisions_in_range(
                self.connection, decision_set_id, self.job_id, low, end, stride=stride, first_ordinal=first
            )
        return StoredBatch(start, samples, row_ids, decisions)

    def frontier_reference(self) -> FrontierReference | None:
        """The frontier reference from the job's L(A|Q) and IFD columns alone (computed once per source)."""
        if self._reference is None:
            points = DifficultyPoints()
            for low, end in self._ranges():
                rows = decision_repository.difficulty_columns(self.connection, self.job_id, low, end)
                if rows:
                    columns = np.array(rows, dtype=np.float64)
                    points.add_scored(columns[:, 0], columns[:, 1], columns[:, 2])
            self._reference = (points.reference(),)
        return self._reference[0]


def prefetched(items: Generator[T, None, None], depth: int = 1) -> Generator[T, None, None]:
    """`items`, produced by a thread up to `depth` ahead: the database's time reading the next batch overlaps this
    thread's deciding and writing the current one. Stops the thread when the consumer stops early."""
    slots: queue.Queue[tuple[bool, T | BaseException | None]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[bool, T | BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
            put((False, None))
        except BaseException as exc:  # handed to the consumer, which raises it
            put((False, exc))
        finally:
            items.close()

    thread = threading.Thread(target=produce, name="frontier-score-reader", daemon=True)
    thread.start()
    try:
        while True:
            more, value = slots.get()
            if not more:
                if isinstance(value, BaseException):
                    raise value
                return
            yield cast(T, value)
    finally:
        stop.set()
        thread.join()


def _group(rows: Sequence[Sequence[Any]], hedging: bool) -> tuple[list[SampleScores], list[int]]:
    """Candidate rows (ordinal, position order) as samples, the original first, and the samples' row ids."""
    samples: list[SampleScores] = []
    sample_pks: list[int] = []
    current: list[CandidateScore] = []
    current_pk: int | None = None
    current_key = ""
    original_hedging = 0.0
    # Positional unpacking (decision_repository.score_rows' column order): millions of rows go through here.
    for (
        sample_pk,
        key,
        name,
        teacher,
        status,
        error,
        ifd,
        rifd,
        ifd_loss_ratio,
        nll,
        rank_mean,
        rsr,
        same,
        *text,
    ) in rows:
        hedging_value = hedging_rate(text[0]) if hedging else None
        if sample_pk != current_pk:
            if current_pk is not None:
                samples.append(SampleScores(current_key, tuple(current)))
            sample_pks.append(sample_pk)
            current, current_pk, current_key = [], sample_pk, key
            original_hedging = hedging_value or 0.0
        refinement = teacher is not None
        current.append(
            CandidateScore(
                name,
                teacher,
                status,
                error,
                ifd,
                rifd,
                ifd_loss_ratio,
                nll,
                rank_mean,
                rsr,
                refinement and not same,
                hedging_value,
                refinement and hedging_value is not None and strips_hedging(original_hedging, hedging_value),
            )
        )
    if current_pk is not None:
        samples.append(SampleScores(current_key, tuple(current)))
    return samples, sample_pks


def load_score_table(session: Session, job_id: uuid.UUID) -> tuple[list[SampleScores], list[int]]:
    """The whole job's scores in memory (with hedging), and the samples' row ids: for small jobs only (the experiment
    bench, tests); deciding, the report, the what-if and the points stream `StoredScores` instead."""
    samples: list[SampleScores] = []
    sample_pks: list[int] = []
    for batch in StoredScores(session.connection(), job_id).batches(hedging=True):
        samples.extend(batch.samples)
        sample_pks.extend(batch.row_ids)
    return samples, sample_pks


def decide(session: Session, job_id: uuid.UUID, policy_name: str, params: dict[str, Any] | None) -> DecisionSet:
    """Run a policy over the job's stored scores (no rescoring) and store the verdicts as a new decision set, batch
    by batch. It reads the job's committed scores (on Postgres through a second connection)."""
    policy = get_policy(policy_name)
    validated = policy.parse_params(params)
    decision_set = decision_repository.add_decision_set(
        session,
        job_id,
        policy=policy.name,
        version=policy.version,
        params=validated.model_dump(mode="json"),
        counts={},
    )
    counts: Counter[str] = Counter()
    with (
        decision_repository.score_reader(session) as (reader, own_connection),
        decision_repository.decision_writer(session) as write,
    ):
        source = StoredScores(reader, job_id, prefetch=own_connection)
        for batch, verdicts in policy.decide_stream(source, validated):
            counts.update(verdict.decision for verdict in verdicts)
            write(
                [
                    (
                        decision_set.id,
                        job_id,
                        sample_pk,
                        verdict.decision,
                        verdict.reason,
                        verdict.chosen_candidate,
                        verdict.detail,
                    )
                    for sample_pk, verdict in zip(batch.row_ids, verdicts, strict=True)
                ]
            )
    decision_set.retained_count = counts["retained"]
    decision_set.rejected_count = counts["rejected"]
    decision_set.unscored_count = counts["unscored"]
    session.flush()
    if counts.total() >= repository.ANALYZE_MIN_ROWS:
        repository.analyze(session, Decision)
    return decision_set


def redecide(session: Session, job_id: uuid.UUID, policy_name: str, params: dict[str, Any] | None) -> DecisionSetOut:
    """A new decision set for a succeeded job from its stored scores: no candidate is rescored."""
    get_policy(policy_name).parse_params(params)
    succeeded_job(session, job_id, "re-decided")
    decision_set = decide(session, job_id, policy_name, params)
    return decision_set_out(decision_set, own=False, latest=True)


def decision_set_view(session: Session, job_id: uuid.UUID, decision_set: DecisionSet) -> DecisionSetOut:
    """The public view of one of the job's decision sets, with whether it is the job's own and the latest."""
    ids = [other.id for other in decision_repository.list_decision_sets(session, job_id)]
    return decision_set_out(decision_set, own=ids[0] == decision_set.id, latest=ids[-1] == decision_set.id)


def list_decision_sets(session: Session, job_id: uuid.UUID) -> DecisionSetList:
    """Every decision set of the job, oldest (its own) first."""
    get_job(session, job_id)
    sets = decision_repository.list_decision_sets(session, job_id)
    return DecisionSetList(
        items=[
            decision_set_out(decision_set, own=index == 0, latest=index == len(sets) - 1)
            for index, decision_set in enumerate(sets)
        ]
    )
