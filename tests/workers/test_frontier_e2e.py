"""The frontier end to end on the example data and the tiny example student: the report ranks the teachers, and
re-deciding and what-if sweeps change decisions over the stored scores without one scoring call."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.db import session_scope
from service.models import Candidate, Chunk, Job
from service.settings import get_settings
from tests.services import EXAMPLE_DATA, TEST_CHUNK_SIZE, TEST_QUEUE, Deployment
from workers import curation
from workers.scoring import Scorer

pytestmark = pytest.mark.slow


def verdicts(client: TestClient, job_id: str, decision_set: int) -> list[tuple[Any, ...]]:
    page = client.get(f"/v1/jobs/{job_id}/samples", params={"limit": 500, "decision_set": decision_set}).json()
    return [(i["sample_id"], i["decision"], i["reason"], i["chosen_candidate"]) for i in page["items"]]


def kept_from(decided: list[tuple[Any, ...]], teacher: str) -> int:
    return sum(1 for _, decision, _, chosen in decided if decision == "retained" and chosen == teacher)


def stored_state(job_id: uuid.UUID) -> tuple[Any, ...]:
    """Every candidate's scores and scoring time, the chunks' state and the job's engine time."""
    with session_scope() as session:
        candidates = session.execute(
            select(Candidate.id, Candidate.status, Candidate.ifd, Candidate.rifd, Candidate.scored_at)
            .where(Candidate.job_id == job_id)
            .order_by(Candidate.id)
        ).all()
        chunks = session.execute(
            select(Chunk.index, Chunk.status, Chunk.attempts, Chunk.finished_at).where(Chunk.job_id == job_id)
        ).all()
        job = session.get(Job, job_id)
        assert job is not None
        return tuple(candidates), tuple(sorted(chunks)), job.scoring_seconds, job.scored_samples


def queued_messages(deployment: Deployment) -> int:
    if deployment.name == "postgres":
        return int(redis.Redis.from_url(deployment.env["FRONTIER_BROKER_URL"]).llen(TEST_QUEUE))
    return len(list((deployment.settings.broker_folder / "queue").iterdir()))


def test_report_ranks_teachers_and_redeciding_never_rescores(
    deployment: Deployment, client: TestClient, student_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Score for real and leave the session's Postgres score cache as found: later tests expect to score these texts.
    monkeypatch.setenv("FRONTIER_SCORE_CACHE", "false")
    get_settings.cache_clear()
    records = [json.loads(line) for line in EXAMPLE_DATA.read_text(encoding="utf-8").splitlines()]
    created = client.post(
        "/v1/jobs", files={"file": ("refinements.jsonl", EXAMPLE_DATA.read_bytes())}, data={"student": str(student_dir)}
    )
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]
    n_chunks = -(-len(records) // TEST_CHUNK_SIZE)
    for index in range(n_chunks):
        curation.score_chunk(uuid.UUID(job_id), index)
    assert curation.finalize(uuid.UUID(job_id)) is True
    done = client.get(f"/v1/jobs/{job_id}").json()
    assert (done["status"], done["progress"]["scored"], done["progress"]["cached"]) == ("succeeded", len(records), 0)

    # From here on any scoring is a failure: count every engine call and every attempt to get a scorer.
    calls: list[str] = []
    real_score = Scorer.score_with_stats

    def counted_score(self: Scorer, candidates: Sequence[Any], progress: Any = None) -> Any:
        calls.append("engine")
        return real_score(self, candidates, progress)

    def refused_scorer(*args: Any, **kwargs: Any) -> Scorer:
        calls.append("get_scorer")
        raise AssertionError("re-deciding must not load a scorer")

    monkeypatch.setattr(Scorer, "score_with_stats", counted_score)
    monkeypatch.setattr(curation, "get_scorer", refused_scorer)
    before, messages = stored_state(uuid.UUID(job_id)), queued_messages(deployment)

    # The teacher comparison: the teacher that writes in the student's own style sits closest to its frontier, the
    # one writing dense formal prose the tiny student never saw lies beyond it and ranks last.
    report = client.get(f"/v1/jobs/{job_id}/report").json()
    teachers = {t["teacher"]: t for t in report["teachers"]}
    assert report["ranking"][0] == "teacher-near"
    assert report["ranking"][-1] == "teacher-far"
    # Both score-only signals agree here; the ranking rests on the published one (RSR), frontier fit beside it.
    assert report["ranking_basis"] == "rsr"
    assert report["rankings"]["frontier"][0] == "teacher-near"
    assert report["rankings"]["rsr"] == report["ranking"]
    assert report["signals_agree"] is True
    assert report["recommendation"].startswith("teacher-near has the lowest dataset RSR")
    rsr = {name: t["rsr"] for name, t in teachers.items() if not t["is_original"]}
    assert rsr["teacher-near"] == min(rsr.values())
    assert teachers["teacher-far"]["band"]["beyond"] > 0.9
    assert teachers["teacher-far"]["zones"]["inside"] == 0.0
    assert teachers["teacher-near"]["band"]["inside"] > 0.9
    assert teachers["teacher-near"]["frontier_score"]["p50"] < teachers["teacher-far"]["frontier_score"]["p10"]
    assert teachers["teacher-far"]["beat_original_share"] < teachers["teacher-near"]["beat_original_share"]
    # teacher-terse strips every hedged original of its hedges: the confidence signal flags it most often.
    assert teachers["teacher-terse"]["hedging"]["overconfident_share"] > 0.7
    assert teachers["teacher-terse"]["hedging"]["mean_change_vs_original"] < 0
    assert teachers["original"]["hedging"]["mean_rate"] > 0

    own = client.get(f"/v1/jobs/{job_id}/decision-sets").json()["items"][0]
    band = client.post(f"/v1/jobs/{job_id}/decide", json={"policy": "frontier_band"}).json()
    assert sum(band["counts"].values()) == len(records)
    under_reflection, under_band = verdicts(client, job_id, own["id"]), verdicts(client, job_id, band["id"])
    changed = [a for a, b in zip(under_reflection, under_band, strict=True) if a != b]
    assert len(changed) > 20
    reasons = {reason for _, _, reason, _ in under_band}
    assert {"inside_frontier", "beyond_frontier", "not_feasible"} <= reasons
    assert not any(chosen == "teacher-far" for _, _, _, chosen in under_band)

    cautious = client.post(
        f"/v1/jobs/{job_id}/decide", json={"policy": "frontier_band", "params": {"reject_overconfident": True}}
    ).json()
    under_cautious = verdicts(client, job_id, cautious["id"])
    chosen_terse = sum(
        1 for _, decision, _, chosen in under_band if decision == "retained" and chosen == "teacher-terse"
    )
    chosen_terse_cautious = sum(
        1 for _, d, _, chosen in under_cautious if d == "retained" and chosen == "teacher-terse"
    )
    assert chosen_terse_cautious < chosen_terse
    assert cautious["counts"]["retained"] <= band["counts"]["retained"]
    best = client.post(f"/v1/jobs/{job_id}/decide", json={"policy": "best_candidate"}).json()
    assert best["counts"]["retained"] == len(records)

    sweep = client.post(
        f"/v1/jobs/{job_id}/what-if",
        json={"policy": "frontier_band", "sweep": {"param": "high", "values": [0.0, 0.8416, 2.0, 50.0]}},
    ).json()
    fractions = [point["retained_fraction"] for point in sweep["points"]]
    assert fractions == sorted(fractions)
    assert sweep["points"][1]["counts"] == band["counts"]
    # Far past its median the band finally admits the far teacher's few aligned, feasible refinements.
    assert sweep["points"][0]["teachers"]["teacher-far"]["accepted"] == 0
    assert sweep["points"][3]["teachers"]["teacher-far"]["accepted"] > 0

    banded = client.get(f"/v1/jobs/{job_id}/report", params={"decision_set": band["id"]}).json()
    assert banded["frontier"]["from_decision_set"] is True
    assert banded["ranking"] == report["ranking"]

    assert calls == []
    assert stored_state(uuid.UUID(job_id)) == before
    assert queued_messages(deployment) == messages
    if deployment.name == "postgres":
        redis.Redis.from_url(deployment.env["FRONTIER_BROKER_URL"]).delete(TEST_QUEUE)
