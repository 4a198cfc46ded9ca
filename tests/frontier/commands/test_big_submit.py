"""`frontier jobs submit` and Client.submit with big datasets: the file is streamed, never read whole; a dataset can
be named on the server instead (`--by-reference`), and the wait shows the `ingesting` state."""

from __future__ import annotations

import gzip
import json
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from frontier.cli import main
from frontier.client import Client, ForbiddenError
from tests.live_server import LiveServer, live_server
from tests.services import as_jsonl, example_records

WAIT_S = 300
BIG_BYTES = 64 * 1024 * 1024


@pytest.fixture(autouse=True)
def _no_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FRONTIER_API_KEY", "FRONTIER_SERVER"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one dataset root of `idle_server`."""
    return tmp_path_factory.mktemp("dataset-root")


@pytest.fixture(scope="module")
def idle_server(tmp_path_factory: pytest.TempPathFactory, roots: Path) -> Iterator[LiveServer]:
    """A server with no worker (an `ingesting` job stays so) and one dataset root."""
    with live_server(
        tmp_path_factory.mktemp("idle-server"), worker=False, FRONTIER_DATASET_ROOTS=json.dumps([str(roots)])
    ) as server:
        yield server


def test_submit_streams_the_file_instead_of_reading_it(
    idle_server: LiveServer, small_student: Path, tmp_path: Path
) -> None:
    data = tmp_path / "big.jsonl"
    block = as_jsonl(example_records(200))
    with data.open("wb") as handle:
        for _ in range(BIG_BYTES // len(block) + 1):
            handle.write(block)
    size = data.stat().st_size
    with Client(idle_server.url) as client:
        tracemalloc.start()
        try:
            job = client.submit(data, student=str(small_student))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    # Read whole, the file alone would be 64 MB of Python memory; streamed, a few 64 KiB blocks at a time.
    assert peak < 8 * 1024 * 1024, f"submitting a {size:,}-byte file peaked at {peak:,} bytes of Python memory"
    assert job.status == "ingesting"
    assert job.dataset["name"] == "big.jsonl"
    spooled = list((Path(idle_server.env["FRONTIER_DATA_DIR"]) / "uploads").iterdir())
    assert size in [path.stat().st_size for path in spooled]


def test_by_reference_outside_the_roots_is_refused_with_the_setting(
    idle_server: LiveServer, roots: Path, small_student: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "outside.jsonl"
    outside.write_bytes(as_jsonl(example_records(2)))
    with Client(idle_server.url) as client, pytest.raises(ForbiddenError) as refused:
        client.submit_reference(str(outside), student=str(small_student))
    assert refused.value.status == 403
    assert refused.value.field == "dataset.path"
    code = main(
        ["jobs", "submit", str(outside), "--by-reference", "--student", str(small_student), "--server", idle_server.url]
    )
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"frontier jobs submit: error: dataset {str(outside)!r} is outside the allowed dataset roots "
        "(FRONTIER_DATASET_ROOTS) (HTTP 403)"
    )


def test_watch_shows_the_ingesting_state_until_the_job_ends(
    idle_server: LiveServer, roots: Path, small_student: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (roots / "waiting.jsonl").write_bytes(as_jsonl(example_records(4)))
    argv = ["--student", str(small_student), "--server", idle_server.url]
    assert main(["jobs", "submit", str(roots / "waiting.jsonl"), "--by-reference", *argv]) == 0
    out, err = capsys.readouterr()
    job_id = out.strip()
    assert f"job {job_id} ingesting: dataset waiting.jsonl being read and stored by the server" in err
    assert main(["jobs", "status", job_id, "--server", idle_server.url]) == 0
    shown = capsys.readouterr().out
    assert "status     ingesting" in shown
    assert "ingest     0 records read and stored" in shown

    # No worker: it stays ingesting until it is cancelled, and `watch` says what it is waiting for meanwhile.
    codes: list[int] = []
    watcher = threading.Thread(
        target=lambda: codes.append(main(["jobs", "watch", job_id, "--server", idle_server.url]))
    )
    watcher.start()
    time.sleep(1.5)  # a poll or two while it is ingesting
    with Client(idle_server.url) as client:
        client.cancel(job_id)
    watcher.join(timeout=30)
    assert codes == [3]
    out, err = capsys.readouterr()
    assert f"job {job_id[:8]} ingesting 0 records stored" in err
    assert out.startswith(f"Job {job_id} cancelled")


def test_submit_by_reference_ingests_and_succeeds_with_a_real_worker(
    frontier_server: LiveServer, small_student: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The embedded server has no FRONTIER_DATASET_ROOTS: any local path is allowed there.
    data = tmp_path / "refs.jsonl.gz"
    data.write_bytes(gzip.compress(as_jsonl(example_records(6, start=150))))
    argv = ["--student", str(small_student), "--server", frontier_server.url, "--wait"]
    assert main(["jobs", "submit", str(data), "--by-reference", *argv]) == 0
    out, err = capsys.readouterr()
    job_id = out.strip()
    assert f"job {job_id} ingesting: dataset refs.jsonl.gz" in err
    assert f"Job {job_id} succeeded" in err
    with Client(frontier_server.url) as client:
        job = client.job(job_id)
    assert job.status == "succeeded"
    assert job.ingested_records == job.progress.total == job.progress.scored == 6
    assert data.exists()  # a referenced file is the user's: never deleted
    # A missing path is the server's 422 naming the field, one line, exit 2.
    assert main(["jobs", "submit", str(tmp_path / "nope.jsonl"), "--by-reference", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("frontier jobs submit: error: field 'dataset.path': dataset ")
    assert err.endswith("does not exist (HTTP 422)")
