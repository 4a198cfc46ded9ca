"""Child processes the product and its tools start: a free local port, and a stop that leaves no orphan behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from contextlib import suppress
from typing import Any


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def stop_process(process: subprocess.Popen[Any], timeout: float, *, group: bool = False) -> None:
    """SIGTERM (a warm shutdown), SIGKILL if it has not exited after `timeout` seconds.

    With `group`, `process` leads its own session (`start_new_session=True`) and the children it started, such as
    the local worker of `frontier serve`, are killed with it in the end, so none outlives it.
    """
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            if group:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.kill()
            process.wait()
    if group:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
