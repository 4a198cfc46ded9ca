"""The front door for big datasets, on both deployments: uploads stream to disk and are accepted at once as an
`ingesting` job past FRONTIER_SYNC_INGEST_BYTES, datasets by reference under FRONTIER_DATASET_ROOTS, and a client
that disconnects mid-upload leaves neither a job nor a file behind."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import json
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from core.dataset import DatasetError, LimitError
from core.dataset_roots import DatasetPathRefusedError, resolve_dataset_path
from service.db import session_scope
from service.jobs import uploads
from service.models import Sample
from service.settings import Settings, get_settings
from tests.live_server import LiveServer, live_server
from tests.service.test_jobs_api import row_counts
from tests.services import Deployment, as_jsonl, example_records
from workers.local import local_worker

JOB_TIMEOUT_S = 300
BOUNDARY = "frontier-test-boundary"
GOOD: dict[str, object] = {"id": "a", "instruction": "Add 2 and 3.", "response": "5"}


def multipart(fields: dict[str, str], file: tuple[str, bytes] | None, boundary: str = BOUNDARY) -> bytes:
    """A multipart/form-data body, built by hand (so a test can cut it anywhere)."""
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    if file is not None:
        name, data = file
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        parts.append(head.encode() + b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


def spooled(settings: Settings) -> list[Path]:
    """Files in the upload folder."""
    folder = settings.upload_folder
    return sorted(folder.iterdir()) if folder.exists() else []


def set_env(monkeypatch: pytest.MonkeyPatch, deployment: Deployment, **env: str) -> Settings:
    """Change settings for this test (this process and the workers it starts)."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
        deployment.env[key] = value
    get_settings.cache_clear()
    return get_settings()


def wait_all(client: TestClient, job_ids: list[str]) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    done: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        for job_id in job_ids:
            if job_id not in done:
                job = client.get(f"/v1/jobs/{job_id}").json()
                if job["status"] in {"succeeded", "failed", "cancelled"}:
                    done[job_id] = job
        if len(done) == len(job_ids):
            return done
        time.sleep(0.25)
    pytest.fail(f"jobs {set(job_ids) - set(done)} did not finish within {JOB_TIMEOUT_S}s")


def samples_of(job_id: str) -> int:
    with session_scope() as session:
        return int(session.scalar(select(func.count()).where(Sample.job_id == uuid.UUID(job_id))) or 0)


def parquet_bytes(records: list[dict[str, Any]]) -> bytes:
    flat = [{key: value for key, value in record.items() if key != "refinements"} for record in records]
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(flat), sink)
    return sink.getvalue()


# -- the spooler, without HTTP ---------------------------------------------------------------------------------


async def _chunks(body: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def spool(body: bytes, folder: Path, max_bytes: int = 10**9) -> uploads.SpooledUpload:
    content_type = f"multipart/form-data; boundary={BOUNDARY}"
    return asyncio.run(uploads.spool_multipart(_chunks(body), content_type, folder, max_bytes=max_bytes))


def test_the_spooler_writes_the_file_hashes_it_and_keeps_the_fields(tmp_path: Path) -> None:
    data = as_jsonl(example_records(30))
    got = spool(multipart({"student": "/s", "policy": "ifd_topk"}, ("d.jsonl", data)), tmp_path)
    assert got.path.parent == tmp_path
    assert got.path.read_bytes() == data
    assert (got.filename, got.size, got.sha256) == ("d.jsonl", len(data), hashlib.sha256(data).hexdigest())
    assert got.fields == {"student": "/s", "policy": "ifd_topk"}


@pytest.mark.parametrize(
    ("body", "error", "says"),
    [
        (multipart({"student": "/s"}, ("d.jsonl", b"x" * 5000))[:3000], DatasetError, "ended before"),
        (multipart({"student": "/s"}, None), DatasetError, "multipart field 'file'"),
        (multipart({"student": "/s"}, ("d.jsonl", b"x" * 5000)), LimitError, "FRONTIER_MAX_UPLOAD_BYTES"),
        (multipart({"student": "x" * 2_000_000}, ("d.jsonl", b"x")), DatasetError, "text fields"),
        (b"garbage without a boundary", DatasetError, "ended before|not a valid multipart body"),
    ],
    ids=["truncated", "no_file", "over_limit", "huge_field", "garbage"],
)
def test_a_refused_body_leaves_no_file(tmp_path: Path, body: bytes, error: type[Exception], says: str) -> None:
    with pytest.raises(error, match=says):
        spool(body, tmp_path, max_bytes=4096)
    assert list(tmp_path.iterdir()) == []


def test_only_decoded_size_decides_parsing_in_the_request(tmp_path: Path) -> None:
    limits = get_settings().limits
    plain = tmp_path / "plain.jsonl"
    plain.write_bytes(b"x" * 1000)
    assert uploads.parse_inline(plain, "jsonl", bound=1000, limits=limits)
    assert not uploads.parse_inline(plain, "jsonl", bound=999, limits=limits)
    # 20 KB on disk, 2 MB once inflated: parsed in the background, however small the file.
    packed = tmp_path / "packed.jsonl.gz"
    packed.write_bytes(gzip.compress(b" " * 2_000_000))
    assert packed.stat().st_size < 20_000
    assert not uploads.parse_inline(packed, "jsonl", bound=1_000_000, limits=limits)
    assert uploads.parse_inline(packed, "jsonl", bound=2_000_000, limits=limits)
    # Inflating past FRONTIER_MAX_DATASET_BYTES is refused at once, as the parser would.
    small_limit = type(limits)(max_dataset_bytes=100_000)
    with pytest.raises(LimitError, match="FRONTIER_MAX_DATASET_BYTES"):
        uploads.parse_inline(packed, "jsonl", bound=1_000_000, limits=small_limit)
    # Parquet by its footer's uncompressed size, not the (compressed) file's.
    table = tmp_path / "t.parquet"
    table.write_bytes(parquet_bytes(example_records(50)))
    metadata = pq.ParquetFile(table).metadata
    decoded = sum(metadata.row_group(index).total_byte_size for index in range(metadata.num_row_groups))
    assert uploads.parse_inline(table, "parquet", bound=max(decoded, table.stat().st_size), limits=limits)
    assert not uploads.parse_inline(table, "parquet", bound=decoded - 1, limits=limits)


def test_dataset_paths_resolve_inside_the_roots(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "in.jsonl").write_bytes(b"{}\n")
    (outside / "secret.jsonl").write_bytes(b"{}\n")
    (root / "escape.jsonl").symlink_to(outside / "secret.jsonl")
    (root / "inner").symlink_to(root)
    assert resolve_dataset_path(str(root / "in.jsonl"), [root]) == (root / "in.jsonl").resolve()
    assert resolve_dataset_path(str(root / "inner" / "in.jsonl"), [root]) == (root / "in.jsonl").resolve()
    assert resolve_dataset_path(str(outside / "secret.jsonl"), None) == (outside / "secret.jsonl").resolve()
    for refused in (outside / "secret.jsonl", root / "escape.jsonl", root / ".." / "outside" / "secret.jsonl"):
        with pytest.raises(DatasetPathRefusedError, match="FRONTIER_DATASET_ROOTS"):
            resolve_dataset_path(str(refused), [root])
    # Outside the roots, a missing file is refused exactly like a present one: nothing leaks about what exists.
    with pytest.raises(DatasetPathRefusedError):
        resolve_dataset_path(str(outside / "nothing.jsonl"), [root])
    for bad, says in (
        (root / "nothing.jsonl", "does not exist"),
        (root, "not a regular file"),
        ("in.jsonl", "absolute"),
    ):
        with pytest.raises(DatasetError, match=says) as caught:
            resolve_dataset_path(str(bad), [root])
        assert caught.value.field == "dataset.path"


# -- over HTTP, both deployments -------------------------------------------------------------------------------


def test_a_small_upload_is_stored_in_the_request_and_its_spool_file_removed(
    deployment: Deployment, client: TestClient, small_student: Path
) -> None:
    before = spooled(deployment.settings)
    response = client.post(
        "/v1/jobs",
        files={"file": ("d.jsonl", as_jsonl(example_records(5)))},
        data={"student": str(small_student)},
    )
    assert response.status_code == 202, response.text
    job = response.json()
    assert (job["status"], job["progress"]["total"]) == ("queued", 5)
    assert samples_of(job["id"]) == 5
    assert spooled(deployment.settings) == before
    # A bad small file is still a 422 naming its line and field, with nothing written and nothing spooled.
    counts = row_counts()
    bad = as_jsonl([GOOD, {"id": "b", "instruction": "x"}])
    response = client.post("/v1/jobs", files={"file": ("d.jsonl", bad)}, data={"student": str(small_student)})
    assert response.status_code == 422
    assert (response.json()["detail"]["line"], response.json()["detail"]["field"]) == (2, "response")
    assert row_counts() == counts
    assert spooled(deployment.settings) == before


def test_an_upload_over_the_limit_without_a_length_is_refused_as_it_arrives(
    deployment: Deployment, client: TestClient, small_student: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = set_env(monkeypatch, deployment, FRONTIER_MAX_UPLOAD_BYTES="10000")
    body = multipart({"student": str(small_student)}, ("d.jsonl", as_jsonl(example_records(40))))
    counts = row_counts()

    def chunked() -> Iterator[bytes]:  # no Content-Length: only the bytes that arrive count
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    response = client.post(
        "/v1/jobs", content=chunked(), headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    )
    assert response.status_code == 413, response.text
    assert response.json()["detail"]["limit"] == "FRONTIER_MAX_UPLOAD_BYTES"
    assert row_counts() == counts
    assert spooled(settings) == []


def test_a_json_body_is_held_to_the_in_request_size(
    deployment: Deployment, client: TestClient, small_student: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_env(monkeypatch, deployment, FRONTIER_SYNC_INGEST_BYTES="0")
    counts = row_counts()
    samples = [{**GOOD, "id": str(i), "response": "x" * 1000} for i in range(1200)]  # ~1.3 MB of JSON
    response = client.post("/v1/jobs", json={"student": str(small_student), "samples": samples})
    assert response.status_code == 413, response.text
    assert response.json()["detail"]["limit"] == "FRONTIER_SYNC_INGEST_BYTES"
    assert row_counts() == counts
    # Under the 1 MiB floor a JSON body always fits, whatever FRONTIER_SYNC_INGEST_BYTES says.
    small = client.post("/v1/jobs", json={"student": str(small_student), "samples": samples[:3]})
    assert small.status_code == 202, small.text
    assert small.json()["status"] == "queued"


def test_big_uploads_and_datasets_by_reference_ingest_with_a_real_worker(
    deployment: Deployment,
    client: TestClient,
    small_student: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    root = tmp_path / "datasets"
    root.mkdir()
    settings = set_env(
        monkeypatch,
        deployment,
        FRONTIER_SYNC_INGEST_BYTES="2000",
        FRONTIER_INGEST_BATCH_RECORDS="3",
        FRONTIER_DATASET_ROOTS=json.dumps([str(root)]),
    )
    records = example_records(10, start=100)
    data = as_jsonl(records)
    assert len(data) > 2000
    student = str(small_student)

    def upload(name: str, content: bytes, **headers: str) -> dict[str, Any]:
        response = client.post("/v1/jobs", files={"file": (name, content)}, data={"student": student}, headers=headers)
        assert response.status_code == 202, response.text
        body: dict[str, Any] = response.json()
        return body

    def by_reference(path: Path, **extra: Any) -> dict[str, Any]:
        response = client.post("/v1/jobs", json={"student": student, "dataset": {"path": str(path)}, **extra})
        assert response.status_code == 202, response.text
        body: dict[str, Any] = response.json()
        return body

    # Past FRONTIER_SYNC_INGEST_BYTES an upload is accepted at once, before any record is parsed.
    big = upload("big.jsonl", data, **{"Idempotency-Key": f"big-{deployment.name}-{uuid.uuid4()}"})
    assert big["status"] == "ingesting"
    assert samples_of(big["id"]) == 0
    assert len(spooled(settings)) == 1
    # The same Idempotency-Key and file: the same job, and the second copy is not kept.
    key = f"replay-{deployment.name}-{uuid.uuid4()}"
    first = upload("again.jsonl", data, **{"Idempotency-Key": key})
    assert upload("again.jsonl", data, **{"Idempotency-Key": key})["id"] == first["id"]
    assert len(spooled(settings)) == 2
    # A record that turns out bad mid-way (line 9 of 10) fails the job naming it, leaving no samples.
    bad_records = [*records[:8], {"id": "bad", "instruction": "x"}, records[9]]
    bad = upload("bad.jsonl", as_jsonl(bad_records))
    assert bad["status"] == "ingesting"

    # Datasets by reference: JSONL, gzip JSONL and Parquet under the root, never deleted.
    (root / "plain.jsonl").write_bytes(data)
    (root / "packed.jsonl.gz").write_bytes(gzip.compress(as_jsonl(example_records(6, start=120))))
    (root / "table.parquet").write_bytes(parquet_bytes(example_records(7, start=130)))
    plain = by_reference(root / "plain.jsonl", name="my dataset")
    packed = by_reference(root / "packed.jsonl.gz")
    table = by_reference(root / "table.parquet")
    assert {plain["status"], packed["status"], table["status"]} == {"ingesting"}
    assert plain["dataset"]["name"] == "my dataset"

    with local_worker(settings, env={**os.environ, **deployment.env}):
        done = wait_all(client, [big["id"], first["id"], bad["id"], plain["id"], packed["id"], table["id"]])
    for job, total in ((big, 10), (first, 10), (plain, 10), (packed, 6), (table, 7)):
        finished = done[job["id"]]
        assert finished["status"] == "succeeded", finished["error"]
        assert finished["progress"]["scored"] == finished["progress"]["total"] == total
        assert sum(finished["counts"].values()) == total
    failed = done[bad["id"]]
    assert failed["status"] == "failed"
    assert "line 9" in failed["error"], failed["error"]
    assert "'response'" in failed["error"], failed["error"]
    assert samples_of(bad["id"]) == 0
    # Spooled uploads are gone once ingested (or failed); referenced files stay where they were.
    assert spooled(settings) == []
    assert sorted(p.name for p in root.iterdir()) == ["packed.jsonl.gz", "plain.jsonl", "table.parquet"]


def test_a_dataset_path_outside_the_roots_is_refused_and_writes_nothing(
    deployment: Deployment,
    client: TestClient,
    small_student: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.jsonl").write_bytes(as_jsonl([GOOD]))
    (root / "link.jsonl").symlink_to(outside / "secret.jsonl")
    (root / "folder").mkdir()
    (root / "good.jsonl").write_bytes(as_jsonl([GOOD]))
    student = str(small_student)
    counts = row_counts()

    def post(path: str, **extra: Any) -> Any:
        return client.post("/v1/jobs", json={"student": student, "dataset": {"path": path}, **extra})

    # No FRONTIER_DATASET_ROOTS: any path on the embedded deployment, none on a server deployment.
    if deployment.name == "postgres":
        response = post(str(root / "good.jsonl"))
        assert response.status_code == 403, response.text
        assert "FRONTIER_DATASET_ROOTS" in response.json()["detail"]["message"]
        assert row_counts() == counts

    set_env(monkeypatch, deployment, FRONTIER_DATASET_ROOTS=json.dumps([str(root)]))
    for path in (outside / "secret.jsonl", root / "link.jsonl", f"{root}/../outside/secret.jsonl"):
        response = post(str(path))
        assert response.status_code == 403, response.text
        detail = response.json()["detail"]
        assert "outside the allowed dataset roots (FRONTIER_DATASET_ROOTS)" in detail["message"]
        assert detail["field"] == "dataset.path"
    for path, says in (
        (root / "missing.jsonl", "does not exist"),
        (root / "folder", "not a regular file"),
        ("good.jsonl", "absolute path"),
    ):
        response = post(str(path))
        assert response.status_code == 422, response.text
        assert says in response.json()["detail"]["message"]
        assert response.json()["detail"]["field"] == "dataset.path"
    both = post(str(root / "good.jsonl"), samples=[GOOD])
    assert both.status_code == 422
    assert "exactly one of `samples`" in both.json()["detail"]["message"]
    # A bad student is refused before any job exists, as for an upload.
    no_student = client.post(
        "/v1/jobs", json={"student": str(tmp_path / "nope"), "dataset": {"path": str(root / "good.jsonl")}}
    )
    assert no_student.status_code == 422
    assert no_student.json()["detail"]["field"] == "student"
    assert row_counts() == counts


# -- a live server: disconnects and memory ---------------------------------------------------------------------


def _live_server(request: pytest.FixtureRequest, name: str, data_dir: Path) -> AbstractContextManager[LiveServer]:
    """A live server without a worker on the named deployment."""
    if name == "embedded":
        return live_server(data_dir, worker=False)
    return live_server(
        data_dir,
        worker=False,
        FRONTIER_DATABASE_URL=request.getfixturevalue("postgres_url"),
        FRONTIER_BROKER_URL=request.getfixturevalue("redis_url"),
    )


def _jobs_named(server: LiveServer, name: str) -> list[str]:
    found, cursor = [], None
    while True:
        page = httpx.get(f"{server.url}/v1/jobs", params={"limit": 500, **({"cursor": cursor} if cursor else {})})
        body = page.json()
        found += [job["id"] for job in body["items"] if job["dataset"].get("name") == name]
        cursor = body["next_cursor"]
        if cursor is None:
            return found


@pytest.mark.parametrize("name", ["postgres", "embedded"])
def test_a_client_that_disconnects_mid_upload_leaves_no_job_and_no_file(
    name: str, request: pytest.FixtureRequest, tmp_path: Path, small_student: Path
) -> None:
    data_dir = tmp_path / "live"
    uploads_dir = data_dir / "uploads"
    filename = f"cut-{uuid.uuid4().hex}.jsonl"
    body = multipart({"student": str(small_student)}, (filename, as_jsonl(example_records(200)) * 20))
    with _live_server(request, name, data_dir) as server:
        port = int(server.url.rsplit(":", 1)[1])
        head = (
            f"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        with socket.create_connection(("127.0.0.1", port)) as connection:
            connection.sendall(head.encode() + body[: len(body) // 2])
            # The server is part-way through: the upload is on disk, growing (the file is created empty, then
            # written a block at a time, so wait for bytes, not only for the file). Generous waits: a loaded CI
            # machine.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not _spooled_bytes(uploads_dir):
                time.sleep(0.05)
            partial = list(uploads_dir.iterdir())
            assert len(partial) == 1
            assert partial[0].stat().st_size > 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(uploads_dir.iterdir()):
            time.sleep(0.05)
        assert list(uploads_dir.iterdir()) == []
        assert _jobs_named(server, filename) == []
        # The server is still fine: a whole upload goes through.
        whole = multipart({"student": str(small_student)}, (filename, as_jsonl(example_records(3))))
        complete = httpx.post(
            f"{server.url}/v1/jobs",
            content=whole,
            headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"},
            timeout=120,
        )
        assert complete.status_code == 202, complete.text
        assert _jobs_named(server, filename) == [complete.json()["id"]]
        assert list(uploads_dir.iterdir()) == []


def _spooled_bytes(folder: Path) -> int:
    """Bytes in the spooled upload files of a folder so far (0 while there is none)."""
    if not folder.exists():
        return 0
    total = 0
    for path in folder.iterdir():
        try:
            total += path.stat().st_size
        except FileNotFoundError:
            continue
    return total


def _server_pid(server: LiveServer) -> int:
    """The pid of the `frontier serve` process (uvicorn runs in it) listening on the server's port."""
    port = server.url.rsplit(":", 1)[1]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in argv and b"--port" in argv and port.encode() in argv:
            return int(entry.name)
    pytest.fail(f"no frontier serve process on port {port}")


def rss(pid: int) -> int:
    """A process's resident set size in bytes (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def test_the_apis_memory_does_not_grow_with_the_upload(tmp_path: Path, small_student: Path) -> None:
    """A 200 MB upload through a live API process: its RSS stays within a few MB of where it started."""
    data = tmp_path / "big.jsonl"
    line = as_jsonl(example_records(200))
    with data.open("wb") as handle:
        for _ in range(200 * 1024 * 1024 // len(line)):
            handle.write(line)
    with live_server(tmp_path / "live", worker=False) as server:
        pid = _server_pid(server)
        # Warm up (imports, the first request's allocations) before measuring.
        small = httpx.post(
            f"{server.url}/v1/jobs",
            files={"file": ("w.jsonl", line)},
            data={"student": str(small_student)},
            timeout=60,
        )
        assert small.status_code == 202, small.text
        before = rss(pid)
        with data.open("rb") as handle:
            response = httpx.post(
                f"{server.url}/v1/jobs",
                files={"file": ("big.jsonl", handle)},
                data={"student": str(small_student)},
                timeout=300,
            )
        after = rss(pid)
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "ingesting"
        spooled_files = list((tmp_path / "live" / "uploads").iterdir())
        assert [p.stat().st_size for p in spooled_files] == [data.stat().st_size]
    growth = after - before
    print(f"upload {data.stat().st_size / 1e6:.0f} MB: API RSS {before / 1e6:.0f} MB -> {after / 1e6:.0f} MB")
    assert growth < 40 * 1024 * 1024, f"the API grew by {growth / 1e6:.0f} MB during a 200 MB upload"
