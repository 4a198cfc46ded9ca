"""Aggregate per-seed results into the table (Markdown) and the accuracy plot (a self-contained SVG)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from statistics import fmean, stdev
from typing import Any


@dataclass(frozen=True, slots=True)
class Row:
    """One condition's figures across seeds."""

    condition: str
    size: float
    composition: dict[str, float]
    accuracy: dict[str, list[float]]

    def mean(self, split: str) -> float:
        """Mean accuracy over seeds."""
        return fmean(self.accuracy[split])

    def spread(self, split: str) -> float:
        """Sample standard deviation over seeds (0 with one seed)."""
        values = self.accuracy[split]
        return stdev(values) if len(values) > 1 else 0.0


def teacher_truth(seed: dict[str, Any]) -> dict[str, float]:
    """A seed's truth: each teacher's full fine-tune in-distribution exact match, in the seed's condition order."""
    return {
        name.removeprefix("teacher:"): result["eval"]["in_distribution"]["accuracy"]
        for name, result in seed["conditions"].items()
        if name.startswith("teacher:")
    }


def _tied(a: float, b: float) -> bool:
    """Equal scores: the same mean of the same eval problems, up to floating-point summation order."""
    return math.isclose(a, b, rel_tol=0.0, abs_tol=1e-9)


def best_teachers(truth: dict[str, float]) -> list[str]:
    """The teachers whose full fine-tune scored best: several when their scores are equal.

    An exact tie has no single best teacher, so a recommendation of any of them names "the teacher whose full
    fine-tune scored best"; breaking it by name would count a coin of the alphabet as a miss.
    """
    best = max(truth.values())
    return [teacher for teacher, value in truth.items() if _tied(value, best)]


def ranking_text(order: Sequence[str], values: dict[str, float]) -> str:
    """Teachers best first, `=` between equal scores and `>` elsewhere."""
    text = order[0] if order else ""
    for before, teacher in itertools.pairwise(order):
        text += f" {'=' if _tied(values[before], values[teacher]) else '>'} {teacher}"
    return text


def teacher_tokens(seed: dict[str, Any]) -> int:
    """The tokens of a seed's full per-teacher fine-tunes together: what a probe's cost share is measured against."""
    return sum(
        result["train"].get("tokens", 0) for name, result in seed["conditions"].items() if name.startswith("teacher:")
    )


def aggregate(seeds: Sequence[dict[str, Any]]) -> list[Row]:
    """One row per condition, in the first seed's condition order, averaged over every seed that ran it."""
    rows: list[Row] = []
    for condition in seeds[0]["conditions"]:
        runs = [seed["conditions"][condition] for seed in seeds if condition in seed["conditions"]]
        splits = list(runs[0]["eval"])
        sources = sorted({source for run in runs for source in run["composition"]})
        rows.append(
            Row(
                condition=condition,
                size=fmean(run["train"]["examples"] for run in runs),
                composition={s: fmean(run["composition"].get(s, 0) for run in runs) for s in sources},
                accuracy={split: [run["eval"][split]["accuracy"] for run in runs] for split in splits},
            )
        )
    return rows


def _percent(value: float) -> str:
    return f"{100 * value:.1f}"


def markdown_table(rows: Sequence[Row], n_seeds: int) -> str:
    """The results table: accuracy in percent, mean ± sample standard deviation over seeds."""
    splits = list(rows[0].accuracy)
    header = ["condition", "train examples", "sources (mean count)"] + [
        f"{split.replace('_', '-')} exact match % (mean ± sd, n={n_seeds})" for split in splits
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        sources = ", ".join(f"{name} {count:.0f}" for name, count in row.composition.items() if round(count)) or "-"
        cells = [f"`{row.condition}`", f"{row.size:.0f}", sources]
        cells += [f"{_percent(row.mean(split))} ± {_percent(row.spread(split))}" for split in splits]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


COLOURS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52")


def svg_plot(rows: Sequence[Row], title: str) -> str:
    """Grouped bars of mean accuracy per condition and split, ± sd whiskers and one dot per seed."""
    splits = list(rows[0].accuracy)
    width, height = 120 + 90 * len(rows), 380
    left, right, top, bottom = 60, 20, 40, 110
    plot_w, plot_h = width - left - right, height - top - bottom
    group = plot_w / len(rows)
    bar = group * 0.7 / len(splits)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="13">{escape(title)}</text>',
    ]

    def y(value: float) -> float:
        return top + plot_h * (1 - value)

    for tick in range(0, 101, 20):
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(tick / 100):.1f}" y2="{y(tick / 100):.1f}" stroke="#ddd"/>'
        )
        parts.append(f'<text x="{left - 6}" y="{y(tick / 100) + 4:.1f}" text-anchor="end">{tick}%</text>')
    for index, row in enumerate(rows):
        x0 = left + group * index + group * 0.15
        for s, split in enumerate(splits):
            x = x0 + bar * s
            mean, spread = row.mean(split), row.spread(split)
            colour = COLOURS[s % len(COLOURS)]
            parts.append(
                f'<rect x="{x:.1f}" y="{y(mean):.1f}" width="{bar * 0.92:.1f}" height="{plot_h * mean:.1f}" '
                f'fill="{colour}"><title>{escape(row.condition)} {split}: {_percent(mean)}%</title></rect>'
            )
            centre = x + bar * 0.46
            low, high = max(0.0, mean - spread), min(1.0, mean + spread)
            parts.append(
                f'<line x1="{centre:.1f}" x2="{centre:.1f}" y1="{y(low):.1f}" y2="{y(high):.1f}" stroke="black"/>'
            )
            for value in row.accuracy[split]:
                if not math.isnan(value):
                    parts.append(f'<circle cx="{centre:.1f}" cy="{y(value):.1f}" r="2" fill="black"/>')
        label_x, label_y = left + group * (index + 0.5), top + plot_h + 14
        parts.append(
            f'<text x="{label_x:.1f}" y="{label_y}" text-anchor="end" '
            f'transform="rotate(-35 {label_x:.1f} {label_y})">{escape(row.condition)}</text>'
        )
    for s, split in enumerate(splits):
        lx = left + 10 + 170 * s
        parts.append(f'<rect x="{lx}" y="{height - 18}" width="10" height="10" fill="{COLOURS[s % len(COLOURS)]}"/>')
        parts.append(
            f'<text x="{lx + 14}" y="{height - 9}">{escape(split)} (bar: mean, line: ± sd, dots: seeds)</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
