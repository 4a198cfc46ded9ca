"""`frontier jobs probe|probes` and the client's probe methods against a real `frontier serve` and its worker.

Each probe run fine-tunes the small random student on a tiny budget (4 steps, a curve point every 2, 4 held-out
problems, 8 new tokens): the numbers mean nothing, the plumbing is what is tested.
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from frontier.cli import main
from frontier.client import BadRequestError, Client, ConflictError, NotFoundError, TooLargeError
from service.jobs.schemas import JobOut
from tests.live_server import LiveServer
from tests.services import as_jsonl, example_records

# A job, a few probe runs and their fine-tunes: well over 30 s on a loaded two-core machine.
pytestmark = pytest.mark.slow

N_SAMPLES = 16
WAIT_S = 420
TINY = [
    "--steps",
    "4",
    "--eval-every",
    "2",
    "--held-out",
    "4",
    "--max-new-tokens",
    "8",
    "--batch-size",
    "4",
    # The first 4 steps of a 6-step schedule: a prefix of a longer fine-tune.
    "--schedule-steps",
    "6",
    "--baselines",
]
TINY_PARAMS: dict[str, Any] = {
    "steps": 4,
    "eval_every": 2,
    "held_out": 4,
    "max_new_tokens": 8,
    "batch_size": 4,
    "warmup_steps": 1,
}


@pytest.fixture(autouse=True)
def _no_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FRONTIER_API_KEY", "FRONTIER_SERVER"):
        monkeypatch.delenv(name, raising=False)


def jobs(server: LiveServer, *argv: str) -> int:
    """`frontier jobs ACTION ... --server URL`, in this process."""
    action, *rest = argv
    return main(["jobs", action, "--server", server.url, *rest])


@pytest.fixture(scope="module")
def finished_job(frontier_server: LiveServer, small_student: Path, tmp_path_factory: pytest.TempPathFactory) -> JobOut:
    """A succeeded job over a slice of the example data."""
    data = tmp_path_factory.mktemp("probe-job") / "slice.jsonl"
    data.write_bytes(as_jsonl(example_records(N_SAMPLES)))
    with Client(frontier_server.url) as client:
        job = client.submit(data, student=str(small_student))
        done = client.wait(job.id, poll_seconds=0.2, timeout=WAIT_S)
    assert done.status == "succeeded", done.error
    return done


@pytest.fixture(scope="module")
def probed(frontier_server: LiveServer, finished_job: JobOut) -> dict[str, Any]:
    """`frontier jobs probe JOB --wait` with the tiny budget: its exit code, stdout, stderr and the run."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = jobs(frontier_server, "probe", str(finished_job.id), *TINY, "--wait")
    with Client(frontier_server.url) as client:
        probe = client.get_probe(finished_job.id, out.getvalue().strip())
    return {"code": code, "out": out.getvalue(), "err": err.getvalue(), "probe": probe}


def test_probe_wait_prints_the_id_then_a_result_row_per_condition(probed: dict[str, Any]) -> None:
    probe, err = probed["probe"], probed["err"]
    assert probed["code"] == 0, err
    assert probed["out"].strip() == str(probe["id"])
    assert probe["status"] == "succeeded"
    conditions = probe["conditions"]
    assert {"original", "union"} <= set(conditions)
    assert [c for c in conditions if c.startswith("teacher:")], conditions
    assert (probe["budget"]["steps"], probe["budget"]["schedule_steps"]) == (4, 6)
    assert probe["eval"]["source"] == "held_out"
    # Progress lines while it ran (stderr is no terminal here), the last one complete.
    progress = [line for line in err.splitlines() if line.startswith(f"frontier jobs: probe {probe['id']} ")]
    assert progress, err
    assert progress[-1].endswith("steps (100%)"), progress[-1]
    table = err[err.index("CONDITION") :].splitlines()
    header = ["CONDITION", "EXACT", "MATCH", "LOSS", "SEEDS", "EXAMPLES", "STEPS", "TOKENS", "SECONDS"]
    assert table[0].split() == header
    rows = {line.split()[0]: line for line in table[1:] if line.strip()}
    assert list(rows) == conditions
    for result in probe["results"]:
        row = rows[result["condition"]]
        assert f"{100 * result['exact_match']['mean']:.1f}%" in row
        assert f"{result['loss']['mean']:.3f}" in row
        assert " 1/1 " in row
        # Every seed trained the budget's 4 steps.
        assert row.split()[-3] == "4"


def test_probes_lists_the_run_and_shows_it_as_a_table_or_json(
    frontier_server: LiveServer, finished_job: JobOut, probed: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    probe = probed["probe"]
    job_id = str(finished_job.id)
    assert jobs(frontier_server, "probes", job_id) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].split()[:3] == ["PROBE", "STATUS", "PROGRESS"]
    row = next(line for line in listing[1:] if line.split()[0] == str(probe["id"])).split()
    assert row[1] == "succeeded"

    assert jobs(frontier_server, "probes", job_id, "--json") == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert probe["id"] in [item["id"] for item in lines]

    assert jobs(frontier_server, "probes", job_id, str(probe["id"]), "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["id"] == probe["id"]
    assert shown["status"] == "succeeded"
    assert [r["condition"] for r in shown["results"]] == probe["conditions"]
    for result in shown["results"]:
        (seed,) = result["seeds"]
        assert [point["step"] for point in seed["curve"]] == [0, 2, 4]
        assert seed["final"]["step"] == 4
        assert seed["cost"]["steps"] == 4

    assert jobs(frontier_server, "probes", job_id, str(probe["id"])) == 0
    text = capsys.readouterr().out
    assert "status      succeeded" in text
    assert all(condition in text for condition in probe["conditions"])


def test_the_client_uploads_an_eval_set_and_follows_the_run(
    frontier_server: LiveServer, finished_job: JobOut, tmp_path: Path
) -> None:
    eval_set = tmp_path / "eval.jsonl"
    rows = [{"instruction": f"What is {a} plus {a}?", "answer": str(2 * a)} for a in (3, 7, 11)]
    eval_set.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    seen: list[str] = []
    with Client(frontier_server.url) as client:
        created = client.create_probe(finished_job.id, eval_set=eval_set, **TINY_PARAMS, answer_pattern=None)
        assert created["status"] in ("queued", "running")
        assert created["eval"] == {**created["eval"], "source": "uploaded", "n_items": 3}
        done = client.wait_probe(
            finished_job.id, created["id"], poll=0.2, timeout=WAIT_S, on_progress=lambda p: seen.append(p["status"])
        )
        assert done["status"] == "succeeded", done["error"]
        assert seen[-1] == "succeeded"
        assert done["progress"]["fraction"] == 1.0
        # Newest first.
        assert client.list_probes(finished_job.id)[0]["id"] == created["id"]
        with pytest.raises(ConflictError):
            client.cancel_probe(finished_job.id, created["id"])


def test_a_run_cancelled_at_once_ends_cancelled(
    frontier_server: LiveServer, finished_job: JobOut, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id = str(finished_job.id)
    with Client(frontier_server.url) as client:
        created = client.create_probe(job_id, **{**TINY_PARAMS, "steps": 400, "warmup_steps": 0})
        cancelled = client.cancel_probe(job_id, created["id"])
        assert cancelled["status"] == "cancelled"
        assert client.wait_probe(job_id, created["id"], poll=0.2, timeout=60)["status"] == "cancelled"
        again = client.create_probe(job_id, **{**TINY_PARAMS, "steps": 400, "warmup_steps": 0})
    # The CLI's cancel: the run as it ended, then a refusal once it has.
    assert jobs(frontier_server, "probes", job_id, str(again["id"]), "--cancel") == 0
    assert "status      cancelled" in capsys.readouterr().out
    assert jobs(frontier_server, "probes", job_id, str(again["id"]), "--cancel") == 2
    assert "(HTTP 409)" in capsys.readouterr().err
    assert jobs(frontier_server, "probes", job_id, "--cancel") == 2
    assert "--cancel needs a probe run id" in capsys.readouterr().err


def test_refusals_are_clear_errors_with_the_servers_words(
    frontier_server: LiveServer, finished_job: JobOut, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id = str(finished_job.id)
    missing = tmp_path / "nowhere" / "eval.jsonl"
    # A local file that is not there: named, exit 2, nothing sent.
    assert jobs(frontier_server, "probe", job_id, "--eval-set", str(missing)) == 2
    assert f"--eval-set {missing}: no such file" in capsys.readouterr().err
    with Client(frontier_server.url) as client, pytest.raises(FileNotFoundError, match=str(missing)):
        client.create_probe(job_id, eval_set=missing)

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "q", "answer": "1"}\n{"instruction": "q"}\n', encoding="utf-8")
    assert jobs(frontier_server, "probe", job_id, "--eval-set", str(bad)) == 2
    err = capsys.readouterr().err
    assert "line 2" in err
    assert "answer" in err
    with Client(frontier_server.url) as client:
        with pytest.raises(BadRequestError) as refused:
            client.create_probe(job_id, eval_set=bad)
        assert (refused.value.line, refused.value.field) == (2, "answer")
        with pytest.raises(TooLargeError, match="FRONTIER_PROBE_MAX_STEPS"):
            client.create_probe(job_id, steps=10**6)
        with pytest.raises(NotFoundError):
            client.get_probe(job_id, 999_999)

    assert jobs(frontier_server, "probe", job_id, "--steps", "4", "--answer-pattern", "(a)(b)") == 2
    assert "answer_pattern" in capsys.readouterr().err
    assert jobs(frontier_server, "probes", "00000000-0000-0000-0000-000000000001") == 2
    assert "not found" in capsys.readouterr().err
