"""The worker's sweeper: a thread in the worker's main process that runs the job and probe sweeps periodically.

It sweeps once as soon as the worker is ready (a worker that replaces a dead one recovers its stuck chunks at
once) and then every FRONTIER_SWEEP_INTERVAL_S. It never scores: it only re-queues, fails or finalizes under
the job's lock, so every worker may run one. It lives in the main process because pool processes can be busy
with a chunk for minutes, or be the thing that died.
"""

from __future__ import annotations

import logging
import threading

from service.settings import Settings

log = logging.getLogger(__name__)


class Sweeper:
    """A daemon thread sweeping every `interval_s` seconds until stopped."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="frontier-sweeper", daemon=True)

    def start(self) -> None:
        """Start sweeping."""
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the sweep in progress, if any."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        from workers.curation import sweep, sweep_uploads
        from workers.probes import sweep_probes

        while not self._stop.is_set():
            try:
                sweep(self.settings)
                sweep_probes(self.settings)
                sweep_uploads(self.settings)
            except Exception:
                # An outage of the database or the broker: the next sweep tries again.
                log.warning("sweep failed; retrying in %gs", self.settings.sweep_interval_s, exc_info=True)
            self._stop.wait(self.settings.sweep_interval_s)


_sweeper: Sweeper | None = None


def start_sweeper(settings: Settings) -> None:
    """Start this process's sweeper unless FRONTIER_SWEEP_INTERVAL_S is 0 or one is running."""
    global _sweeper
    if settings.sweep_interval_s > 0 and _sweeper is None:
        _sweeper = Sweeper(settings)
        _sweeper.start()


def stop_sweeper() -> None:
    """Stop this process's sweeper, if it runs one."""
    global _sweeper
    if _sweeper is not None:
        _sweeper.stop()
        _sweeper = None
