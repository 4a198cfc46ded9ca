"""The dashboard in headless Chromium against a real `frontier serve` (SQLite + local worker) and a finished job."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from service.settings import Settings
from tests.dashboard.conftest import shoot
from tests.live_server import LiveServer, live_server
from tests.services import ROOT, as_jsonl, example_records
from workers.local import local_worker

N_SAMPLES = 24


def create_job(server: LiveServer, student: Path, n: int, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """POST a job of the first `n` example records; the created job."""
    response = httpx.post(
        f"{server.url}/v1/jobs",
        files={"file": ("dashboard.jsonl", as_jsonl(example_records(n)), "application/x-ndjson")},
        data={"student": str(student)},
        headers=headers or {},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    job: dict[str, Any] = response.json()
    return job


def tail(server: LiveServer) -> str:
    """The last lines of the server's (and its worker's) log."""
    return "\n".join(server.log.read_text(errors="replace").splitlines()[-40:])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The embedded default (SQLite + filesystem queue), no API keys; its worker is started by `worker`."""
    with live_server(tmp_path_factory.mktemp("dashboard"), worker=False, FRONTIER_CHUNK_SIZE="8") as started:
        yield started


@pytest.fixture(scope="module")
def worker(server: LiveServer) -> Iterator[Callable[[], None]]:
    """Starts the server's local worker on demand (once), so a test can watch a job go from queued to done."""
    settings = Settings(data_dir=Path(server.env["FRONTIER_DATA_DIR"]), gpu_queue=server.env["FRONTIER_GPU_QUEUE"])
    started: list[object] = []
    with ExitStack() as running:

        def start() -> None:
            if not started:
                started.append(running.enter_context(local_worker(settings, server.env)))

        yield start


@pytest.fixture(scope="module")
def job(server: LiveServer, small_student: Path) -> dict[str, Any]:
    """A job over the example data slice, queued (nothing scores it until the worker starts)."""
    return create_job(server, small_student, N_SAMPLES)


@pytest.fixture(scope="module")
def finished(server: LiveServer, job: dict[str, Any], worker: Callable[[], None]) -> dict[str, Any]:
    """The job, scored by the local worker until it succeeded."""
    worker()
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        current: dict[str, Any] = httpx.get(f"{server.url}/v1/jobs/{job['id']}", timeout=10).json()
        if current["status"] in {"succeeded", "failed", "cancelled"}:
            assert current["status"] == "succeeded", f"{current['error']}\n{tail(server)}"
            return current
        time.sleep(0.5)
    pytest.fail(f"job did not finish within 240 s:\n{tail(server)}", pytrace=False)


def get(server: LiveServer, path: str, **params: Any) -> Any:
    """A /v1 read against the server."""
    response = httpx.get(f"{server.url}{path}", params=params, timeout=30)
    response.raise_for_status()
    return response.json()


def test_job_page_follows_a_running_job_live_until_its_plots_appear(
    page: Page, server: LiveServer, job: dict[str, Any], worker: Callable[[], None]
) -> None:
    page.goto(f"{server.url}/dashboard/#/jobs/{job['id']}")
    status = page.locator("#job-head .job-status")
    bar = page.locator("#job-head [role=progressbar]")
    expect(status).to_have_text("queued")
    expect(bar).to_have_attribute("aria-valuenow", "0")
    expect(page.locator("#analysis")).to_contain_text("Plots appear when the job has succeeded")
    shoot(page, "job-queued")

    worker()  # the page polls: no reload from here on
    expect(status).to_have_text("succeeded", timeout=240_000)
    expect(bar).to_have_attribute("aria-valuenow", str(N_SAMPLES))
    expect(page.locator("#scatter svg circle.point").first).to_be_visible()


def test_jobs_list_shows_the_job_and_links_to_its_page(
    page: Page, server: LiveServer, finished: dict[str, Any]
) -> None:
    job = finished
    page.goto(f"{server.url}/")  # the front page redirects to the dashboard
    row = page.locator(f"#job-{job['id']}")
    expect(row).to_be_visible()
    expect(row.locator(".badge")).to_have_text("succeeded")
    expect(row.locator("[role=progressbar]")).to_have_attribute("aria-valuenow", str(N_SAMPLES))
    expect(row).to_contain_text(f"{N_SAMPLES} / {N_SAMPLES} scored")
    shoot(page, "jobs-list")
    row.locator("a.job-link").click()
    expect(page).to_have_url(re.compile(f"#/jobs/{job['id']}$"))
    expect(page.locator("#job-head")).to_contain_text(job["id"])


def test_job_page_draws_every_scored_candidate_histograms_what_if_and_teachers(
    page: Page, server: LiveServer, finished: dict[str, Any]
) -> None:
    job = finished
    points = get(server, f"/v1/jobs/{job['id']}/points")["points"]
    report = get(server, f"/v1/jobs/{job['id']}/report")
    scored = [p for p in points if p["decision"] != "unscored"]
    assert scored

    page.goto(f"{server.url}/dashboard/#/jobs/{job['id']}")
    expect(page.locator("#job-head [role=progressbar]")).to_have_attribute("aria-valuenow", str(N_SAMPLES))
    counts = job["counts"]
    expect(page.locator("#job-counts")).to_contain_text(str(counts["retained"]))

    # The scatter: one dot per scored candidate, coloured by its decision, with the job's policy in the legend.
    dots = page.locator("#scatter svg circle.point")
    expect(dots).to_have_count(len(scored))
    retained = sum(p["decision"] == "retained" for p in scored)
    expect(page.locator("#scatter circle.point.retained")).to_have_count(retained)
    expect(page.locator("#scatter circle.point.rejected")).to_have_count(len(scored) - retained)
    expect(page.locator("#scatter-policy")).to_contain_text("reflection (code variant)")
    expect(page.locator("#scatter .threshold")).to_have_count(2)  # IFD = 1 and r-IFD = 1

    # Histograms: one panel per teacher (and the originals), each with bars.
    teachers = [t["teacher"] for t in report["teachers"]]
    figures = page.locator("#histograms figure.histogram")
    expect(figures).to_have_count(len(teachers))
    for index in range(len(teachers)):
        assert figures.nth(index).locator("rect.bar").count() > 0

    # What-if: the retained-fraction curve over the swept r-IFD threshold, one dot per value.
    curve = page.locator("#whatif-retained")
    expect(curve).to_have_attribute("d", re.compile(r"^M[\d.]+,[\d.]+( L[\d.]+,[\d.]+){4,}$"))
    expect(page.locator("#whatif-chart circle.curve-point")).to_have_count(13)

    # The teacher comparison lists every teacher from the report, in its order.
    expect(page.locator("#teacher-table tbody tr")).to_have_count(len(teachers))
    for index, name in enumerate(teachers):
        expect(page.locator("#teacher-table tbody tr").nth(index).locator("td").nth(1)).to_have_text(name)
    shoot(page, "job-page")

    # Another swept parameter redraws the curve.
    page.select_option("#whatif-param", "ifd_max")
    expect(page.locator("#whatif-chart .axis-title").first).to_contain_text("ifd_max")
    expect(page.locator("#whatif-chart circle.curve-point")).to_have_count(13)


def test_a_job_too_big_to_draw_whole_is_drawn_one_sample_in_k_and_says_so(
    page: Page, server: LiveServer, finished: dict[str, Any]
) -> None:
    # The dashboard asks for at most 10,000 points; this job has far fewer, so the request is rewritten to a
    # budget a third of its size: what a browser sees of a big job, with the real server choosing the samples.
    url = f"/v1/jobs/{finished['id']}/points"
    total = get(server, url)["total_points"]
    budget = total // 3
    expected = get(server, url, max_points=budget)
    assert expected["stride"] > 1
    page.route(
        re.compile(r".*/points\?max_points=10000$"),
        lambda route: route.continue_(url=route.request.url.replace("max_points=10000", f"max_points={budget}")),
    )
    page.goto(f"{server.url}/dashboard/#/jobs/{finished['id']}")
    drawn = [p for p in expected["points"] if p["decision"] != "unscored"]
    expect(page.locator("#scatter svg circle.point")).to_have_count(len(drawn))
    note = f"Drawn: 1 sample in every {expected['stride']}, {len(expected['points'])} of {total} candidates"
    expect(page.locator("#scatter-policy")).to_contain_text(note)
    expect(page.locator("#histograms + .caption .subsampled")).to_contain_text(note)


def test_the_teacher_comparison_shows_the_reports_warnings(
    page: Page, server: LiveServer, finished: dict[str, Any]
) -> None:
    # A re-decision with an r-IFD cut below every candidate keeps nothing: the panel must say so, in the report's
    # words. The job's own policy is re-run afterwards so the other tests see the decisions they expect.
    decide = f"{server.url}/v1/jobs/{finished['id']}/decide"
    made = httpx.post(decide, json={"policy": "frontier_band", "params": {"rifd_max": 0.01}}, timeout=30)
    assert made.status_code == 201, made.text
    try:
        warnings = get(server, f"/v1/jobs/{finished['id']}/report")["warnings"]
        assert len(warnings) == 2
        page.goto(f"{server.url}/dashboard/#/jobs/{finished['id']}")
        shown = page.locator("#report-warnings li")
        expect(shown).to_have_count(2)
        for index, warning in enumerate(warnings):
            expect(shown.nth(index)).to_have_text(warning["message"])
        shoot(page, "report-warnings", full_page=False)
    finally:
        httpx.post(decide, json={"policy": "reflection"}, timeout=30).raise_for_status()


def test_sample_browser_filters_and_shows_original_and_refinements_side_by_side(
    page: Page, server: LiveServer, finished: dict[str, Any]
) -> None:
    job = finished
    decision = "rejected" if job["counts"]["rejected"] else "retained"
    expected = get(server, f"/v1/jobs/{job['id']}/samples", decision=decision, limit=100)["items"]
    assert expected

    page.goto(f"{server.url}/dashboard/#/jobs/{job['id']}")
    page.locator("#browse-samples").click()
    expect(page.locator("#sample-table tbody tr.sample-row")).to_have_count(N_SAMPLES)
    page.select_option("#filter-decision", decision)
    rows = page.locator("#sample-table tbody tr.sample-row")
    expect(rows).to_have_count(len(expected))
    expect(page.locator("#sample-table tbody .badge")).to_have_text([decision] * len(expected))

    # A sample: its decision and reason, then the original and every refinement side by side with their scores.
    first = expected[0]
    rows.first.click()
    sample = get(server, f"/v1/jobs/{job['id']}/samples/{first['sample_id']}")
    expect(page.locator("#sample-title")).to_have_text(first["sample_id"])
    expect(page.locator("#sample-detail .sample-decision")).to_have_text(decision)
    expect(page.locator("#sample-reason")).to_have_text(sample["reason"])
    columns = page.locator("#candidates article.candidate")
    expect(columns).to_have_count(len(sample["candidates"]))
    for index, candidate in enumerate(sample["candidates"]):
        column = columns.nth(index)
        expect(column).to_have_attribute("data-candidate", candidate["name"])
        expect(column.locator("pre.text")).to_have_text(candidate["response"])
        expect(column.locator(".scores")).to_contain_text(f"{candidate['ifd']:.3f}")
        # The rank statistics of the same pass: RSR and the mean clipped rank.
        expect(column.locator(".scores")).to_contain_text(f"RSR{candidate['rsr']:.3f}")
        expect(column.locator(".scores")).to_contain_text(f"mean rank (clip {candidate['rank_clip']})")
    boxes = [columns.nth(i).bounding_box() for i in range(len(sample["candidates"]))]
    assert all(box is not None for box in boxes)
    assert len({round(box["y"]) for box in boxes if box}) == 1, "candidates are not side by side"
    shoot(page, "sample-browser")

    # Teacher and reason filters ask the API and show exactly what it returns.
    page.select_option("#filter-decision", "")
    page.select_option("#filter-teacher", "teacher-far")
    far = get(server, f"/v1/jobs/{job['id']}/samples", teacher="teacher-far", limit=100)["items"]
    expect(rows).to_have_count(len(far))
    reason = first["reason"]
    page.select_option("#filter-teacher", "")
    page.select_option("#filter-reason", reason)
    by_reason = get(server, f"/v1/jobs/{job['id']}/samples", reason=reason, limit=100)["items"]
    expect(rows).to_have_count(len(by_reason))


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The embedded SQLite database with API keys on, no worker (the job it shows stays queued)."""
    with live_server(tmp_path_factory.mktemp("dashboard-keys"), worker=False, FRONTIER_AUTH="keys") as started:
        yield started


def create_key(server: LiveServer, tenant: str) -> str:
    """`frontier keys create` against the server's database; the new key."""
    command = [sys.executable, "-m", "frontier.cli", "keys", "create", "--tenant", tenant]
    return subprocess.check_output(command, cwd=ROOT, env=server.env, text=True, timeout=120).strip()


def test_with_keys_the_dashboard_asks_for_a_key_then_shows_the_tenants_jobs(
    page: Page, keyed_server: LiveServer, small_student: Path
) -> None:
    key = create_key(keyed_server, "dashboard")
    job = create_job(keyed_server, small_student, 3, headers={"Authorization": f"Bearer {key}"})

    page.goto(f"{keyed_server.url}/dashboard/")
    banner = page.locator("#auth-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text(re.compile("enter your API key", re.IGNORECASE))
    expect(page.locator("#needs-key")).to_be_visible()
    shoot(page, "auth-key-prompt")

    page.fill("#key-input", "fck_00000000_wrong")
    page.click("#key-save")
    expect(banner).to_contain_text("refused")

    page.fill("#key-input", key)
    page.click("#key-save")
    expect(page.locator(f"#job-{job['id']}")).to_be_visible()
    expect(banner).to_be_hidden()
    expect(page.locator("#key-state")).to_contain_text("key set")
    page.locator("a.job-link").click()
    expect(page.locator("#job-head .job-status")).to_have_text("queued")
    expect(page.locator("#analysis")).to_contain_text("Plots appear when the job has succeeded")
    shoot(page, "auth-key-accepted")
