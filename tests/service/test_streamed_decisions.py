"""Deciding, the what-if, the report and the plot points stream a stored job in batches (bounded memory at a million
samples): on both deployments, what they answer is what the pure policies answer on the same table in memory."""

from __future__ import annotations

import itertools
import math
import random
import statistics
import threading
import uuid
from collections import Counter
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from core.confidence import hedging_rate, strips_hedging
from service.db import session_scope
from service.jobs import decisions, points, report, sweep
from service.jobs.schemas import WhatIfIn
from service.models import Candidate, Decision, Job, JobStatus, Sample, Student
from service.policies import CandidateScore, SampleScores, get_policy
from service.policies.frontier import FrontierBandParams, frontier_zones
from tests.services import Deployment

TEACHERS = ("near", "far", "terse")
HEDGED = "maybe the answer is perhaps four, wait, let me check it"
PLAIN = "the answer is four"
# Small batches, so that a 40-sample job spans many (and ifd_topk's ranks and the frontier's medians cross them).
BATCH = 7


@dataclass(frozen=True)
class StoredJob:
    """A job written straight into the database, and the same scores as a hand-built table."""

    job_id: uuid.UUID
    table: list[SampleScores]


def _score(rng: random.Random, low: float, high: float) -> float:
    roll = rng.random()
    if roll < 0.03:
        return math.inf
    if roll < 0.2:  # ties, and values on the cuts
        return rng.choice([0.5, 1.0, low, high])
    return rng.uniform(low, high)


def _candidates(rng: random.Random, index: int) -> list[dict[str, Any]]:
    instruction = f"question {index}"
    rows: list[dict[str, Any]] = []
    for position, teacher in enumerate((None, *rng.sample(TEACHERS, rng.randint(0, 3)))):
        scored = rng.random() > 0.08
        nll = _score(rng, 0.2, 3.0) if scored else None
        rows.append(
            {
                "position": position,
                "name": teacher or "original",
                "teacher": teacher,
                "instruction": instruction if teacher is None or rng.random() > 0.3 else f"{instruction}, reworded",
                "input": "",
                "response": rng.choice([HEDGED, PLAIN, f"{PLAIN} {index}"]),
                "status": "scored" if scored else "unscored",
                "error": None if scored else "response does not fit",
                "ifd": _score(rng, 0.3, 1.3) if scored else None,
                "rifd": _score(rng, 0.4, 1.2) if scored else None,
                "ifd_loss_ratio": _score(rng, 0.3, 1.3) if scored else None,
                "nll_response_given_instruction": nll,
                "rank_mean": _score(rng, 1.0, 30.0) if scored else None,
                "rsr": _score(rng, 1.0, 20.0) if scored else None,
            }
        )
    return rows


def _as_table(samples: list[tuple[str, list[dict[str, Any]]]]) -> list[SampleScores]:
    """The scores as the policies' tests build them, hedging and rewrites computed here from the texts."""
    table = []
    for key, rows in samples:
        original = rows[0]
        original_hedging = hedging_rate(original["response"])
        candidates = []
        for row in rows:
            rate = hedging_rate(row["response"])
            refinement = row["teacher"] is not None
            candidates.append(
                CandidateScore(
                    name=row["name"],
                    teacher=row["teacher"],
                    status=row["status"],
                    error=row["error"],
                    ifd=row["ifd"],
                    rifd=row["rifd"],
                    ifd_loss_ratio=row["ifd_loss_ratio"],
                    nll_response_given_instruction=row["nll_response_given_instruction"],
                    rank_mean=row["rank_mean"],
                    rsr=row["rsr"],
                    rewrote_instruction=refinement and row["instruction"] != original["instruction"],
                    hedging_rate=rate,
                    overconfident_style=refinement and strips_hedging(original_hedging, rate),
                )
            )
        table.append(SampleScores(key, tuple(candidates)))
    return table


def store_job(n_samples: int, seed: int) -> StoredJob:
    """A succeeded job of `n_samples` random scored samples, written directly (no upload, no scoring)."""
    rng = random.Random(seed)
    samples = [(f"s{index}", _candidates(rng, index)) for index in range(n_samples)]
    with session_scope() as session:
        student = Student(path=f"/students/{uuid.uuid4()}", fingerprint="0" * 64, model_type="gpt2", max_length=512)
        session.add(student)
        session.flush()
        job = Job(
            status=JobStatus.succeeded,
            student_id=student.id,
            policy="reflection",
            policy_params={},
            template="alpaca",
            dataset_name="streamed",
            dataset_format="jsonl",
            chunk_size=n_samples,
            n_chunks=1,
            total_samples=n_samples,
            total_candidates=sum(len(rows) for _, rows in samples),
        )
        session.add(job)
        session.flush()
        for ordinal, (key, rows) in enumerate(samples):
            sample = Sample(job_id=job.id, ordinal=ordinal, external_id=key, layout="native", payload={"id": key})
            session.add(sample)
            session.flush()
            session.add_all(Candidate(job_id=job.id, sample_id=sample.id, **row) for row in rows)
        job_id = job.id
    return StoredJob(job_id, _as_table(samples))


@pytest.fixture
def stored(deployment: Deployment, monkeypatch: pytest.MonkeyPatch) -> StoredJob:
    """A 40-sample stored job read BATCH samples at a time."""
    monkeypatch.setattr(decisions, "BATCH_SAMPLES", BATCH)
    return store_job(40, seed=7)


def stored_verdicts(job_id: uuid.UUID, decision_set_id: int) -> list[tuple[str, str, str | None, dict[str, Any]]]:
    with session_scope() as session:
        rows = session.execute(
            select(Decision.decision, Decision.reason, Decision.chosen_candidate, Decision.detail)
            .join(Sample, Sample.id == Decision.sample_id)
            .where(Decision.decision_set_id == decision_set_id)
            .order_by(Sample.ordinal)
        ).all()
    return [(row.decision, row.reason, row.chosen_candidate, row.detail) for row in rows]


CASES: list[tuple[str, dict[str, Any]]] = [
    ("reflection", {}),
    ("reflection", {"variant": "paper", "teachers": ["near", "far"]}),
    ("reflection", {"ifd_max": 1.1, "reject_overconfident": True}),
    ("ifd_topk", {"k_percent": 30}),
    ("ifd_topk", {"k_percent": 50, "score": "ifd_loss_ratio", "reject_overconfident": True}),
    ("ifd_topk", {"k_percent": 60, "teachers": ["original", "terse"]}),
    ("frontier_band", {}),
    ("frontier_band", {"ifd_weight": 0.2, "low": -0.3, "reject_overconfident": True}),
    ("frontier_band", {"teachers": ["far"]}),
    ("best_candidate", {"ifd_max": 1.0}),
    ("best_candidate", {"teachers": ["near"], "reject_overconfident": True}),
    ("rsr", {}),
    ("rsr", {"reject_overconfident": True, "teachers": ["original", "near", "terse"]}),
]


def test_stored_decisions_are_the_policies_verdicts_on_the_same_table(stored: StoredJob) -> None:
    outcomes: set[str] = set()
    for name, params in CASES:
        with session_scope() as session:
            made = decisions.decide(session, stored.job_id, name, params)
            decision_set_id = made.id
            counts = (made.retained_count, made.rejected_count, made.unscored_count)
        expected = get_policy(name).decide_raw(stored.table, params)
        # JSON has no tuples: compare the evidence as it comes back from the database.
        assert stored_verdicts(stored.job_id, decision_set_id) == [
            (v.decision, v.reason, v.chosen_candidate, v.detail) for v in expected
        ], (name, params)
        tally = Counter(v.decision for v in expected)
        assert counts == (tally["retained"], tally["rejected"], tally["unscored"])
        outcomes.update(v.reason for v in expected)
    # The table is varied enough to reach most of the rules' branches.
    assert len(outcomes) >= 12, outcomes


def test_what_if_sweeps_many_values_in_groups_as_separate_decisions_would(
    stored: StoredJob, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sweep, "SWEEP_GROUP", 3)
    values = [5, 10, 20, 30, 45, 60, 80, 100]
    request = WhatIfIn.model_validate(
        {
            "policy": "ifd_topk",
            "params": {"teachers": ["near", "far", "original"]},
            "sweep": {"param": "k_percent", "values": values},
        }
    )
    with session_scope() as session:
        answered = sweep.what_if(session, stored.job_id, request)
    assert [p.value for p in answered.points] == values
    for point, value in zip(answered.points, values, strict=True):
        verdicts = get_policy("ifd_topk").decide_raw(stored.table, {**(request.params or {}), "k_percent": value})
        tally = Counter(v.decision for v in verdicts)
        assert (point.counts.retained, point.counts.rejected, point.counts.unscored) == (
            tally["retained"],
            tally["rejected"],
            tally["unscored"],
        )
        assert point.retained_fraction == tally["retained"] / len(stored.table)
        accepted: Counter[str] = Counter()
        for sample, verdict in zip(stored.table, verdicts, strict=True):
            chosen = next((c for c in sample.candidates if c.name == verdict.chosen_candidate), None)
            if verdict.decision == "retained" and chosen is not None:
                accepted[chosen.teacher or "original"] += 1
        assert {t: a.accepted for t, a in point.teachers.items()} == {t: accepted[t] for t in point.teachers}
    assert answered.points[0].counts.retained < answered.points[-1].counts.retained


def test_report_figures_are_those_of_the_whole_table(stored: StoredJob) -> None:
    with session_scope() as session:
        decision_set_id = decisions.decide(session, stored.job_id, "frontier_band", {}).id
    with session_scope() as session:
        built = report.build_report(session, stored.job_id, decision_set_id)
    verdicts = get_policy("frontier_band").decide_raw(stored.table, {})
    zones = frontier_zones(stored.table, FrontierBandParams())
    by_teacher = {t.teacher: t for t in built.teachers}
    for teacher in ("original", *TEACHERS):
        cells = [
            (sample, candidate, score_zone, verdict)
            for sample, row, verdict in zip(stored.table, zones, verdicts, strict=True)
            for candidate, score_zone in zip(sample.candidates, row, strict=True)
            if (candidate.teacher or "original") == teacher
        ]
        got = by_teacher[teacher]
        assert got.candidates == len(cells)
        assert got.accepted == sum(v.decision == "retained" and v.chosen_candidate == c.name for _, c, _, v in cells)
        ifds = [c.ifd for _, c, _, _ in cells if c.scored and c.ifd is not None]
        assert got.scored == len(ifds)
        assert got.ifd is not None
        assert got.ifd.p50 == statistics.median(ifds)
        assert got.ifd.mean == pytest.approx(statistics.fmean(ifds))
        frontier = [zone[0] for _, _, zone, _ in cells if zone[0] is not None]
        assert got.frontier_score is not None
        assert got.frontier_score.p50 == pytest.approx(statistics.median(frontier))
        zone_counts: Counter[str] = Counter(zone[1] for _, _, zone, _ in cells)
        assert got.zones == {zone: zone_counts[zone] / len(cells) for zone in got.zones}
        rates = [c.hedging_rate for _, c, _, _ in cells if c.hedging_rate is not None]
        assert got.hedging.mean_rate == pytest.approx(statistics.fmean(rates))
        if teacher != "original":
            assert got.hedging.overconfident_style == sum(c.overconfident_style for _, c, _, _ in cells)
    reference = built.frontier
    assert reference.loss_median == statistics.median(
        c.nll_response_given_instruction
        for sample in stored.table
        for c in sample.candidates
        if c.scored and c.nll_response_given_instruction is not None and math.isfinite(c.nll_response_given_instruction)
    )


def test_points_read_every_kth_sample_and_are_capped_without_max_points(
    stored: StoredJob, monkeypatch: pytest.MonkeyPatch
) -> None:
    with session_scope() as session:
        decisions.decide(session, stored.job_id, "reflection", {})
    with session_scope() as session:
        everything = points.candidate_points(session, stored.job_id)
    total = sum(len(sample.candidates) for sample in stored.table)
    assert (everything.total_points, everything.stride, len(everything.points)) == (total, 1, total)
    assert [(p.sample_id, p.candidate) for p in everything.points] == [
        (sample.sample_key, c.name) for sample in stored.table for c in sample.candidates
    ]
    with session_scope() as session:
        sampled = points.candidate_points(session, stored.job_id, max_points=total // 5)
    assert sampled.stride == math.ceil(total / (total // 5))
    kept = {sample.sample_key for sample in stored.table[:: sampled.stride]}
    assert sampled.points == [p for p in everything.points if p.sample_id in kept]
    # Without max_points the limit still holds: a big job sends every k-th sample, never everything.
    monkeypatch.setattr(points, "POINTS_LIMIT", total // 4)
    with session_scope() as session:
        capped = points.candidate_points(session, stored.job_id)
    assert capped.stride == math.ceil(total / (total // 4))
    assert len(capped.points) <= total // 4 + 4
    with session_scope() as session:
        asked = points.candidate_points(session, stored.job_id, max_points=total)
    assert asked.stride == capped.stride


def test_stored_scores_stream_the_hand_built_table_in_batches(stored: StoredJob) -> None:
    with session_scope() as session:
        source = decisions.StoredScores(session.connection(), stored.job_id)
        batches = list(source.batches(hedging=True))
        table, sample_pks = decisions.load_score_table(session, stored.job_id)
    assert [len(batch.samples) for batch in batches] == [BATCH] * 5 + [40 - 5 * BATCH]
    assert [batch.start for batch in batches] == list(range(0, 40, BATCH))
    assert [sample for batch in batches for sample in batch.samples] == table == stored.table
    assert [pk for batch in batches for pk in batch.row_ids] == sample_pks
    # Without hedging no response text is read: the candidates carry none of its figures.
    with session_scope() as session:
        plain = next(decisions.StoredScores(session.connection(), stored.job_id).batches(hedging=False))
    assert {(c.hedging_rate, c.overconfident_style) for s in plain.samples for c in s.candidates} == {(None, False)}
    assert [[c.rewrote_instruction for c in s.candidates] for s in plain.samples] == [
        [c.rewrote_instruction for c in s.candidates] for s in stored.table[:BATCH]
    ]


def test_prefetched_batches_hand_on_errors_and_stop_with_their_consumer() -> None:
    got: list[int] = []

    def failing() -> Generator[int, None, None]:
        yield 1
        yield 2
        raise ValueError("bad row")

    def consume() -> None:
        got.extend(decisions.prefetched(failing()))

    with pytest.raises(ValueError, match="bad row"):
        consume()
    assert got == [1, 2]

    closed = threading.Event()

    def endless() -> Generator[int, None, None]:
        try:
            yield from itertools.count()
        finally:
            closed.set()

    stream = decisions.prefetched(endless(), depth=2)
    assert [next(stream) for _ in range(3)] == [0, 1, 2]
    stream.close()
    assert closed.is_set()
    assert not [thread for thread in threading.enumerate() if thread.name == "frontier-score-reader"]
