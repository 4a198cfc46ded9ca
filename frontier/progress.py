"""A one-line progress bar on stderr for the commands that wait: `score`, `jobs watch`, `jobs export`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

WIDTH = 30


def count(value: float) -> str:
    """A count as an integer."""
    return f"{value:.0f}"


def size(value: float) -> str:
    """A byte count in B, KB, MB or GB (powers of 1000, as transfer rates are quoted)."""
    if value < 1000:
        return f"{value:.0f} B"
    for unit in ("KB", "MB"):
        value /= 1000
        if value < 1000:
            return f"{value:.1f} {unit}"
    return f"{value / 1000:.1f} GB"


class ProgressBar:
    """`label [#####.....] done/total unit rate/s eta Ns` redrawn in place; silent unless the stream is a terminal.

    The total may be unknown (a streamed download) or change (a job whose total is read from the server); the
    rate counts only what was done since the bar started, so a bar attached to a half-finished job does not
    report the first half as done in no time.
    """

    def __init__(
        self,
        total: int | None,
        stream: TextIO,
        *,
        label: str = "scoring",
        unit: str = "candidates",
        done: int = 0,
        render: Callable[[float], str] = count,
    ) -> None:
        self.total = total
        self.done = done
        self.stream = stream
        self.label = label
        self.unit = unit
        self.render = render
        self.enabled = stream.isatty()
        self.started = time.perf_counter()
        self._start_done = done
        self._width = 0

    def tracker(self, chunk_size: int) -> Callable[[int, int], None]:
        """A progress callback for one engine call over the next `chunk_size` candidates."""
        base = self.done
        return lambda batches_done, batches: self.update(base + chunk_size * batches_done // batches)

    def update(self, done: int, total: int | None = None) -> None:
        """Record `done` (and a new total, if given) and redraw."""
        self.done = done
        if total is not None:
            self.total = total
        if self.enabled:
            self._draw(self.line())

    def line(self) -> str:
        """The bar as text, without the carriage return."""
        elapsed = time.perf_counter() - self.started
        rate = (self.done - self._start_done) / elapsed if elapsed > 0 else 0.0
        speed = f"{self.render(rate)}/s" if self.render is not count else f"{rate:.1f}/s"
        unit = f" {self.unit}" if self.unit else ""
        if not self.total:
            return f"{self.label} {self.render(self.done)}{unit} {speed}"
        filled = min(WIDTH, int(WIDTH * self.done / self.total))
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        return (
            f"{self.label} [{'#' * filled}{'.' * (WIDTH - filled)}] {self.render(self.done)}/{self.render(self.total)}"
            f"{unit} {speed} eta {eta:.0f}s"
        )

    def _draw(self, text: str) -> None:
        # Pad over what the previous line drew: a shorter line must not leave the tail of a longer one.
        self.stream.write("\r" + text.ljust(self._width))
        self._width = len(text)
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line (nothing when silent)."""
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
