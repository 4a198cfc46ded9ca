"""A real `frontier serve` in a child process on a free port: the embedded default (SQLite + filesystem broker +
a local Celery worker) under a temporary data directory, for the tests that talk to the service over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from core.processes import free_port, stop_process
from tests.services import ROOT, TEST_CHUNK_SIZE

START_TIMEOUT_S = 90


@dataclass(frozen=True)
class LiveServer:
    """A running server: its URL, the environment its processes share, and its log."""

    url: str
    env: dict[str, str]
    log: Path


def server_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """This process's environment pointed at an embedded deployment under `data_dir` (no key unless `extra` says)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FRONTIER_")}
    env.update(
        FRONTIER_DATA_DIR=str(data_dir),
        FRONTIER_AUTH="none",
        FRONTIER_CHUNK_SIZE=str(TEST_CHUNK_SIZE),
        FRONTIER_GPU_QUEUE=f"gpu-live-{os.getpid()}",
    )
    env.update(extra)
    return env


@contextmanager
def live_server(data_dir: Path, *, worker: bool = True, port: int | None = None, **extra: str) -> Iterator[LiveServer]:
    """`frontier serve` until the block ends; fails the test with the server's log if it does not come up."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    env = server_env(data_dir, **extra)
    log = data_dir / "serve.log"
    command = [sys.executable, "-m", "frontier.cli", "serve", "--port", str(port)]
    command.append("--worker" if worker else "--no-worker")
    with log.open("wb") as sink:
        # Its own session: on teardown the server and the worker it started are signalled together.
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process, log)
        yield LiveServer(url=url, env=env, log=log)
    finally:
        # SIGTERM, as a process manager stops it (uvicorn, then the local worker); the group is killed if slow.
        stop_process(process, timeout=45, group=True)


def wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Poll /healthz until the server answers; fail the test with its log if it exits or takes too long."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"frontier serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    pytest.fail(f"frontier serve did not answer within {START_TIMEOUT_S}s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def frontier_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One embedded `frontier serve` with a local worker, shared by the tests that drive it over HTTP."""
    with live_server(tmp_path_factory.mktemp("live-server")) as server:
        yield server
