"""Load on loopback: concurrent clients create small jobs, poll them and export them for a fixed time.

Each client is a closed loop — POST a job of a few samples, poll it until it finishes, download the export,
repeat — so the API sees the mix a team of users produces (mostly polls), and the workers bound the job
rate. Reports requests/s, p50/p99 latency per request kind and every error; then waits for every accepted
job and checks it completed with exact counts (decisions = samples, export lines = retained).

    python bench/load.py --clients 32 --seconds 60          # starts Postgres/Redis-backed API + worker itself
    python bench/load.py --url http://127.0.0.1:8000 ...    # against a running deployment

The short form runs in the test suite (tests/service/test_load.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_DATA = ROOT / "examples" / "data" / "refinements.jsonl"
FINISHED = {"succeeded", "failed", "cancelled"}


@dataclass
class LoadReport:
    """What the clients saw and what the jobs ended as."""

    clients: int
    seconds: float
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    jobs: dict[str, int] = field(default_factory=dict)  # job id -> samples submitted
    checked: int = 0
    mismatches: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        """Requests sent during the timed window."""
        return sum(len(v) for v in self.latencies.values())

    def summary(self) -> str:
        """A table of request rate and latency percentiles per request kind."""
        lines = [f"{self.clients} clients, {self.seconds:.1f} s: {self.requests / self.seconds:.1f} requests/s"]
        lines.append(f"{'request':<10} {'count':>7} {'p50 ms':>8} {'p99 ms':>8}")
        for kind, values in sorted(self.latencies.items()):
            lines.append(f"{kind:<10} {len(values):>7} {_pct(values, 50):>8.1f} {_pct(values, 99):>8.1f}")
        lines.append(f"{'all':<10} {self.requests:>7} {_pct(self.all(), 50):>8.1f} {_pct(self.all(), 99):>8.1f}")
        lines.append(
            f"jobs accepted {len(self.jobs)}, checked complete and exact {self.checked}, "
            f"errors {len(self.errors)}, mismatches {len(self.mismatches)}"
        )
        return "\n".join(lines)

    def all(self) -> list[float]:
        """Every latency, all kinds."""
        return [value for values in self.latencies.values() for value in values]


def _pct(values: list[float], q: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0] * 1000
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


def example_jsonl(samples: int, offset: int) -> bytes:
    """`samples` consecutive example records (wrapping), with ids made unique per job."""
    lines = EXAMPLE_DATA.read_text(encoding="utf-8").splitlines()
    chosen = [json.loads(lines[(offset + i) % len(lines)]) for i in range(samples)]
    return b"".join(json.dumps({**r, "id": f"{r['id']}-{offset}"}).encode() + b"\n" for r in chosen)


async def _timed(report: LoadReport, kind: str, request: Any) -> httpx.Response | None:
    started = time.perf_counter()
    try:
        response: httpx.Response = await request
    except httpx.HTTPError as exc:
        report.errors.append(f"{kind}: {type(exc).__name__}: {exc}")
        return None
    report.latencies.setdefault(kind, []).append(time.perf_counter() - started)
    if response.status_code >= 400:
        report.errors.append(f"{kind}: {response.status_code} {response.text[:200]}")
        return None
    return response


async def _client(
    number: int, http: httpx.AsyncClient, student: str, samples: int, deadline: float, report: LoadReport
) -> None:
    offset = number * 1000
    while time.monotonic() < deadline:
        offset += 1
        files = {"file": ("load.jsonl", example_jsonl(samples, offset), "application/x-ndjson")}
        created = await _timed(report, "create", http.post("/v1/jobs", files=files, data={"student": student}))
        if created is None:
            await asyncio.sleep(0.2)
            continue
        job_id = created.json()["id"]
        report.jobs[job_id] = samples
        status = "queued"
        while status not in FINISHED and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            polled = await _timed(report, "poll", http.get(f"/v1/jobs/{job_id}"))
            status = polled.json()["status"] if polled is not None else status
        if status == "succeeded":
            await _timed(report, "export", http.get(f"/v1/jobs/{job_id}/export", params={"decision": "all"}))


async def _check(http: httpx.AsyncClient, report: LoadReport, timeout_s: float) -> None:
    """Wait for every accepted job, then check decisions = samples and export lines = retained."""
    deadline = time.monotonic() + timeout_s
    for job_id, samples in report.jobs.items():
        while True:
            job = (await http.get(f"/v1/jobs/{job_id}")).json()
            if job["status"] in FINISHED or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        counts = job["counts"]
        retained = (await http.get(f"/v1/jobs/{job_id}/export", params={"decision": "retained"})).text.splitlines()
        problems = []
        if job["status"] != "succeeded":
            problems.append(f"status {job['status']} ({job['error']})")
        if job["progress"]["scored"] != samples or sum(counts.values()) != samples:
            problems.append(f"progress {job['progress']}, counts {counts}, submitted {samples}")
        if job["status"] == "succeeded" and len(retained) != counts["retained"]:
            problems.append(f"export has {len(retained)} lines for {counts['retained']} retained")
        if problems:
            report.mismatches.append(f"{job_id}: {'; '.join(problems)}")
        else:
            report.checked += 1


async def _warm_up(http: httpx.AsyncClient, student: str, samples: int, timeout_s: float) -> None:
    """One job through before the clock starts: the worker's first task loads torch and the student."""
    files = {"file": ("warm-up.jsonl", example_jsonl(samples, -1), "application/x-ndjson")}
    created = await http.post("/v1/jobs", files=files, data={"student": student})
    created.raise_for_status()
    deadline = time.monotonic() + timeout_s
    while (await http.get(f"/v1/jobs/{created.json()['id']}")).json()["status"] not in FINISHED:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the warm-up job did not finish within {timeout_s} s: is a worker running?")
        await asyncio.sleep(0.2)


async def run_load(
    url: str, student: str, *, clients: int, seconds: float, samples: int = 2, drain_timeout_s: float = 300
) -> LoadReport:
    """Warm up, drive `clients` closed-loop users against `url` for `seconds`, then check every accepted job."""
    report = LoadReport(clients=clients, seconds=seconds)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        await _warm_up(http, student, samples, drain_timeout_s)
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(_client(i, http, student, samples, deadline, report) for i in range(clients)))
        await _check(http, report, drain_timeout_s)
    return report


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def api_server(env: dict[str, str], port: int) -> Iterator[str]:
    """`frontier serve` (no local worker, no migrations) as a child process; yields its URL once it is ready."""
    command = [sys.executable, "-m", "frontier.cli", "serve", "--port", str(port), "--no-worker", "--no-migrate"]
    # The server's log goes to a file, not a pipe: a pipe nobody reads would block it under load.
    log = tempfile.NamedTemporaryFile(prefix="frontier-api-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the API exited: {Path(log.name).read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the API did not become ready within 60 s")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        print(f"API log: {log.name}", file=sys.stderr)


@contextmanager
def local_deployment(database_url: str, broker_url: str, data_dir: Path) -> Iterator[str]:
    """Migrate `database_url`, then run a prefork worker and the API on it; yields the API's URL."""
    from service import migrate
    from service.db import dispose_engines
    from service.settings import Settings
    from workers.local import local_worker

    env = {
        **os.environ,
        "FRONTIER_DATABASE_URL": database_url,
        "FRONTIER_BROKER_URL": broker_url,
        "FRONTIER_DATA_DIR": str(data_dir),
        "FRONTIER_GPU_QUEUE": f"load-{os.getpid()}",
        # The clients send no keys; the API listens on loopback only.
        "FRONTIER_AUTH": "none",
    }
    migrate.upgrade(database_url)
    dispose_engines()
    settings = Settings.model_validate({"gpu_queue": env["FRONTIER_GPU_QUEUE"]})
    with local_worker(settings, env=env, pool="prefork"), api_server(env, free_port()) as url:
        yield url


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--samples", type=int, default=2, help="samples per job")
    parser.add_argument("--url", help="a running deployment (default: start API + worker on Postgres + Redis)")
    parser.add_argument("--student", help="student directory (default: a small random student built here)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))

    if args.url:
        if not args.student:
            parser.error("--student is required with --url")
        report = asyncio.run(run_load(args.url, args.student, clients=args.clients, seconds=args.seconds))
    else:
        report = _run_local(args)
    print(report.summary())
    for line in (report.errors + report.mismatches)[:20]:
        print("  ", line)
    return 0 if not report.mismatches else 1


def _run_local(args: argparse.Namespace) -> LoadReport:
    from tests.services import drop_postgres, ensure_postgres, ensure_redis
    from tests.workers.scoring.builders import build_random_student

    with tempfile.TemporaryDirectory() as tmp:
        student = args.student or str(build_random_student(Path(tmp) / "student", max_length=512))
        try:
            with local_deployment(ensure_postgres(), ensure_redis(), Path(tmp) / "data") as url:
                return asyncio.run(run_load(url, student, clients=args.clients, seconds=args.seconds))
        finally:
            drop_postgres()


if __name__ == "__main__":
    raise SystemExit(main())
