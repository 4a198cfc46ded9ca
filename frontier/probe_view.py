"""Probe runs as text: the results table per condition, a run's facts, and its progress (docs/probes.md).

Shared by `frontier jobs probe|probes` and `frontier curate --probe`. Reads the ProbeOut JSON as the API returns
it and names no condition itself: whatever conditions a run has are the table's rows, in the run's order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

from frontier.progress import ProgressBar

RESULTS_HEADER = ["CONDITION", "EXACT MATCH", "LOSS", "SEEDS", "EXAMPLES", "STEPS", "TOKENS", "SECONDS"]
LISTING_HEADER = ["PROBE", "STATUS", "PROGRESS", "CONDITIONS", "SEEDS", "STEPS", "EVAL", "CREATED"]

# What a budget without max_new_tokens generates (core.probes.generation_room).
ROOM = "room for each condition's longest response in"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """Left-aligned columns two spaces apart, each as wide as its widest cell."""
    body = [list(row) for row in rows]
    widths = [max(len(cell) for cell in column) for column in zip(header, *body, strict=True)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [list(header), *body]
    ]


def fraction(probe: Mapping[str, Any]) -> float:
    """How much of the run is done, 0 to 1 (the server's `progress.fraction`)."""
    value = (probe.get("progress") or {}).get("fraction")
    return min(1.0, max(0.0, float(value))) if isinstance(value, int | float) else 0.0


def progress_text(probe: Mapping[str, Any]) -> str:
    """`2/5 tasks, 230/500 steps (46%)`."""
    progress = probe.get("progress") or {}
    return (
        f"{progress.get('tasks_done', 0)}/{progress.get('tasks_total', 0)} tasks, "
        f"{progress.get('steps_done', 0)}/{progress.get('steps_total', 0)} steps ({100 * fraction(probe):.0f}%)"
    )


def mean_sd(summary: Mapping[str, Any] | None, *, percent: bool = False) -> str:
    """`70.0 ± 5.0%` (or `1.234 ± 0.050`); the mean alone with one seed; `-` before any seed is done."""
    summary = summary or {}
    mean, sd = summary.get("mean"), summary.get("sd")
    if mean is None:
        return "-"
    if percent:
        return f"{100 * mean:.1f}%" if sd is None else f"{100 * mean:.1f} ± {100 * sd:.1f}%"
    return f"{mean:.3f}" if sd is None else f"{mean:.3f} ± {sd:.3f}"


def condition_cost(result: Mapping[str, Any]) -> dict[str, float]:
    """Steps, tokens and seconds a condition has spent, summed over its seeds (those that report a cost)."""
    total = {"steps": 0.0, "tokens": 0.0, "seconds": 0.0}
    for seed in result.get("seeds") or []:
        cost = seed.get("cost") or {}
        for name in total:
            value = cost.get(name)
            if isinstance(value, int | float):
                total[name] += value
    return total


def results_rows(probe: Mapping[str, Any]) -> list[list[str]]:
    """One row per condition, in the run's order: exact match and loss over the done seeds, and the cost."""
    rows = []
    for result in probe.get("results") or []:
        seeds = result.get("seeds") or []
        done = sum(1 for seed in seeds if seed.get("status") == "done")
        failed = sum(1 for seed in seeds if seed.get("status") == "failed")
        cost = condition_cost(result)
        rows.append(
            [
                str(result.get("condition")),
                mean_sd(result.get("exact_match"), percent=True),
                mean_sd(result.get("loss")),
                f"{done}/{len(seeds)}" + (f" ({failed} failed)" if failed else ""),
                str(result.get("n_examples", "-")),
                f"{cost['steps']:.0f}",
                f"{cost['tokens']:,.0f}",
                f"{cost['seconds']:.1f}",
            ]
        )
    return rows


def results_table(probe: Mapping[str, Any]) -> list[str]:
    """The results table as lines (a header, then one line per condition)."""
    return table(RESULTS_HEADER, results_rows(probe))


def budget_text(budget: Mapping[str, Any]) -> str:
    """`4 steps of 16 examples, peak lr 0.001 (1 warm-up), a curve point every 2 steps, 2 seeds, 8 new tokens`."""
    if not budget:
        return "-"
    seeds = budget.get("seeds")
    schedule = budget.get("schedule_steps")
    generation = budget.get("max_new_tokens")
    prefix = f" (the first of a {schedule}-step schedule)" if schedule and schedule != budget.get("steps") else ""
    return (
        f"{budget.get('steps')} steps{prefix} of {budget.get('batch_size')} examples, "
        f"peak lr {budget.get('peak_lr') or 'auto'} ({budget.get('warmup_steps')} warm-up), "
        f"a curve point every {budget.get('eval_every')} steps, "
        f"{seeds} seed{'' if seeds == 1 else 's'}, {generation or ROOM} new tokens"
    )


def facts(probe: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The run's status, progress, budget, eval set, conditions, cost and error as (name, value) pairs."""
    budget = probe.get("budget") or {}
    evaluation = probe.get("eval") or {}
    cost = probe.get("cost") or {}
    lines = [
        ("probe", f"{probe.get('id')} of job {probe.get('job_id')}"),
        ("status", str(probe.get("status"))),
        ("progress", progress_text(probe)),
        ("budget", budget_text(budget)),
        (
            "eval",
            f"{evaluation.get('n_items', '?')} items ({evaluation.get('source', '?')})"
            + (f": {evaluation['note']}" if evaluation.get("note") else ""),
        ),
        ("conditions", ", ".join(str(c) for c in probe.get("conditions") or []) or "-"),
        (
            "cost",
            f"{cost.get('steps', 0):,} steps, {cost.get('tokens', 0):,} tokens, {float(cost.get('seconds') or 0):.1f}s",
        ),
    ]
    if probe.get("answer_pattern"):
        lines.append(("answer", f"pattern {probe['answer_pattern']}"))
    if probe.get("error"):
        lines.append(("error", str(probe["error"])))
    return lines


def describe(probe: Mapping[str, Any]) -> list[str]:
    """The run's facts, then its results table."""
    width = max(len(name) for name, _ in facts(probe))
    return [f"{name.ljust(width)}  {value}" for name, value in facts(probe)] + ["", *results_table(probe)]


def listing(probes: Iterable[Mapping[str, Any]]) -> list[str]:
    """The job's probe runs, one line each."""
    rows = []
    for probe in probes:
        budget = probe.get("budget") or {}
        evaluation = probe.get("eval") or {}
        rows.append(
            [
                str(probe.get("id")),
                str(probe.get("status")),
                progress_text(probe),
                str(len(probe.get("conditions") or [])),
                str(budget.get("seeds", "-")),
                str(budget.get("steps", "-")),
                f"{evaluation.get('n_items', '?')} {evaluation.get('source', '')}".strip(),
                str(probe.get("created_at") or "-")[:19].replace("T", " "),
            ]
        )
    return table(LISTING_HEADER, rows)


class ProbeProgress:
    """A progress callback for a probe run: a bar on a terminal (fraction = `progress.fraction`), else a line per
    change, prefixed with `prefix` (e.g. `frontier jobs: `)."""

    def __init__(self, stream: TextIO, prefix: str) -> None:
        self.stream = stream
        self.prefix = prefix
        self.bar: ProgressBar | None = None
        self._last: tuple[Any, ...] | None = None

    def __call__(self, probe: Mapping[str, Any]) -> None:
        """Redraw for the latest state of the run."""
        progress = probe.get("progress") or {}
        steps = int(progress.get("steps_total") or 0)
        done = round(fraction(probe) * steps)
        if self.bar is None:
            self.bar = ProgressBar(steps or None, self.stream, label="", unit="steps", done=done)
        tasks = f"{progress.get('tasks_done', 0)}/{progress.get('tasks_total', 0)} tasks"
        self.bar.label = f"probe {probe.get('id')} {probe.get('status')} {tasks}"
        self.bar.update(done, steps or None)
        state = (probe.get("status"), progress.get("tasks_done"), progress.get("steps_done"))
        if not self.bar.enabled and state != self._last:
            line = f"probe {probe.get('id')} {probe.get('status')}: {progress_text(probe)}"
            print(f"{self.prefix}{line}", file=self.stream)
        self._last = state

    def close(self) -> None:
        """End the bar's line."""
        if self.bar is not None:
            self.bar.close()
