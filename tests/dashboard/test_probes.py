"""The job page's Probes section in headless Chromium: runs, learning curves per condition, results, live polling.

Two kinds of test: one against a real probe run (a live `frontier serve` and its worker fine-tune the small
student on a tiny budget), and a few where the browser's /probes requests are answered with a ProbeOut made
here (docs/probes.md), to pin the drawing of several seeds, unknown condition kinds and a run that moves.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, Route, expect

from tests.dashboard.conftest import shoot
from tests.live_server import LiveServer, live_server
from tests.services import as_jsonl, example_records

N_SAMPLES = 16
WAIT_S = 420
# The tiny budget of the brief: enough for a three-point curve per condition.
TINY_BUDGET = {"steps": 4, "eval_every": 2, "held_out": 4, "max_new_tokens": 8, "batch_size": 4, "warmup_steps": 1}


def tail(server: LiveServer) -> str:
    """The last lines of the server's (and its worker's) log."""
    return "\n".join(server.log.read_text(errors="replace").splitlines()[-40:])


def wait_for(server: LiveServer, path: str, what: str) -> dict[str, Any]:
    """Poll a /v1 resource until its status is a finished one; fail with the server's log if it is not in time."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        current: dict[str, Any] = httpx.get(f"{server.url}{path}", timeout=10).json()
        if current["status"] in {"succeeded", "failed", "cancelled"}:
            assert current["status"] == "succeeded", f"{what}: {current.get('error')}\n{tail(server)}"
            return current
        time.sleep(0.5)
    pytest.fail(f"{what} did not finish within {WAIT_S} s:\n{tail(server)}", pytrace=False)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The embedded default with its local worker, no API keys."""
    with live_server(tmp_path_factory.mktemp("dashboard-probes"), FRONTIER_CHUNK_SIZE="8") as started:
        yield started


@pytest.fixture(scope="module")
def job(server: LiveServer, small_student: Path) -> dict[str, Any]:
    """A succeeded job over a slice of the example data."""
    response = httpx.post(
        f"{server.url}/v1/jobs",
        files={"file": ("probes.jsonl", as_jsonl(example_records(N_SAMPLES)), "application/x-ndjson")},
        data={"student": str(small_student)},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    return wait_for(server, f"/v1/jobs/{response.json()['id']}", "job")


# ---- a ProbeOut made here ------------------------------------------------------------------------------------


def curve(steps: int, every: int, start: float, gain: float, loss: float | None) -> list[dict[str, Any]]:
    """A learning curve: exact match rising from `start` by `gain` per step, loss falling from `loss`."""
    points = sorted({*range(0, steps + 1, every), steps})
    return [
        {
            "step": step,
            "exact_match": min(1.0, start + gain * step),
            "loss": None if loss is None else round(loss - 0.01 * step, 4),
        }
        for step in points
    ]


def made_probe(job_id: str, conditions: list[str], *, seeds: int, status: str = "succeeded") -> dict[str, Any]:
    """A ProbeOut shaped as docs/probes.md says, every seed done (or, while running, half of its curve)."""
    steps, every = 40, 10
    results = []
    for index, condition in enumerate(conditions):
        seed_rows: list[dict[str, Any]] = []
        finals: list[float] = []
        for seed in range(seeds):
            points = curve(steps, every, 0.05 * index, 0.004 + 0.001 * seed, 2.0 + 0.1 * index + 0.05 * seed)
            done = status == "succeeded"
            shown = points if done else points[:3]
            if done:
                finals.append(float(shown[-1]["exact_match"]))
            seed_rows.append(
                {
                    "seed": seed,
                    "status": "done" if done else "running",
                    "curve": shown,
                    "final": shown[-1] if done else None,
                    "cost": {"method": "full", "steps": steps, "tokens": 1000 * (index + 1), "seconds": 1.5}
                    if done
                    else None,
                    "error": None,
                }
            )
        mean = sum(finals) / len(finals) if finals else None
        results.append(
            {
                "condition": condition,
                "n_examples": 10 + index,
                "exact_match": {"mean": mean, "sd": 0.01 if mean is not None and seeds > 1 else None},
                "loss": {"mean": 1.5 if mean is not None else None, "sd": None},
                "seeds": seed_rows,
            }
        )
    total = len(conditions) * seeds
    done_tasks = total if status == "succeeded" else 0
    return {
        "id": 7,
        "job_id": job_id,
        "status": status,
        "budget": {
            "steps": steps,
            "batch_size": 4,
            "peak_lr": 0.001,
            "warmup_steps": 2,
            "eval_every": every,
            "seeds": seeds,
            "held_out": 8,
            "max_new_tokens": 16,
        },
        "answer_pattern": None,
        "eval": {"source": "held_out", "n_items": 8, "held_out_samples": 8, "note": "8 of the job's samples held out"},
        "conditions": conditions,
        "progress": {
            "tasks_total": total,
            "tasks_done": done_tasks,
            "steps_total": total * steps,
            "steps_done": total * steps if status == "succeeded" else total * 20,
            "fraction": 1.0 if status == "succeeded" else 0.5,
        },
        "results": results,
        "cost": {"steps": done_tasks * steps, "tokens": 12345, "seconds": 9.0},
        "error": None,
        "created_at": "2026-12-02T10:00:00Z",
        "started_at": "2026-12-02T10:00:01Z",
        "finished_at": "2026-12-02T10:01:00Z" if status == "succeeded" else None,
    }


def answer_probes(page: Page, job_id: str, current: Callable[[], dict[str, Any]]) -> None:
    """Answer the page's probe listing and probe reads with `current()` instead of the server."""

    def reply(route: Route) -> None:
        probe = current()
        body = {"items": [probe]} if route.request.url.rstrip("/").endswith("/probes") else probe
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    page.route(re.compile(rf".*/v1/jobs/{job_id}/probes(/\d+)?$"), reply)


# Teachers, the originals, the union, a decision set and a kind the dashboard has never heard of: it names none.
CONDITIONS = ["teacher:alpha", "teacher:beta", "original", "union", "decision_set:3", "curriculum:easy-first"]


def test_every_condition_gets_a_mean_line_and_a_seed_band_in_both_charts(
    page: Page, server: LiveServer, job: dict[str, Any], tmp_path: Path
) -> None:
    probe = made_probe(job["id"], CONDITIONS, seeds=3)
    answer_probes(page, job["id"], lambda: probe)
    page.goto(f"{server.url}/dashboard/#/jobs/{job['id']}")
    section = page.locator("#probes")
    expect(section.locator("#probe-7")).to_be_visible()
    expect(section.locator("#probe-7 .badge")).to_have_text("succeeded")
    for chart in ("#probe-em-chart", "#probe-loss-chart"):
        expect(page.locator(f"{chart} path.probe-curve")).to_have_count(len(CONDITIONS))
        expect(page.locator(f"{chart} path.probe-band")).to_have_count(len(CONDITIONS))
        drawn = page.locator(f"{chart} path.probe-curve").evaluate_all("els => els.map(e => e.dataset.condition)")
        assert drawn == CONDITIONS
    # Five curve points (steps 0, 10, ..., 40) per condition.
    expect(page.locator("#probe-em-chart circle.probe-point")).to_have_count(5 * len(CONDITIONS))
    expect(page.locator("#probe-legend > span")).to_have_text(CONDITIONS)
    rows = page.locator("#probe-results tbody tr")
    expect(rows).to_have_count(len(CONDITIONS))
    first = probe["results"][0]
    expect(rows.first).to_contain_text(f"{100 * first['exact_match']['mean']:.1f}% ± 1.0%")
    expect(rows.first).to_contain_text("3 / 3")
    expect(page.locator("#probe-eval")).to_contain_text("8 of the job's samples held out")
    expect(page.locator("#probe-cost")).to_contain_text("12,345 tokens")
    section.screenshot(path=str(tmp_path / "probes-made.png"))
    shoot(page, "job-probes-made-seeds")


def test_one_seed_draws_lines_without_bands_and_null_losses_are_skipped(
    page: Page, server: LiveServer, job: dict[str, Any]
) -> None:
    probe = made_probe(job["id"], CONDITIONS[:2], seeds=1)
    for point in probe["results"][1]["seeds"][0]["curve"]:
        point["loss"] = None
    probe["results"][1]["loss"] = {"mean": None, "sd": None}
    answer_probes(page, job["id"], lambda: probe)
    page.goto(f"{server.url}/dashboard/#/jobs/{job['id']}")
    expect(page.locator("#probe-em-chart path.probe-curve")).to_have_count(2)
    expect(page.locator("#probe-em-chart path.probe-band")).to_have_count(0)
    # The second condition has no loss measured: one line in the loss chart, and `–` in the table.
    expect(page.locator("#probe-loss-chart path.probe-curve")).to_have_count(1)
    expect(page.locator("#probe-results tbody tr").nth(1).locator("td").nth(3)).to_have_text("–")


def test_a_running_probe_is_followed_live_until_it_succeeds(
    page: Page, server: LiveServer, job: dict[str, Any]
) -> None:
    states = {"now": made_probe(job["id"], CONDITIONS[:3], seeds=2, status="running")}
    answer_probes(page, job["id"], lambda: states["now"])
    page.goto(f"{server.url}/dashboard/#/jobs/{job['id']}")
    badge = page.locator("#probe-7 .badge")
    expect(badge).to_have_text("running")
    expect(page.locator("#probe-7 [role=progressbar]")).to_have_attribute("aria-valuenow", "50")
    expect(page.locator("#probe-em-chart circle.probe-point")).to_have_count(3 * 3)
    states["now"] = made_probe(job["id"], CONDITIONS[:3], seeds=2)  # the page polls: no reload from here on
    expect(badge).to_have_text("succeeded")
    expect(page.locator("#probe-7 [role=progressbar]")).to_have_attribute("aria-valuenow", "100")
    expect(page.locator("#probe-em-chart circle.probe-point")).to_have_count(5 * 3)


# ---- a real probe run ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def probed(server: LiveServer, job: dict[str, Any]) -> dict[str, Any]:
    """A probe run on the job with the tiny budget, fine-tuned by the server's worker until it succeeded."""
    # With the baselines, so the dashboard draws every kind of condition a run can have.
    body = {**TINY_BUDGET, "baselines": True}
    response = httpx.post(f"{server.url}/v1/jobs/{job['id']}/probes", json=body, timeout=60)
    assert response.status_code == 202, response.text
    return wait_for(server, f"/v1/jobs/{job['id']}/probes/{response.json()['id']}", "probe run")


@pytest.mark.slow
def test_a_finished_probe_run_draws_a_curve_per_condition_and_its_results(
    page: Page, server: LiveServer, job: dict[str, Any], probed: dict[str, Any], tmp_path: Path
) -> None:
    conditions = probed["conditions"]
    assert {"original", "union"} <= set(conditions)
    assert len(conditions) >= 3
    page.goto(f"{server.url}/dashboard/#/jobs/{job['id']}?probe={probed['id']}")
    row = page.locator(f"#probe-{probed['id']}")
    expect(row).to_have_class(re.compile(r"\bselected\b"))
    expect(row.locator(".badge")).to_have_text("succeeded")
    expect(row.locator("[role=progressbar]")).to_have_attribute("aria-valuenow", "100")
    curves = page.locator("#probe-em-chart path.probe-curve")
    expect(curves).to_have_count(len(conditions))
    assert curves.evaluate_all("els => els.map(e => e.dataset.condition)") == conditions
    for index in range(len(conditions)):
        # A line through step 0, 2 and 4: the tiny budget's three curve points.
        expect(curves.nth(index)).to_have_attribute("d", re.compile(r"^M[\d.]+,[\d.]+( L[\d.]+,[\d.]+){2}$"))
    expect(page.locator("#probe-loss-chart path.probe-curve")).to_have_count(len(conditions))
    expect(page.locator("#probe-legend > span")).to_have_text(conditions)
    rows = page.locator("#probe-results tbody tr")
    expect(rows).to_have_count(len(conditions))
    for index, result in enumerate(probed["results"]):
        expect(rows.nth(index)).to_have_attribute("data-condition", result["condition"])
        expect(rows.nth(index).locator("td").nth(4)).to_have_text("1 / 1")
    shot = tmp_path / "probes.png"
    page.locator("#probes").screenshot(path=str(shot))
    assert shot.stat().st_size > 0
    shoot(page, "job-probes")
