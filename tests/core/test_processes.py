"""Stopping child processes: a warm shutdown first, a kill when it does not come, and no orphans in a group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from core.processes import free_port, stop_process

# A parent that ignores SIGTERM and starts a child that outlives it unless its whole session is killed.
STUBBORN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print(child.pid, flush=True)
time.sleep(60)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers signal 0 until its parent reaps it; it is no longer running.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"


def test_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))


def test_a_process_that_honours_sigterm_stops_without_a_kill() -> None:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    stop_process(process, timeout=10)
    assert process.returncode == -signal.SIGTERM


def test_a_group_that_ignores_sigterm_is_killed_children_included() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert process.stdout is not None
    child = int(process.stdout.readline())
    started = time.monotonic()
    stop_process(process, timeout=0.5, group=True)
    assert process.returncode == -signal.SIGKILL
    assert time.monotonic() - started < 10
    deadline = time.monotonic() + 5
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)
