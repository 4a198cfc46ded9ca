"""Crash and restart tests against real processes: a private Postgres cluster and a private Redis that these tests
may stop, pause and restart (the machine's shared instances are never touched), and real prefork Celery workers
whose pool processes the tests SIGKILL.

The private instances are started once per session on free ports; each test starts its own worker, with the
API in-process (TestClient) on the same settings. The worker connects with application_name
`frontier-test-worker`, so the tests can see in pg_stat_activity exactly where its transactions are.
"""

from __future__ import annotations

import functools
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from fastapi.testclient import TestClient

from core.processes import free_port
from service import migrate
from service.app import create_app
from service.db import dispose_engines
from service.settings import Settings, get_settings
from tests.services import TEST_CHUNK_SIZE, TEST_QUEUE, as_jsonl, configure, example_records, small_student
from workers.local import worker_command

__all__ = ["small_student"]

WORKER_APPLICATION_NAME = "frontier-test-worker"
DATABASE = "frontier_reliability"
START_TIMEOUT_S = 60.0


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    """Poll `predicate` until it returns something truthy; fail the test naming `what` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def _postgres_bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if found is None:
        pytest.fail(f"{name} not found: the reliability tests need PostgreSQL's server binaries", pytrace=False)
    return found


class PrivatePostgres:
    """A throwaway Postgres cluster (trust auth, fsync off) on its own port, owned by an unprivileged user."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="frontier-reliability-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        # Postgres refuses to run as root: as root, run it as the `postgres` system user.
        self._as: list[str] = []
        if os.geteuid() == 0:
            if shutil.which("runuser") is None:
                pytest.fail("running as root without runuser: cannot start a private Postgres", pytrace=False)
            self._as = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.root, user="postgres")
        self._run(_postgres_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()

    def _run(self, *command: str) -> None:
        result = subprocess.run([*self._as, *command], capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            pytest.fail(f"{' '.join(command[:2])} failed: {result.stderr[-2000:]}", pytrace=False)

    def start(self) -> None:
        """Start the cluster (if stopped) and wait until it accepts connections."""
        if self.up():
            return
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run(
            _postgres_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"), "-o", options, "-w", "start"
        )
        wait_until(self.up, START_TIMEOUT_S, "the private Postgres to accept connections", interval=0.1)

    def stop(self) -> None:
        """Stop the cluster now (fast mode: every connection is terminated)."""
        self._run(_postgres_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def up(self) -> bool:
        """Whether the cluster answers a query."""
        try:
            with psycopg.connect(self.dsn("postgres"), connect_timeout=2) as connection:
                connection.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False

    def dsn(self, database: str) -> str:
        """A libpq DSN for one of the cluster's databases."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def remove(self) -> None:
        """Stop the cluster (if running) and delete it."""
        if self.up():
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateRedis:
    """A redis-server of our own without persistence: a restart loses every queued message."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.start()

    def start(self) -> None:
        """Start the server (if stopped) and wait until it answers PING."""
        if self.process is not None and self.process.poll() is None:
            return
        server = shutil.which("redis-server")
        if server is None:
            pytest.fail("redis-server not found: the reliability tests need it", pytrace=False)
        command = [server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        command += ["--dir", str(self.root), "--logfile", str(self.root / "redis.log")]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self.up, START_TIMEOUT_S, "the private Redis to answer PING", interval=0.05)

    def stop(self) -> None:
        """Shut the server down (its data goes with it)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            self.process.wait(timeout=30)
        self.process = None

    def pause(self) -> None:
        """Freeze the server: connections stay open but nothing is answered."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Unfreeze a paused server."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def up(self) -> bool:
        """Whether the server answers PING."""
        try:
            return bool(redis.Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def client(self) -> redis.Redis:
        """A client of the server."""
        return redis.Redis.from_url(self.url, socket_connect_timeout=2, socket_timeout=5)


class Worker:
    """A real `celery worker` (prefork, one pool process) in its own process group, logging to a file."""

    def __init__(self, settings: Settings, env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                worker_command(settings, pool="prefork", loglevel="INFO"),
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(lambda: self.alive() and " ready." in self.log.read_text(errors="replace"), 120, "the worker")

    def alive(self) -> bool:
        """Whether the worker's main process is running (fails the test if it exited by itself)."""
        code = self.process.poll()
        if code is not None:
            pytest.fail(f"the worker exited with {code}:\n{self.tail()}", pytrace=False)
        return True

    def children(self) -> list[int]:
        """The pids of the pool processes."""
        pid = self.process.pid
        try:
            return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except FileNotFoundError:
            return []

    def kill_child(self) -> int:
        """SIGKILL the pool process (the one scoring) and return its pid; the main process replaces it."""
        self.alive()
        children = self.children()
        assert len(children) == 1, children
        os.kill(children[0], signal.SIGKILL)
        return children[0]

    def child_has_torch(self) -> bool:
        """Whether the pool process has imported torch (the first step of loading the student)."""
        children = self.children()
        assert len(children) == 1, children
        return "libtorch" in Path(f"/proc/{children[0]}/maps").read_text()

    def kill(self) -> None:
        """SIGKILL the whole worker, main process and pool: gone for good, nothing acknowledged or rejected."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """Warm shutdown, then kill whatever is left of the process group."""
        if self.process.poll() is None:
            self.process.terminate()
            with suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=20)
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def tail(self, n: int = 60) -> str:
        """The last lines of the worker's log."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


@dataclass(frozen=True)
class ChunkState:
    """One chunk as the database has it."""

    index: int
    status: str
    attempts: int
    started_at: Any
    finished_at: Any


@dataclass
class Stack:
    """The private Postgres and Redis, the settings every process shares, and what the tests observe."""

    postgres: PrivatePostgres
    redis: PrivateRedis
    settings: Settings
    env: dict[str, str]
    tmp_path: Path
    workers: list[Worker] = field(default_factory=list)
    observer: psycopg.Connection[tuple[Any, ...]] | None = None

    def start_worker(self, **settings: str) -> Worker:
        """Start a worker; `settings` are FRONTIER_* overrides, e.g. SWEEP_INTERVAL_S="0"."""
        env = os.environ.copy()
        env.update(self.env)
        env["FRONTIER_DATABASE_URL"] = f"{self.env['FRONTIER_DATABASE_URL']}?application_name={WORKER_APPLICATION_NAME}"
        env.update({f"FRONTIER_{key}": value for key, value in settings.items()})
        worker = Worker(self.settings, env, self.tmp_path / f"worker-{len(self.workers)}.log")
        self.workers.append(worker)
        return worker

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Run one statement on the private database (one kept connection, so polling is quick; reconnects once)."""
        for retry in (False, True):
            if self.observer is None or self.observer.closed:
                self.observer = psycopg.connect(self.postgres.dsn(DATABASE), connect_timeout=5, autocommit=True)
            try:
                return self.observer.execute(sql, params).fetchall()
            except psycopg.OperationalError:
                self.observer.close()
                if retry:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close the observing connection."""
        if self.observer is not None:
            self.observer.close()

    def chunks(self, job_id: uuid.UUID) -> list[ChunkState]:
        """The job's chunks in index order."""
        rows = self.query(
            'SELECT "index", status, attempts, started_at, finished_at FROM chunks WHERE job_id = %s ORDER BY "index"',
            job_id,
        )
        return [ChunkState(*row) for row in rows]

    def job_status(self, job_id: uuid.UUID) -> str:
        """The job's status."""
        return str(self.query("SELECT status FROM jobs WHERE id = %s", job_id)[0][0])

    def worker_backends(self) -> list[tuple[str, str, str | None]]:
        """(state, last query, wait event type) of each database connection the worker holds."""
        rows = self.query(
            "SELECT state, query, wait_event_type FROM pg_stat_activity WHERE application_name = %s",
            WORKER_APPLICATION_NAME,
        )
        return [(str(row[0]), str(row[1]), row[2]) for row in rows]

    def worker_waits_on_a_lock(self) -> bool:
        """Whether one of the worker's transactions is blocked on a lock we hold."""
        return any(state == "active" and wait == "Lock" for state, _, wait in self.worker_backends())

    def worker_outside_transactions(self) -> bool:
        """Whether the worker holds connections and none is in a transaction (it is loading or scoring).

        A chunk task claims the chunk and looks up the score cache in short transactions, then loads the
        student and runs the engine with no transaction open, then writes the scores in one transaction.
        """
        backends = self.worker_backends()
        return bool(backends) and all(state == "idle" for state, _, _ in backends)

    @contextmanager
    def hold(self, statement: str, *params: Any) -> Iterator[None]:
        """Run `statement` (e.g. a row or table lock) in a transaction held open for the block."""
        with psycopg.connect(self.postgres.dsn(DATABASE), connect_timeout=5) as connection:
            connection.execute(statement, params)
            try:
                yield
            finally:
                connection.rollback()

    def job_lock(self, job_id: uuid.UUID) -> Any:
        """Hold the job's row lock: no chunk of the job can be claimed or written, and it cannot be finalized."""
        return self.hold("SELECT 1 FROM jobs WHERE id = %s FOR UPDATE", job_id)

    def queue_drained(self) -> bool:
        """Whether the broker holds no task for the workers, queued or delivered-but-unacknowledged."""
        client = self.redis.client()
        return client.llen(TEST_QUEUE) == 0 and client.hlen("unacked") == 0


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    """A Postgres cluster of this session's own, migrated database `frontier_reliability` included."""
    cluster = PrivatePostgres()
    try:
        with psycopg.connect(cluster.dsn("postgres"), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {DATABASE}")
        url = cluster.dsn(DATABASE).replace("postgresql://", "postgresql+psycopg://", 1)
        migrate.upgrade(url)
        dispose_engines()
        yield cluster
    finally:
        dispose_engines()
        cluster.remove()


@pytest.fixture(scope="session")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    """A Redis of this session's own."""
    server = PrivateRedis(tmp_path_factory.mktemp("private-redis"))
    yield server
    server.stop()


@pytest.fixture
def stack(
    private_postgres: PrivatePostgres, private_redis: PrivateRedis, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Stack]:
    """This process pointed at the private instances (both running, the queue empty); workers stopped afterwards."""
    private_postgres.start()
    private_redis.start()
    private_redis.client().flushdb()
    env = {
        "FRONTIER_DATABASE_URL": private_postgres.dsn(DATABASE).replace("postgresql://", "postgresql+psycopg://", 1),
        "FRONTIER_BROKER_URL": private_redis.url,
        "FRONTIER_DATA_DIR": str(tmp_path / "data"),
        "FRONTIER_CHUNK_SIZE": str(TEST_CHUNK_SIZE),
        "FRONTIER_GPU_QUEUE": TEST_QUEUE,
        # Tenancy is tested elsewhere; these tests act as the local tenant.
        "FRONTIER_AUTH": "none",
    }
    current = Stack(private_postgres, private_redis, configure(monkeypatch, env), env, tmp_path)
    try:
        yield current
    finally:
        for worker in current.workers:
            worker.stop()
        current.close()
        private_redis.start()
        private_postgres.start()
        dispose_engines()
        get_settings.cache_clear()


@pytest.fixture
def client(stack: Stack) -> Iterator[TestClient]:
    """The API, in this process, on the private instances."""
    with TestClient(create_app()) as test_client:
        yield test_client


def create_job(client: TestClient, student: Path, n: int, start: int) -> uuid.UUID:
    """POST a job of `n` example records from `start` (distinct slices per test: the score cache is shared)."""
    response = client.post(
        "/v1/jobs",
        files={"file": ("data.jsonl", as_jsonl(example_records(n, start=start)))},
        data={"student": str(student)},
    )
    assert response.status_code == 202, response.text
    return uuid.UUID(response.json()["id"])


def assert_decided_exactly_once(stack: Stack, job_id: uuid.UUID, n_samples: int) -> None:
    """The job succeeded with every candidate scored once, every chunk counted once, one decision per sample."""
    assert stack.job_status(job_id) == "succeeded", stack.query("SELECT error FROM jobs WHERE id = %s", job_id)
    [(scored, total, retained, rejected, unscored)] = stack.query(
        "SELECT scored_samples, total_samples, retained_count, rejected_count, unscored_count FROM jobs WHERE id = %s",
        job_id,
    )
    assert scored == total == n_samples
    assert retained + rejected + unscored == n_samples
    assert all(chunk.status == "done" for chunk in stack.chunks(job_id))
    [(pending, unscored_at)] = stack.query(
        "SELECT count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE scored_at IS NULL) "
        "FROM candidates WHERE job_id = %s",
        job_id,
    )
    assert (pending, unscored_at) == (0, 0)
    [(sets,)] = stack.query("SELECT count(*) FROM decision_sets WHERE job_id = %s", job_id)
    [(decisions, samples_decided)] = stack.query(
        "SELECT count(*), count(DISTINCT sample_id) FROM decisions WHERE job_id = %s", job_id
    )
    assert (sets, decisions, samples_decided) == (1, n_samples, n_samples)


def job_finished(stack: Stack, job_id: uuid.UUID) -> str | None:
    """The job's status once it has finished, else None."""
    status = stack.job_status(job_id)
    return status if status in {"succeeded", "failed", "cancelled"} else None


def wait_decided_exactly_once(stack: Stack, worker: Worker, jobs: dict[uuid.UUID, int], timeout: float) -> None:
    """Wait for each job (id -> samples) to finish; each must succeed with every sample decided exactly once."""
    for job_id, n_samples in jobs.items():
        status = wait_until(functools.partial(job_finished, stack, job_id), timeout, f"job {job_id} to finish")
        assert status == "succeeded", worker.tail()
        assert_decided_exactly_once(stack, job_id, n_samples)
