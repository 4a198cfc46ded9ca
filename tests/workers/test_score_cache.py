"""The score cache on both deployments: a second job scores only what is new; a changed checkpoint misses."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.db import session_scope
from service.models import ScoreCacheEntry
from tests.service.test_jobs_api import create, run_job
from tests.services import Deployment, example_records
from tests.workers.scoring.builders import build_random_student
from workers.scoring import Candidate, CandidateScores, Scorer


class EngineCalls:
    """Counts the candidates the real engine is asked to score (it still scores them)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.candidates = 0
        original = Scorer.score

        def counting(scorer: Scorer, candidates: Sequence[Candidate], progress: Any = None) -> list[CandidateScores]:
            self.candidates += len(candidates)
            return original(scorer, candidates, progress)

        monkeypatch.setattr(Scorer, "score", counting)


def scores_by_text(client: TestClient, job_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    items = client.get(f"/v1/jobs/{job_id}/samples", params={"limit": 500}).json()["items"]
    return {(item["sample_id"], c["name"]): c for item in items for c in item["candidates"]}


def finished(client: TestClient, job: dict[str, Any]) -> dict[str, Any]:
    run_job(job)
    body: dict[str, Any] = client.get(f"/v1/jobs/{job['id']}").json()
    assert body["status"] == "succeeded"
    return body


def cache_entries() -> int:
    with session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(ScoreCacheEntry)) or 0)


def fresh_student(tmp_path: Path, seed: int) -> Path:
    """A student no other test scores with (the Postgres database, and so the cache, lasts the whole session)."""
    return build_random_student(tmp_path / "student", max_length=512, seed=seed)


def test_second_job_scores_only_new_candidates(
    deployment: Deployment, client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_student = fresh_student(tmp_path, seed=11)
    calls = EngineCalls(monkeypatch)
    first_records = example_records(8)
    first = finished(client, create(client, small_student, first_records))
    n_first = first["progress"]["candidates"]
    assert first["progress"]["cached"] == 0
    assert calls.candidates == n_first
    assert cache_entries() >= n_first

    # Half old, half new samples (old ones under new ids: the cache keys on text, not on ids).
    overlap = [{**record, "id": f"again-{record['id']}"} for record in first_records[:4]]
    second_records = overlap + example_records(4, start=8)
    second = finished(client, create(client, small_student, second_records))
    reused = sum(1 + len(record["refinements"]) for record in overlap)
    assert second["progress"]["cached"] == reused
    assert calls.candidates == n_first + second["progress"]["candidates"] - reused

    # Cached scores are the stored ones, field for field; decisions come out as if scored afresh.
    before = scores_by_text(client, first["id"])
    after = scores_by_text(client, second["id"])
    for record in first_records[:4]:
        for name in ["original"] + [r["teacher"] for r in record["refinements"]]:
            assert after[(f"again-{record['id']}", name)] == before[(str(record["id"]), name)]


def test_changed_checkpoint_under_the_same_path_is_scored_again(
    deployment: Deployment, client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    student = fresh_student(tmp_path, seed=21)
    records = example_records(4)
    first = finished(client, create(client, student, records))

    build_random_student(student, max_length=512, seed=22)  # new weights, same directory
    calls = EngineCalls(monkeypatch)
    second = finished(client, create(client, student, records))
    assert second["student"]["path"] == first["student"]["path"]
    assert second["student"]["fingerprint"] != first["student"]["fingerprint"]
    assert second["progress"]["cached"] == 0
    assert calls.candidates == second["progress"]["candidates"]
    before, after = scores_by_text(client, first["id"]), scores_by_text(client, second["id"])
    assert all(after[key]["nll_response"] != before[key]["nll_response"] for key in before)


def test_cache_can_be_switched_off(
    deployment: Deployment, client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_student = fresh_student(tmp_path, seed=31)
    records = example_records(3)
    finished(client, create(client, small_student, records))
    monkeypatch.setenv("FRONTIER_SCORE_CACHE", "false")
    from service.settings import get_settings

    get_settings.cache_clear()
    calls = EngineCalls(monkeypatch)
    again = finished(client, create(client, small_student, records))
    assert again["progress"]["cached"] == 0
    assert calls.candidates == again["progress"]["candidates"]
