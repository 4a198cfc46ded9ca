"""`frontier serve` as a process manager runs it: started, then stopped with SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import httpx
import pytest

from core.processes import free_port
from tests.live_server import server_env, wait_until_up
from tests.services import ROOT


def _children(pid: int) -> list[int]:
    """Process ids whose parent is `pid` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # Field 4 is the parent id; the command name (field 2) may hold spaces, so split after its ')'.
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited


def test_sigterm_stops_the_api_and_its_local_worker(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "frontier.cli", "serve", "--port", str(port), "--worker"],
            cwd=ROOT,
            env=server_env(tmp_path / "data"),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until_up(f"http://127.0.0.1:{port}", server, log)
        workers = _children(server.pid)
        assert len(workers) == 1, f"expected one local worker child, found {workers}"
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0, log.read_text()[-3000:]
        deadline = time.monotonic() + 10
        while _alive(workers[0]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(workers[0]), f"the local worker outlived `frontier serve`:\n{log.read_text()[-3000:]}"
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    finally:
        with suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
