"""Ingest benchmark: 100k to 1M samples through the front door, then decide and export them, in bounded memory.

For each deployment (Postgres + Redis; the embedded SQLite + filesystem broker) and each size, a fresh deployment
runs: the API (`frontier serve --no-worker`) and one ingest worker (a Celery worker on the ingest queue only, no
scoring worker). Then, per size:

1. upload: a JSONL dataset (3 candidates per sample, ~0.9 KB per sample) streamed to POST /v1/jobs as multipart;
   `upload s` = first byte to last byte sent, `202 after last byte` = last byte sent to the response.
2. ingest: the job's `ingesting` state is polled until it ends; `ingest/s` = samples / (202 -> ingest done).
3. set-up (labelled, not a product path): scoring 1M candidates is not possible on this CPU (bench/service.py
   measures the scoring path), so the bench writes plausible random scores into the candidate rows with one SQL
   UPDATE and marks the chunks done.
4. decide: the job's own policy (the default, `reflection`) by the worker's finalize function in a fresh worker
   process (its peak RSS is that process's ru_maxrss), then a re-decide with `frontier_band` over HTTP (inside the
   API process).
5. export: the retained rows streamed back as JSONL and as Parquet.

The API's and the ingest worker's resident memory are sampled every 50 ms (psutil, every process of each role);
the table prints each role's peak per stage. Optional checks (`--checks`): a ~2 GB dataset by reference completes
ingest; a bad line at record 900,000 of 1M fails the job naming it with no samples left behind.

    python bench/ingest.py                                  # 100k, 300k, 1M on both deployments
    python bench/ingest.py --sizes 20000 --deployments postgres --checks none
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EXAMPLE_DATA = ROOT / "examples" / "data" / "refinements.jsonl"
POSTGRES_ADMIN = os.environ.get("FRONTIER_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("FRONTIER_BENCH_REDIS", "redis://127.0.0.1:6379/13")
DATABASE = "frontier_ingest_bench"
MB = 1024 * 1024
FINISHED = {"succeeded", "failed", "cancelled"}


# --- data -------------------------------------------------------------------------------------------------------


def write_dataset(path: Path, n: int, *, pad: int = 150, bad_record: int | None = None) -> int:
    """Write `n` samples of JSONL (original + 2 teachers' refinements, unique texts) to `path`; returns its bytes.

    `pad` adds that many characters to every response (for a bigger file); `bad_record` (1-based) writes that record
    without its `instruction`, so ingest must fail naming it.
    """
    base = [json.loads(line) for line in EXAMPLE_DATA.read_text(encoding="utf-8").splitlines()]
    filler = " ".join(["the student learns what it can"] * (pad // 31 + 1))[:pad] if pad else ""
    with path.open("w", encoding="utf-8") as sink:
        for index in range(n):
            source = base[index % len(base)]
            tag = f" (case {index})"
            refinements = [
                {"teacher": teacher, "response": text + tag + filler}
                for teacher, text in (("alpha", source["response"] + " Step by step."), ("beta", source["response"]))
            ]
            record: dict[str, Any] = {
                "id": f"s{index:07d}",
                "instruction": source["instruction"] + tag,
                "input": source.get("input", ""),
                "response": source["response"] + tag + filler,
                "refinements": refinements,
            }
            if bad_record is not None and index + 1 == bad_record:
                del record["instruction"]
            sink.write(json.dumps(record, separators=(",", ":")) + "\n")
    return path.stat().st_size


# --- memory -----------------------------------------------------------------------------------------------------


@dataclass
class RssWatch:
    """Samples the resident memory of every process of each role (a pid and its children) every 50 ms."""

    roles: dict[str, int] = field(default_factory=dict)
    peaks: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        """Start sampling in a daemon thread."""
        threading.Thread(target=self._run, daemon=True).start()

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()

    def reset(self) -> None:
        """Forget the peaks so far (a new stage starts)."""
        with self._lock:
            self.peaks = {}

    def peak_mb(self, role: str) -> float:
        """The largest RSS of any one process of `role` since the last reset, in MB."""
        with self._lock:
            return self.peaks.get(role, 0) / MB

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            for role, pid in list(self.roles.items()):
                try:
                    parent = psutil.Process(pid)
                    processes = [parent, *parent.children(recursive=True)]
                except psutil.NoSuchProcess:
                    continue
                for process in processes:
                    try:
                        rss = process.memory_info().rss
                    except psutil.NoSuchProcess:
                        continue
                    with self._lock:
                        self.peaks[role] = max(self.peaks.get(role, 0), rss)


# --- deployments ------------------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fresh_postgres() -> str:
    """An empty, migrated database on the local Postgres; returns its SQLAlchemy URL."""
    import psycopg

    from service import migrate
    from service.db import dispose_engines

    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {DATABASE}")
    url = POSTGRES_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1) + f"/{DATABASE}"
    migrate.upgrade(url)
    dispose_engines()
    return url


def drop_postgres() -> None:
    """Drop the bench database."""
    import psycopg

    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


@dataclass
class Deployment:
    """A running API and ingest worker: their URL, environment and pids."""

    kind: str
    url: str
    env: dict[str, str]
    api_pid: int
    ingest_pid: int


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def deployment(kind: str, scratch: Path, data_root: Path) -> Iterator[Deployment]:
    """A fresh deployment of `kind` ("postgres" or "embedded") under `scratch`: API + one ingest worker."""
    data_dir = scratch / f"data-{kind}-{uuid.uuid4().hex[:6]}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("FRONTIER_")}
    env.update(
        FRONTIER_DATA_DIR=str(data_dir),
        FRONTIER_AUTH="none",
        FRONTIER_GPU_QUEUE=f"bench-ingest-{os.getpid()}",
        FRONTIER_DATASET_ROOTS=json.dumps([str(data_root)]),
        FRONTIER_MAX_UPLOAD_BYTES=str(8 * 1024 * MB),
    )
    if kind == "postgres":
        env["FRONTIER_DATABASE_URL"] = fresh_postgres()
        env["FRONTIER_BROKER_URL"] = REDIS
        import redis

        redis.Redis.from_url(REDIS).flushdb()
    else:
        from service import migrate
        from service.db import dispose_engines

        data_dir.mkdir(parents=True)
        migrate.upgrade(f"sqlite:///{data_dir / 'frontier.sqlite3'}")
        dispose_engines()
    from service.settings import Settings

    settings = Settings(data_dir=data_dir, gpu_queue=env["FRONTIER_GPU_QUEUE"])
    port = free_port()
    api = _start(
        [sys.executable, "-m", "frontier.cli", "serve", "--port", str(port), "--no-worker", "--no-migrate"],
        env,
        scratch / f"api-{kind}.log",
    )
    # Production's ingest worker: a prefork parent and one child, on the ingest queue only (no scoring worker).
    worker = _start(
        [sys.executable, "-m", "celery", "-A", "workers.celery_app", "--quiet", "worker", "-Q",
         settings.ingest_queue_name, "-P", "prefork", "-c", "1", "-l", "WARNING", "-n", f"bench-ingest-{port}@%h",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        env,
        scratch / f"ingest-worker-{kind}.log",
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if api.poll() is not None:
                raise RuntimeError(f"the API exited: {(scratch / f'api-{kind}.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the API did not become ready within 90 s")
            time.sleep(0.2)
        yield Deployment(kind, url, env, api.pid, worker.pid)
    finally:
        _stop(worker)
        _stop(api)
        if kind == "postgres":
            drop_postgres()


# --- stages -----------------------------------------------------------------------------------------------------


@dataclass
class Upload:
    """What the client saw of one upload."""

    job_id: str
    upload_s: float
    after_last_byte_s: float
    status: str


def upload(url: str, path: Path, student: str) -> Upload:
    """POST `path` as multipart, streamed from disk; times the body and the wait after its last byte."""
    boundary = uuid.uuid4().hex
    fields = {"student": student}
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    )
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
        "Content-Type: application/x-ndjson\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    marks: dict[str, float] = {}

    def body() -> Iterator[bytes]:
        marks["first"] = time.perf_counter()
        yield head
        with path.open("rb") as source:
            while block := source.read(1024 * 1024):
                yield block
        yield tail
        marks["last"] = time.perf_counter()

    headers = {
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(len(head) + path.stat().st_size + len(tail)),
    }
    response = httpx.post(f"{url}/v1/jobs", content=body(), headers=headers, timeout=3600)
    answered = time.perf_counter()
    if response.status_code != 202:
        raise RuntimeError(f"upload answered {response.status_code}: {response.text[:500]}")
    job = response.json()
    return Upload(job["id"], marks["last"] - marks["first"], answered - marks["last"], job["status"])


def wait_ingested(url: str, job_id: str, timeout_s: float = 3600) -> dict[str, Any]:
    """Poll the job until it leaves `ingesting`; returns the job."""
    deadline = time.monotonic() + timeout_s
    while True:
        job: dict[str, Any] = httpx.get(f"{url}/v1/jobs/{job_id}", timeout=60).json()
        if job["status"] != "ingesting":
            return job
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {job_id} still ingesting after {timeout_s} s: {job}")
        time.sleep(0.1)


def write_scores(env: dict[str, str], job_id: str) -> float:
    """SET-UP, not a product path: random plausible scores on every candidate, every chunk done; returns seconds."""
    from sqlalchemy import create_engine, text

    url = env.get("FRONTIER_DATABASE_URL") or f"sqlite:///{Path(env['FRONTIER_DATA_DIR']) / 'frontier.sqlite3'}"
    postgres = url.startswith("postgresql")
    # One uniform [0, 1) draw per use: Postgres random(); SQLite random() is a signed 64-bit integer.
    u = "random()" if postgres else "((random() & 2147483647) / 2147483648.0)"
    key = "CAST(:job AS uuid)" if postgres else ":job"
    job = job_id if postgres else uuid.UUID(job_id).hex
    started = time.perf_counter()
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                f"""UPDATE candidates SET status = 'scored', template = 'alpaca', scoring_version = '2',
                nll_instruction = 2 + 2 * {u}, nll_response_given_instruction = 1 + 2 * {u}, nll_response = 2 + 2 * {u},
                nll_instruction_given_response = 1.5 + 2 * {u}, ppl_response_given_instruction = exp(1 + 2 * {u}),
                ifd = 0.4 + 0.8 * {u}, ifd_loss_ratio = 0.5 + 0.6 * {u}, rifd = 0.5 + 0.7 * {u},
                rank_mean = 2 + 20 * {u}, rsr = 1 + 3 * {u}, rank_clip = 100,
                n_instruction_tokens = 20, n_response_tokens = 60, n_response_tokens_backward = 60,
                n_instruction_tokens_backward = 20, instruction_truncated = false
                WHERE job_id = {key}"""
            ),
            {"job": job},
        )
        connection.execute(text(f"UPDATE chunks SET status = 'done' WHERE job_id = {key}"), {"job": job})
        connection.execute(text(f"UPDATE jobs SET scored_samples = total_samples WHERE id = {key}"), {"job": job})
    engine.dispose()
    return time.perf_counter() - started


_FINALIZE = """
import resource, sys, time, uuid
from workers.curation import finalize
started = time.perf_counter()
done = finalize(uuid.UUID(sys.argv[1]))
print(done, time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def finalize_in_worker(env: dict[str, str], job_id: str) -> tuple[float, float]:
    """The job's own policy applied by the worker's finalize, in a fresh process: (seconds, peak RSS MB)."""
    out = subprocess.run(
        [sys.executable, "-c", _FINALIZE, job_id], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"finalize failed: {out.stderr[-3000:]}")
    done, seconds, maxrss_kb = out.stdout.split()[-3:]
    if done != "True":
        raise RuntimeError(f"finalize did not finish job {job_id}: {out.stdout[-500:]}")
    return float(seconds), int(maxrss_kb) / 1024


def redecide(url: str, job_id: str, policy: str) -> tuple[float, dict[str, Any]]:
    """POST a re-decide over HTTP (it runs inside the API process): (seconds, the decision set)."""
    started = time.perf_counter()
    response = httpx.post(f"{url}/v1/jobs/{job_id}/decide", json={"policy": policy}, timeout=3600)
    if response.status_code != 201:
        raise RuntimeError(f"decide answered {response.status_code}: {response.text[:500]}")
    return time.perf_counter() - started, response.json()


def export(url: str, job_id: str, fmt: str) -> tuple[float, int, int]:
    """Stream the retained rows back: (seconds, bytes, JSONL lines or 0)."""
    started = time.perf_counter()
    size = lines = 0
    with httpx.stream("GET", f"{url}/v1/jobs/{job_id}/export", params={"format": fmt}, timeout=3600) as response:
        if response.status_code != 200:
            raise RuntimeError(f"export answered {response.status_code}: {response.read()[:500]!r}")
        for block in response.iter_bytes():
            size += len(block)
            lines += block.count(b"\n")
    return time.perf_counter() - started, size, lines if fmt == "jsonl" else 0


# --- the run ----------------------------------------------------------------------------------------------------


@dataclass
class Row:
    """One (deployment, size) line of the table."""

    deployment: str
    samples: int
    upload_mb: float
    figures: dict[str, float] = field(default_factory=dict)


def run_size(dep: Deployment, watch: RssWatch, path: Path, n: int, student: str) -> Row:
    """Every stage for one dataset on one running deployment."""
    row = Row(dep.kind, n, path.stat().st_size / MB)
    f = row.figures
    watch.reset()
    sent = upload(dep.url, path, student)
    ingested_at_202 = time.perf_counter()
    f["upload_s"], f["202_after_last_byte_s"] = sent.upload_s, sent.after_last_byte_s
    job = wait_ingested(dep.url, sent.job_id)
    f["ingest_s"] = time.perf_counter() - ingested_at_202
    if job["status"] == "failed":
        raise RuntimeError(f"ingest failed: {job.get('error')}")
    if job["progress"]["total"] != n:
        raise RuntimeError(f"ingested {job['progress']['total']} samples, expected {n}")
    f["ingest_per_s"] = n / f["ingest_s"]
    f["api_rss_ingest_mb"], f["worker_rss_ingest_mb"] = watch.peak_mb("api"), watch.peak_mb("ingest")
    print(f"  {dep.kind} {n:,}: ingested in {f['ingest_s']:.1f} s ({f['ingest_per_s']:,.0f}/s)", file=sys.stderr)

    f["setup_scores_s"] = write_scores(dep.env, sent.job_id)
    f["decide_default_s"], f["decide_default_rss_mb"] = finalize_in_worker(dep.env, sent.job_id)
    watch.reset()
    f["decide_band_s"], decided = redecide(dep.url, sent.job_id, "frontier_band")
    f["api_rss_decide_mb"] = watch.peak_mb("api")
    # Export what the default policy's set keeps? The latest set is frontier_band's; export it as the user would.
    retained = int(decided["counts"]["retained"])
    f["retained"] = retained
    for fmt in ("jsonl", "parquet"):
        watch.reset()
        seconds, size, lines = export(dep.url, sent.job_id, fmt)
        if fmt == "jsonl" and lines != retained:
            raise RuntimeError(f"export has {lines} lines, the decision set retains {retained}")
        f[f"export_{fmt}_s"], f[f"export_{fmt}_mb"] = seconds, size / MB
        f[f"api_rss_export_{fmt}_mb"] = watch.peak_mb("api")
    print(f"  {dep.kind} {n:,}: {json.dumps({k: round(v, 2) for k, v in f.items()})}", file=sys.stderr)
    return row


def checks(dep: Deployment, data_root: Path, student: str) -> list[str]:
    """The acceptance checks: a ~2 GB dataset by reference; a bad line at record 900,000 of 1M by reference."""
    lines = []
    big = data_root / "two-gb.jsonl"
    size = write_dataset(big, 1_000_000, pad=800)
    started = time.perf_counter()
    response = httpx.post(f"{dep.url}/v1/jobs", json={"student": student, "dataset": {"path": str(big)}}, timeout=600)
    answered = time.perf_counter() - started
    if response.status_code != 202:
        raise RuntimeError(f"by reference answered {response.status_code}: {response.text[:500]}")
    job = wait_ingested(dep.url, response.json()["id"])
    took = time.perf_counter() - started
    lines.append(
        f"{dep.kind}: {size / MB / 1024:.2f} GB by reference: 202 in {answered:.2f} s, ingest {job['status']} "
        f"with {job['progress']['total']:,} samples in {took:.0f} s ({job['progress']['total'] / took:,.0f}/s)"
    )
    big.unlink()
    bad = data_root / "bad-at-900k.jsonl"
    write_dataset(bad, 1_000_000, bad_record=900_000)
    response = httpx.post(f"{dep.url}/v1/jobs", json={"student": student, "dataset": {"path": str(bad)}}, timeout=600)
    job = wait_ingested(dep.url, response.json()["id"])
    left = _samples_left(dep.env, job["id"])
    lines.append(
        f"{dep.kind}: bad record 900,000: job {job['status']}, error {job.get('error')!r}, samples left {left}"
    )
    bad.unlink()
    return lines


def _samples_left(env: dict[str, str], job_id: str) -> int:
    from sqlalchemy import create_engine, text

    url = env.get("FRONTIER_DATABASE_URL") or f"sqlite:///{Path(env['FRONTIER_DATA_DIR']) / 'frontier.sqlite3'}"
    postgres = url.startswith("postgresql")
    engine = create_engine(url)
    with engine.connect() as connection:
        count = connection.execute(
            text(f"SELECT count(*) FROM samples WHERE job_id = {'CAST(:job AS uuid)' if postgres else ':job'}"),
            {"job": job_id if postgres else uuid.UUID(job_id).hex},
        ).scalar_one()
    engine.dispose()
    return int(count)


COLUMNS = [
    ("upload_s", "upload s", "{:.1f}"),
    ("202_after_last_byte_s", "202 after last byte s", "{:.2f}"),
    ("ingest_per_s", "ingest samples/s", "{:,.0f}"),
    ("api_rss_ingest_mb", "API RSS MB (upload+ingest)", "{:.0f}"),
    ("worker_rss_ingest_mb", "ingest worker RSS MB", "{:.0f}"),
    ("decide_default_s", "decide default s (worker)", "{:.1f}"),
    ("decide_default_rss_mb", "its RSS MB", "{:.0f}"),
    ("decide_band_s", "re-decide frontier_band s (API)", "{:.1f}"),
    ("api_rss_decide_mb", "API RSS MB", "{:.0f}"),
    ("export_jsonl_s", "export JSONL s", "{:.1f}"),
    ("api_rss_export_jsonl_mb", "API RSS MB", "{:.0f}"),
    ("export_parquet_s", "export Parquet s", "{:.1f}"),
    ("api_rss_export_parquet_mb", "API RSS MB", "{:.0f}"),
]


def table(rows: list[Row]) -> str:
    """The Markdown table of every row."""
    header = ["deployment", "samples", "upload MB", *[title for _, title, _ in COLUMNS], "retained"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row.deployment, f"{row.samples:,}", f"{row.upload_mb:,.0f}"]
        cells += [fmt.format(row.figures[key]) if key in row.figures else "-" for key, _, fmt in COLUMNS]
        cells.append(f"{int(row.figures.get('retained', 0)):,}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    """Run the benchmark and print the table."""
    from examples.student import build_student, default_student_dir

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,300000,1000000")
    parser.add_argument("--deployments", default="postgres,embedded")
    parser.add_argument("--checks", default="postgres", help="deployments to run the 2 GB and bad-line checks on")
    parser.add_argument("--scratch", default=None, help="where datasets and data dirs go (default: a temp dir)")
    args = parser.parse_args()

    student = str(build_student(default_student_dir("tiny"), shape="tiny"))
    sizes = [int(value) for value in args.sizes.split(",")]
    rows: list[Row] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="frontier-ingest-", dir=args.scratch) as tmp:
        scratch = Path(tmp)
        data_root = scratch / "datasets"
        data_root.mkdir()
        files = {}
        for n in sizes:
            files[n] = data_root / f"bench-{n}.jsonl"
            started = time.perf_counter()
            size = write_dataset(files[n], n)
            print(f"wrote {n:,} samples, {size / MB:,.0f} MB in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        for kind in args.deployments.split(","):
            for n in sizes:
                # A fresh deployment per size: each peak belongs to that size alone.
                with deployment(kind, scratch, data_root) as dep:
                    watch = RssWatch(roles={"api": dep.api_pid, "ingest": dep.ingest_pid})
                    watch.start()
                    try:
                        rows.append(run_size(dep, watch, files[n], n, student))
                    finally:
                        watch.stop()
            if kind in args.checks.split(","):
                with deployment(kind, scratch, data_root) as dep:
                    notes += checks(dep, data_root, student)
    print(table(rows))
    print()
    print(
        "Set-up step (not a product path): scores written by one SQL UPDATE per job, since scoring 1M candidates "
        "is beyond this CPU (bench/service.py measures scoring). Decide default = the job's own policy "
        "(reflection) by the worker's finalize in a fresh process; re-decide frontier_band over HTTP in the API."
    )
    for line in notes:
        print("-", line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
