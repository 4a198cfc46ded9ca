"""`frontier jobs` and frontier.client against a real `frontier serve` (embedded SQLite + a local Celery worker)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from core.processes import free_port
from core.templates import TEMPLATES
from frontier.cli import main
from frontier.client import BadRequestError, Client, FrontierError
from frontier.progress import ProgressBar, size
from service.jobs.schemas import JobOut
from tests.live_server import LiveServer, live_server
from tests.services import ROOT, as_jsonl, example_records

N_SAMPLES = 12
WAIT_S = 300


@pytest.fixture(autouse=True)
def _no_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FRONTIER_API_KEY", "FRONTIER_SERVER"):
        monkeypatch.delenv(name, raising=False)


def write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_bytes(as_jsonl(records))
    return path


def jobs(server: LiveServer, *argv: str) -> int:
    """`frontier jobs ACTION ... --server URL`, in this process."""
    action, *rest = argv
    return main(["jobs", action, "--server", server.url, *rest])


@pytest.fixture(scope="module")
def finished_job(frontier_server: LiveServer, small_student: Path, tmp_path_factory: pytest.TempPathFactory) -> JobOut:
    """A job over a slice of the example data, submitted and waited for through the client."""
    data = write(tmp_path_factory.mktemp("job") / "slice.jsonl", example_records(N_SAMPLES))
    with Client(frontier_server.url) as client:
        job = client.submit(data, student=str(small_student))
        done = client.wait(job.id, poll_seconds=0.2, timeout=WAIT_S)
    assert done.status == "succeeded", done.error
    return done


def test_submit_wait_prints_the_id_then_a_summary(
    frontier_server: LiveServer, small_student: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write(tmp_path / "slice.jsonl", example_records(8, start=40))
    assert jobs(frontier_server, "submit", str(data), "--student", str(small_student), "--wait") == 0
    out, err = capsys.readouterr()
    job_id = out.strip()
    with Client(frontier_server.url) as client:
        job = client.job(job_id)
    assert job.status == "succeeded"
    assert job.progress.scored == job.progress.total == 8
    counts = job.counts
    assert counts.retained + counts.rejected + counts.unscored == 8
    # Progress lines while it ran (stderr is not a terminal here), then the one-paragraph summary.
    assert "8/8 samples" in err
    assert f"Job {job_id} succeeded" in err
    assert f"{counts.retained} retained, {counts.rejected} rejected, {counts.unscored} unscored of 8 samples" in err
    assert "decided by reflection v1" in err


def test_list_status_and_samples_show_what_the_job_holds(
    frontier_server: LiveServer, finished_job: JobOut, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id, counts = str(finished_job.id), finished_job.counts
    assert jobs(frontier_server, "list", "--json") == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert job_id in [item["id"] for item in listed]
    assert jobs(frontier_server, "list") == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["JOB", "STATUS", "SCORED"]
    row = next(line for line in table if line.startswith(job_id)).split()
    assert row[1:6] == ["succeeded", f"{N_SAMPLES}/{N_SAMPLES}", *map(str, (counts.retained, counts.rejected, 0))]

    assert jobs(frontier_server, "status", job_id) == 0
    status = capsys.readouterr().out
    assert "status     succeeded" in status
    assert f"{counts.retained} retained, {counts.rejected} rejected, {counts.unscored} unscored" in status

    records: list[dict[str, Any]] = example_records(N_SAMPLES)
    assert jobs(frontier_server, "samples", job_id, "--json") == 0
    samples = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [s["sample_id"] for s in samples] == [r["id"] for r in records]
    assert sum(s["decision"] == "retained" for s in samples) == counts.retained
    assert all(s["reason"] and s["candidates"] for s in samples)

    assert jobs(frontier_server, "samples", job_id, "--decision", "rejected") == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].split() == ["SAMPLE", "DECISION", "REASON", "CHOSEN", "IFD", "R-IFD", "CANDIDATES"]
    assert len(rows) - 1 == counts.rejected
    assert all(row.split()[1] == "rejected" for row in rows[1:])

    far = [r["id"] for r in records if any(x["teacher"] == "teacher-far" for x in r["refinements"])]
    assert jobs(frontier_server, "samples", job_id, "--teacher", "teacher-far", "--json") == 0
    assert [json.loads(line)["sample_id"] for line in capsys.readouterr().out.splitlines()] == far
    assert jobs(frontier_server, "samples", job_id, "--json", "--limit", "5") == 0
    assert len(capsys.readouterr().out.splitlines()) == 5

    # The client walks keyset pages: a page size smaller than the job gives the same samples.
    with Client(frontier_server.url) as client:
        walked = [s.sample_id for s in client.samples(job_id)]
        assert walked == [r["id"] for r in records]
        assert client.sample(job_id, records[0]["id"]).candidates[0].response == records[0]["response"]


def test_export_jsonl_parquet_and_bundle_hold_the_decided_samples(
    frontier_server: LiveServer, finished_job: JobOut, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id = str(finished_job.id)
    with Client(frontier_server.url) as client:
        retained = list(client.samples(job_id, decision="retained"))
        chosen = {
            s.sample_id: next(c for c in client.sample(job_id, s.sample_id).candidates if c.name == s.chosen_candidate)
            for s in retained
        }
    assert len(retained) == finished_job.counts.retained > 0

    out = tmp_path / "out" / "retained.jsonl"
    assert jobs(frontier_server, "export", job_id, "--out", str(out)) == 0
    printed = capsys.readouterr()
    assert printed.out.strip() == str(out)
    assert f"to {out}" in printed.err
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [line["id"] for line in lines] == [s.sample_id for s in retained]
    for line in lines:
        assert line["response"] == chosen[line["id"]].response
        assert line["instruction"] == chosen[line["id"]].instruction

    # Parquet from the suffix: the same rows and columns as the JSONL.
    table = tmp_path / "out" / "retained.parquet"
    assert jobs(frontier_server, "export", job_id, "--out", str(table)) == 0
    assert pq.read_table(table).to_pylist() == lines

    everything = tmp_path / "out" / "all.jsonl"
    assert jobs(frontier_server, "export", job_id, "--out", str(everything), "--decision", "all", "--scores") == 0
    rows = [json.loads(line) for line in everything.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == N_SAMPLES
    assert sum(row["curation"]["decision"] == "rejected" for row in rows) == finished_job.counts.rejected

    bundle = tmp_path / "out" / "bundle.zip"
    assert jobs(frontier_server, "export", job_id, "--out", str(bundle), "--bundle") == 0
    with zipfile.ZipFile(bundle) as archive:
        assert sorted(archive.namelist()) == ["README.md", "manifest.json", "retained.jsonl"]
        assert archive.read("retained.jsonl") == out.read_bytes()
        assert json.loads(archive.read("manifest.json"))["job_id"] == job_id
    # Every file was renamed into place: no temporary file is left beside them.
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "all.jsonl",
        "bundle.zip",
        "retained.jsonl",
        "retained.parquet",
    ]


def test_report_and_decide(
    frontier_server: LiveServer, finished_job: JobOut, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id = str(finished_job.id)
    assert jobs(frontier_server, "report", job_id) == 0
    report = capsys.readouterr().out
    assert report.startswith(f"# Teacher comparison: job {job_id}")
    for teacher in ("teacher-near", "teacher-far", "original"):
        assert f"| {teacher} |" in report
    assert jobs(frontier_server, "report", job_id, "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["job_id"] == job_id

    assert jobs(frontier_server, "decide", job_id, "--policy", "frontier_band", "--params", '{"high": 1.5}') == 0
    said = capsys.readouterr().out
    assert said.startswith("decision set ")
    assert "frontier_band v1" in said
    with Client(frontier_server.url) as client:
        sets = client.decision_sets(job_id)
        latest = sets[-1]
        assert (latest.latest, latest.policy.name, latest.policy.params["high"]) == (True, "frontier_band", 1.5)
        assert f"{latest.counts.retained} retained, {latest.counts.rejected} rejected" in said
        # Samples now read the new set; the own set is still there.
        decided = [s.decision for s in client.samples(job_id)]
        assert decided.count("retained") == latest.counts.retained
        assert (sets[0].own, sets[0].policy.name) == (True, "reflection")
        swept = client.what_if(job_id, "frontier_band", "high", [0.0, 5.0])
    assert swept.points[0].counts.retained <= swept.points[1].counts.retained
    # Back to the job's own policy, so the other tests see the decisions they expect.
    assert jobs(frontier_server, "decide", job_id, "--policy", "reflection") == 0
    capsys.readouterr()


def test_sample_shows_the_decision_every_candidates_scores_and_texts(
    frontier_server: LiveServer, finished_job: JobOut, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id = str(finished_job.id)
    with Client(frontier_server.url) as client:
        # A sample with a refinement, so the table has more than one row.
        listed = next(s for s in client.samples(job_id) if len(s.candidates) > 1)
        sample = client.sample(job_id, listed.sample_id)  # the listing has no texts; one sample has
    assert jobs(frontier_server, "sample", job_id, sample.sample_id) == 0
    out = capsys.readouterr().out
    head, table = out.splitlines()[0], out.splitlines()[1 : 2 + len(sample.candidates)]
    assert head.startswith(f"sample {sample.sample_id}: {sample.decision} ({sample.reason})")
    assert table[0].split()[:4] == ["CANDIDATE", "STATUS", "IFD", "R-IFD"]
    for row, candidate in zip(table[1:], sample.candidates, strict=True):
        cells = row.replace("* ", "").split()
        assert cells[0] == candidate.name
        assert candidate.ifd is not None
        assert candidate.rifd is not None
        assert (cells[2], cells[3]) == (f"{candidate.ifd:.3f}", f"{candidate.rifd:.3f}")
        assert row.startswith("* ") == (candidate.name == sample.chosen_candidate)
        assert f"--- {candidate.name}" in out
    original = sample.candidates[0]
    assert original.response is not None
    assert f"response: {original.response[:60]}" in out

    assert jobs(frontier_server, "sample", job_id, sample.sample_id, "--json") == 0
    assert json.loads(capsys.readouterr().out)["sample_id"] == sample.sample_id
    assert jobs(frontier_server, "sample", job_id, "no-such-sample") == 2
    assert "no sample 'no-such-sample'" in capsys.readouterr().err


def test_what_if_prints_one_row_per_value(
    frontier_server: LiveServer, finished_job: JobOut, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id = str(finished_job.id)
    argv = ["what-if", job_id, "--policy", "frontier_band", "--param", "high", "--values", "0,0.84,5"]
    assert jobs(frontier_server, *argv) == 0
    lines = capsys.readouterr().out.splitlines()
    with Client(frontier_server.url) as client:
        swept = client.what_if(job_id, "frontier_band", "high", [0, 0.84, 5])
    assert lines[1].split()[:5] == ["HIGH", "RETAINED", "REJECTED", "UNSCORED", "RETAINED%"]
    for line, point in zip(lines[2:], swept.points, strict=True):
        cells = line.split()
        assert cells[:5] == [
            json.dumps(point.value),
            str(point.counts.retained),
            str(point.counts.rejected),
            str(point.counts.unscored),
            f"{100 * point.retained_fraction:.1f}",
        ]
    assert jobs(frontier_server, *argv[:-1], "1", "--param", "no_such_param") == 2
    assert "no parameter 'no_such_param'" in capsys.readouterr().err
    assert (
        jobs(frontier_server, "what-if", job_id, "--policy", "frontier_band", "--param", "high", "--values", ",") == 2
    )
    assert "--values" in capsys.readouterr().err


def test_watch_follows_a_job_and_exits_3_when_it_was_cancelled(
    frontier_server: LiveServer, small_student: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Client(frontier_server.url) as client:
        running = client.submit(write(tmp_path / "a.jsonl", example_records(8, start=60)), student=str(small_student))
        # Many chunks, cancelled at once: the worker cannot have finished it.
        doomed = client.submit(write(tmp_path / "b.jsonl", example_records(80, start=100)), student=str(small_student))
        client.cancel(doomed.id)

    assert jobs(frontier_server, "watch", str(running.id)) == 0
    out, err = capsys.readouterr()
    assert f"job {str(running.id)[:8]}" in err
    assert "8/8 samples" in err
    assert out.startswith(f"Job {running.id} succeeded")

    assert jobs(frontier_server, "watch", str(doomed.id)) == 3
    out = capsys.readouterr().out
    assert out.startswith(f"Job {doomed.id} cancelled")
    assert "nothing was decided" in out


def test_refusals_are_one_line_with_the_servers_message(
    frontier_server: LiveServer, small_student: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = example_records(2)
    bad = write(tmp_path / "bad.jsonl", [good[0], {k: v for k, v in good[1].items() if k != "response"}])
    with Client(frontier_server.url) as client:
        before = len(list(client.jobs()))

    def refused(*argv: str) -> tuple[int, str]:
        code = jobs(frontier_server, *argv)
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        return code, err

    # The dataset's bad line and field, as the server's 422 names them; nothing was created.
    code, err = refused("submit", str(bad), "--student", str(small_student))
    assert code == 2
    assert err == "frontier jobs submit: error: line 2, field 'response': missing (HTTP 422)"
    code, err = refused("submit", str(write(tmp_path / "ok.jsonl", good)), "--student", str(tmp_path / "no-student"))
    assert code == 2
    assert "student checkpoint" in err
    assert err.endswith("does not exist (HTTP 422)")
    code, err = refused("submit", str(tmp_path / "missing.jsonl"), "--student", str(small_student))
    assert (code, err) == (2, f"frontier jobs submit: error: {tmp_path / 'missing.jsonl'}: no such file")
    code, err = refused("submit", str(bad), "--student", str(small_student), "--params", "{nope")
    assert code == 2
    assert "--params: not valid JSON" in err
    with Client(frontier_server.url) as client:
        assert len(list(client.jobs())) == before

    unknown = "00000000-0000-0000-0000-000000000001"
    assert refused("status", unknown) == (2, f"frontier jobs status: error: job {unknown} not found (HTTP 404)")
    code, err = refused("export", unknown, "--out", str(tmp_path / "x" / "nothing.jsonl"))
    assert code == 2
    assert "not found" in err
    assert list((tmp_path / "x").iterdir()) == []
    code, err = refused("decide", unknown, "--policy", "reflection")
    assert code == 2


def test_an_unreachable_server_is_exit_1_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["jobs", "list", "--server", url]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"frontier jobs list: error: cannot reach the Frontier server at {url}")
    assert "is `frontier serve` running?" in err
    assert len(err.strip().splitlines()) == 1
    with Client(url) as client, pytest.raises(FrontierError, match="cannot reach"):
        client.job("00000000-0000-0000-0000-000000000001")


def test_a_reader_that_has_gone_ends_the_command_quietly(frontier_server: LiveServer, finished_job: JobOut) -> None:
    # `frontier jobs samples JOB | head -1` once head has exited: the pipe's reading end is closed before the
    # command writes a byte. No traceback, and the exit code a shell gives a command stopped by SIGPIPE.
    reading, writing = os.pipe()
    os.close(reading)
    try:
        ran = subprocess.run(
            [
                sys.executable,
                "-m",
                "frontier.cli",
                "jobs",
                "samples",
                str(finished_job.id),
                "--server",
                frontier_server.url,
            ],
            cwd=ROOT,
            stdout=writing,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(writing)
    assert ran.returncode == 141, ran.stderr
    assert "Traceback" not in ran.stderr


def test_wait_rides_out_a_server_restart(small_student: Path, tmp_path: Path) -> None:
    # A job queued on a server without a worker; that server goes away; `wait` keeps polling the dead address
    # until a server with a worker comes back on it, picks the job up from the queue and finishes it.
    data_dir, port = tmp_path / "restarting", free_port()
    data = write(tmp_path / "slice.jsonl", example_records(4, start=60))
    with live_server(data_dir, worker=False, port=port) as first, Client(first.url) as client:
        job_id = client.submit(data, student=str(small_student)).id
    outcome: dict[str, Any] = {}

    def watch() -> None:
        with Client(first.url) as client:
            try:
                outcome["job"] = client.wait(job_id, poll_seconds=0.2, timeout=WAIT_S, outage_seconds=WAIT_S)
            except Exception as exc:  # handed to the test thread below
                outcome["error"] = exc

    watcher = threading.Thread(target=watch)
    watcher.start()
    time.sleep(1.0)
    assert watcher.is_alive(), outcome  # polling a server that is down, not giving up
    with live_server(data_dir, worker=True, port=port):
        watcher.join(timeout=WAIT_S)
    assert "error" not in outcome, outcome
    assert outcome["job"].status == "succeeded"
    assert outcome["job"].progress.scored == 4


def test_wait_gives_up_after_the_outage_allowance() -> None:
    with Client(f"http://127.0.0.1:{free_port()}") as client:
        started = time.monotonic()
        with pytest.raises(FrontierError, match="cannot reach"):
            client.wait("00000000-0000-0000-0000-000000000000", poll_seconds=0.1, outage_seconds=1.0)
    assert 1.0 <= time.monotonic() - started < 30


def test_frontier_jobs_never_imports_torch_or_the_database_layer() -> None:
    probe = (
        "import sys; from frontier.cli import main; code = main(['jobs', 'list', '--server', sys.argv[1]]); "
        "print(sorted(m for m in ('torch', 'transformers', 'sqlalchemy') if m in sys.modules), code)"
    )
    url = f"http://127.0.0.1:{free_port()}"
    ran = subprocess.run(
        [sys.executable, "-c", probe, url], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    assert ran.stdout.split() == ["[]", "1"]


def test_a_server_with_keys_answers_a_missing_or_wrong_key_with_401(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with live_server(tmp_path / "keyed", worker=False, FRONTIER_AUTH="keys") as server:
        created = subprocess.run(
            [sys.executable, "-m", "frontier.cli", "keys", "create", "--tenant", "team"],
            cwd=ROOT,
            env=server.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        key = created.stdout.strip()
        assert main(["jobs", "list", "--server", server.url]) == 1
        err = capsys.readouterr().err
        assert "missing API key" in err
        assert "FRONTIER_API_KEY" in err
        assert "(HTTP 401)" in err
        assert main(["jobs", "list", "--server", server.url, "--api-key", key[:-4] + "xxxx"]) == 1
        assert "invalid API key" in capsys.readouterr().err
        monkeypatch.setenv("FRONTIER_API_KEY", key)
        assert main(["jobs", "list", "--server", server.url, "--json"]) == 0
        assert capsys.readouterr().out == ""  # the tenant has no jobs yet


class Terminal(io.StringIO):
    """A stream that says it is a terminal, so the bar draws."""

    def isatty(self) -> bool:
        return True


def test_progress_bar_shows_count_rate_and_eta_or_bytes() -> None:
    stream = Terminal()
    bar = ProgressBar(10, stream, label="job 1234", unit="samples", done=2)
    bar.update(6)
    bar.update(10)
    bar.close()
    drawn = stream.getvalue().split("\r")
    assert drawn[1].startswith("job 1234 [" + "#" * 18 + "." * 12 + "] 6/10 samples ")
    assert "/s eta " in drawn[1]
    assert "[##############################] 10/10 samples" in drawn[2]
    assert stream.getvalue().endswith("\n")

    stream = Terminal()
    download = ProgressBar(None, stream, label="export", unit="", render=size)
    download.update(1_500_000)
    assert stream.getvalue().startswith("\rexport 1.5 MB ")
    assert stream.getvalue().endswith("B/s")
    silent = io.StringIO()
    ProgressBar(3, silent).update(1)
    assert silent.getvalue() == ""


def test_the_client_sends_a_known_template_and_the_server_refuses_an_unknown_one(
    frontier_server: LiveServer, small_student: Path, tmp_path: Path
) -> None:
    data = write(tmp_path / "slice.jsonl", example_records(2))
    with Client(frontier_server.url) as client:
        job = client.submit(data, student=str(small_student), template="alpaca")
        assert job.template == "alpaca"
        assert client.wait(job.id, poll_seconds=0.2, timeout=WAIT_S).status == "succeeded"
        unknown: Any = "vicuna"
        with pytest.raises(BadRequestError) as refused:
            client.submit(data, student=str(small_student), template=unknown)
    assert refused.value.status == 422
    assert refused.value.field == "template"
    assert all(name in refused.value.message for name in TEMPLATES)
