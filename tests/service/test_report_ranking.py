"""What the report's teacher ranking rests on: dataset RSR when every teacher has rank statistics, frontier fit
for jobs scored before they existed, and each signal's own ranking beside it."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from service.db import session_scope
from service.models import Candidate
from tests.service.test_jobs_api import create, run_job
from tests.services import Deployment, example_records


def test_the_ranking_rests_on_rsr_and_falls_back_to_frontier_fit(
    deployment: Deployment, client: TestClient, small_student: Path
) -> None:
    job = create(client, small_student, example_records(12))
    run_job(job)
    report = client.get(f"/v1/jobs/{job['id']}/report").json()
    teachers = [t for t in report["teachers"] if not t["is_original"]]
    assert report["ranking_basis"] == "rsr"
    assert report["ranking"] == report["rankings"]["rsr"] == [t["teacher"] for t in teachers]
    assert [t["rsr"] for t in teachers] == sorted(t["rsr"] for t in teachers)
    assert sorted(report["rankings"]["frontier"]) == sorted(report["ranking"])
    assert report["signals_agree"] == (report["rankings"]["frontier"][0] == report["ranking"][0])
    markdown = client.get(f"/v1/jobs/{job['id']}/report", params={"format": "markdown"}).text
    assert "Ranked by dataset RSR, lower first" in markdown

    # A job scored before rank statistics existed (scoring version 1): the frontier ranking, as before.
    with session_scope() as session:
        session.execute(
            update(Candidate).where(Candidate.job_id == uuid.UUID(job["id"])).values(rank_mean=None, rsr=None)
        )
    old = client.get(f"/v1/jobs/{job['id']}/report").json()
    assert old["ranking_basis"] == "frontier"
    assert old["ranking"] == old["rankings"]["frontier"] == report["rankings"]["frontier"]
    assert "rsr" not in old["rankings"]
    assert old["signals_agree"] is True
    assert old["recommendation"].startswith(f"{old['ranking'][0]} sits closest to this student's frontier")


def _store_probe(job_id: uuid.UUID, exact_match: dict[str, list[float]]) -> int:
    """A succeeded probe run with the given exact match per teacher and seed, as workers would have stored it."""
    from core.probes import ProbeBudget, teacher_condition
    from service.models import ProbeRun, ProbeTask

    seeds = len(next(iter(exact_match.values())))
    budget = ProbeBudget(steps=8, eval_every=4, warmup_steps=1, seeds=seeds)
    with session_scope() as session:
        run = ProbeRun(
            job_id=job_id,
            status="succeeded",
            budget=budget.as_dict(),
            conditions=[teacher_condition(t) for t in exact_match],
            eval_source="held_out",
            eval_items=[{"instruction": "q", "input": "", "answer": "1", "response": "Answer: 1"}] * 40,
            held_out_sample_ids=[],
        )
        session.add(run)
        session.flush()
        for teacher, values in exact_match.items():
            for seed, value in enumerate(values):
                point = {"step": 8, "loss": 1.0, "exact_match": value}
                session.add(
                    ProbeTask(
                        probe_run_id=run.id,
                        condition=teacher_condition(teacher),
                        seed=seed,
                        status="done",
                        attempts=1,
                        n_examples=4,
                        progress_step=8,
                        curve=[point],
                        final=point,
                        cost={"steps": 8, "tokens": 100, "seconds": 1.0},
                    )
                )
        return run.id


def test_a_probe_run_decides_the_ranking_when_it_separates_the_teachers(
    deployment: Deployment, client: TestClient, small_student: Path
) -> None:
    """The probe's exact match ranks first (even against RSR); a tie at the top leaves the score-only ranking."""
    job = create(client, small_student, example_records(12))
    run_job(job)
    job_id = uuid.UUID(job["id"])
    before = client.get(f"/v1/jobs/{job['id']}/report").json()
    assert before["probe"] is None
    by_rsr = before["rankings"]["rsr"]
    # The teacher RSR ranks last trains best, with a margin larger than the seed spread.
    wanted = by_rsr[-1]
    scores = {t: [0.5, 0.55] if t == wanted else [0.1, 0.2] for t in by_rsr}
    probe_id = _store_probe(job_id, scores)
    report = client.get(f"/v1/jobs/{job['id']}/report").json()
    assert report["ranking_basis"] == "probe"
    assert report["ranking"][0] == wanted
    assert report["rankings"]["probe"] == report["ranking"]
    assert report["rankings"]["rsr"] == by_rsr
    assert report["signals_agree"] is False
    evidence = report["probe"]
    assert evidence["probe_id"] == probe_id
    assert evidence["conclusive"] is True
    assert evidence["margin"] > evidence["spread"] > 0
    assert evidence["margin_exceeds_spread"] is True
    # 40 problems x 2 seeds: 52.5% against 15% is well outside the sampling noise of the difference.
    assert 0 < evidence["noise"] < evidence["margin"]
    best = next(t for t in report["teachers"] if t["teacher"] == wanted)
    assert best["rank"] == 1
    assert best["probe"]["exact_match"] == 0.525
    assert best["probe"]["seeds"] == 2
    assert report["recommendation"].startswith(f"{wanted} trained this student best in probe run {probe_id}")
    assert f"would rank {by_rsr[0]} first" in report["recommendation"]
    # Training on the recommended teacher alone is one re-decide, with exactly these parameters.
    suggestion = report["suggested_decide"]
    assert suggestion["params"] == {"teachers": [wanted]}
    made = client.post(
        f"/v1/jobs/{job['id']}/decide", json={"policy": suggestion["policy"], "params": suggestion["params"]}
    )
    assert made.status_code == 201, made.text
    kept = client.get(f"/v1/jobs/{job['id']}/samples", params={"decision": "retained", "limit": 100}).json()["items"]
    assert kept
    assert {item["chosen_candidate"] for item in kept} <= {
        c["name"] for item in kept for c in item["candidates"] if c.get("teacher") == wanted
    }
    markdown = client.get(f"/v1/jobs/{job['id']}/report", params={"format": "markdown"}).text
    assert f"Ranked by exact match after probe run {probe_id}" in markdown
    assert "52% ± 4%" in markdown

    # A later run that ties at the top still ranks, flagged inconclusive: exact ties keep the score-only order.
    tie_id = _store_probe(job_id, {t: [0.0] for t in by_rsr})
    tied = client.get(f"/v1/jobs/{job['id']}/report").json()
    assert tied["probe"]["probe_id"] == tie_id
    assert tied["probe"]["conclusive"] is False
    assert tied["probe"]["contenders"] == by_rsr
    assert tied["probe"]["margin_exceeds_spread"] is None
    assert tied["ranking_basis"] == "probe"
    assert tied["ranking"] == by_rsr
    assert tied["recommendation"].startswith(f"{by_rsr[0]} leads probe run {tie_id}, but not by a clear margin")
    assert "behind" not in tied["recommendation"]

    # A margin inside the noise of its eval problems (one problem of 40) is no verdict either, but the best estimate.
    close_id = _store_probe(job_id, {t: [0.1 if t == wanted else 0.075] for t in by_rsr})
    close = client.get(f"/v1/jobs/{job['id']}/report").json()
    assert close["probe"]["probe_id"] == close_id
    assert close["probe"]["margin"] == pytest.approx(0.025)
    assert close["probe"]["noise"] > close["probe"]["margin"]
    assert close["probe"]["conclusive"] is False
    assert close["ranking_basis"] == "probe"
    assert close["ranking"][0] == close["rankings"]["probe"][0] == wanted

    # A probe that separates some teachers but not its first two still ranks (its first is the best estimate), and
    # says which teachers it could not tell apart.
    rival = by_rsr[0]
    partial_id = _store_probe(job_id, {t: [0.5 if t == wanted else 0.45 if t == rival else 0.0] for t in by_rsr})
    partial = client.get(f"/v1/jobs/{job['id']}/report").json()
    evidence = partial["probe"]
    assert evidence["probe_id"] == partial_id
    assert evidence["conclusive"] is False
    assert evidence["contenders"] == [wanted, rival]
    assert partial["ranking_basis"] == "probe"
    assert partial["rankings"]["probe"][:2] == [wanted, rival]
    assert partial["ranking"] == partial["rankings"]["probe"]
    assert partial["suggested_decide"]["params"] == {"teachers": [wanted]}
    assert partial["recommendation"].startswith(f"{wanted} leads probe run {partial_id}, but not by a clear margin")
    assert "45%" in partial["recommendation"]
    behind = [t for t in by_rsr if t not in (wanted, rival)]
    assert f"could not separate {wanted} 50% and {rival} 45% exact match" in partial["recommendation"]
    assert f"the probe set {' and '.join(behind)} behind" in partial["recommendation"]
    markdown = client.get(f"/v1/jobs/{job['id']}/report", params={"format": "markdown"}).text
    assert f"Not separated by the probe: {wanted}, {rival}." in markdown
    # The follow-up it suggests: its own budget, twice as long, on the contenders alone.
    follow_up = evidence["follow_up"]
    assert follow_up["teachers"] == [wanted, rival]
    assert follow_up["steps"] == 16
    assert (follow_up["eval_every"], follow_up["warmup_steps"]) == (4, 1)
    command = f"frontier jobs probe {job['id']} --teachers {wanted} {rival} --steps 16"
    assert command in markdown
    assert "--teachers" in partial["recommendation"]

    # That follow-up, run: it ranks its teachers first (here the rival wins), the rest keep the earlier run's order.
    follow_id = _store_probe(job_id, {wanted: [0.6], rival: [0.9]})
    followed = client.get(f"/v1/jobs/{job['id']}/report").json()
    assert followed["ranking_basis"] == "probe"
    assert followed["ranking"] == [rival, wanted, *partial["rankings"]["probe"][2:]]
    assert followed["probe"]["probe_id"] == follow_id
    assert followed["probe"]["earlier_probe_id"] == partial_id
    assert followed["probe"]["conclusive"] is True
    assert followed["probe"]["follow_up"] is None
    by_teacher = {t["teacher"]: t["probe"] for t in followed["teachers"] if not t["is_original"]}
    assert by_teacher[rival]["exact_match"] == 0.9
    assert by_teacher[behind[0]]["exact_match"] == 0.0  # from the earlier run
    assert followed["suggested_decide"]["params"] == {"teachers": [rival]}

    # A later run of one teacher that leaves out a contender is no verdict on the recommendation: passed over.
    _store_probe(job_id, {behind[0]: [1.0]})
    assert client.get(f"/v1/jobs/{job['id']}/report").json()["ranking"] == followed["ranking"]

    # A first teacher that solved every eval problem cannot pull ahead with more steps: no follow-up, and the
    # recommendation says what would separate the contenders instead.
    ceiling_id = _store_probe(job_id, {t: [1.0 if t == wanted else 0.975 if t == rival else 0.0] for t in by_rsr})
    ceiling = client.get(f"/v1/jobs/{job['id']}/report").json()
    assert ceiling["probe"]["probe_id"] == ceiling_id
    assert ceiling["probe"]["conclusive"] is False
    assert ceiling["probe"]["contenders"] == [wanted, rival]
    assert ceiling["probe"]["at_ceiling"] is True
    assert ceiling["probe"]["follow_up"] is None
    assert f"{wanted} solved every eval problem" in ceiling["recommendation"]
    assert "--teachers" not in ceiling["recommendation"]
    markdown = client.get(f"/v1/jobs/{job['id']}/report", params={"format": "markdown"}).text
    assert "The first solved every eval problem: a longer probe cannot separate them." in markdown
    assert "To separate the contenders" not in markdown
