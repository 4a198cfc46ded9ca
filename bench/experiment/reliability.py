"""`python -m bench.experiment.reliability`: how far a run's truth agrees with itself, and what that caps.

A seed's truth is each teacher's mean exact match over several full fine-tunes (`--truth-draws`, one data order
each). Every draw is itself a full fine-tune of every teacher, the costliest recommendation there is (one whole
fine-tune per teacher, against the probe's fifth), so the draws measure how well any recommendation can do:

- **one full fine-tune per teacher**: leave one draw out, name its first teacher, and judge it against the mean
  of the other draws; averaged over the draw left out (a tie for first counts as a coin among the tied);
- **the probe**, judged against exactly the same left-out means, so the two are compared on equal terms;
- with four draws or more, **the two halves** (the first half of the draws, what `make experiment` measures with
  `--truth-draws 2`, and the second half): two independent truths of the published kind, and whether they name
  the same first teacher.

Reads `OUT/results.json` of a run with `--truth-draws` 2 or more; prints one Markdown table per family.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean
from typing import Any

from bench.experiment.report import best_teachers, ranking_text

SPLIT = "in_distribution"


@dataclass(frozen=True, slots=True)
class SeedAgreement:
    """One seed's truth against itself, and the probe's first teacher against the same truths."""

    seed: int
    draws: int
    # Each draw's own first teacher(s): several where a draw ties.
    draw_firsts: list[list[str]]
    # The mean over every draw: the steadiest truth the run has.
    all_draws: dict[str, float]
    probe_first: str | None
    # The report's own verdict on that first place (`probe.conclusive`; None without a probe).
    conclusive: bool | None
    # The first and second half of the draws (None with fewer than four draws).
    halves: tuple[dict[str, float], dict[str, float]] | None
    # One full fine-tune per teacher (a left-out draw) against the other draws' mean: expected top-1 in [0, 1].
    one_fine_tune: float
    # The probe's first teacher against the same left-out means (None without a probe).
    probe: float | None
    # What following each costs: the best teacher's exact match minus the pick's, in the same left-out means
    # (points of exact match, 0 when the pick is a best teacher).
    one_fine_tune_regret: float
    probe_regret: float | None

    @property
    def halves_agree(self) -> bool | None:
        """Whether the two halves' truths share a first teacher (None with fewer than four draws)."""
        if self.halves is None:
            return None
        return bool(set(best_teachers(self.halves[0])) & set(best_teachers(self.halves[1])))

    def probe_right(self, truth: dict[str, float]) -> bool | None:
        """Whether the probe's first teacher is a best teacher of `truth` (None without a probe)."""
        return None if self.probe_first is None else self.probe_first in best_teachers(truth)


def draw_scores(seed: dict[str, Any]) -> dict[str, list[float]]:
    """Each teacher's in-distribution exact match per full fine-tune draw, in the seed's condition order."""
    scores: dict[str, list[float]] = {}
    for name, result in seed["conditions"].items():
        if not name.startswith("teacher:"):
            continue
        draws = result.get("draws")
        if not draws:
            raise ValueError(f"seed {seed['seed']}: {name} has one fine-tune; run with --truth-draws 2 or more")
        scores[name.removeprefix("teacher:")] = [draw["accuracy"][SPLIT] for draw in draws]
    if len({len(values) for values in scores.values()}) > 1:
        raise ValueError(f"seed {seed['seed']}: the teachers have different numbers of draws")
    return scores


def _mean_over(scores: dict[str, list[float]], draws: Sequence[int]) -> dict[str, float]:
    return {teacher: fmean(values[k] for k in draws) for teacher, values in scores.items()}


def _hit(named: Sequence[str], truth: dict[str, float]) -> float:
    """The chance that a pick among `named` (a coin between tied names) is a best teacher of `truth`."""
    bests = set(best_teachers(truth))
    return sum(name in bests for name in named) / len(named)


def _regret(named: Sequence[str], truth: dict[str, float]) -> float:
    """How far below the best teacher of `truth` a pick among `named` trains, on average over the tied names."""
    return max(truth.values()) - fmean(truth[name] for name in named)


def seed_agreement(seed: dict[str, Any]) -> SeedAgreement:
    """A seed's truth against itself (leave one draw out; halves with four draws or more) and the probe against it."""
    scores = draw_scores(seed)
    n = len(next(iter(scores.values())))
    if n < 2:
        raise ValueError(f"seed {seed['seed']}: one draw cannot be checked against itself")
    firsts = [best_teachers({teacher: values[k] for teacher, values in scores.items()}) for k in range(n)]
    ranking = (seed.get("report") or {}).get("ranking") or []
    probe_first = ranking[0] if ranking and seed.get("probe") else None
    verdict = (seed.get("report") or {}).get("probe") or {}
    left_out = [_mean_over(scores, [j for j in range(n) if j != k]) for k in range(n)]
    half = n // 2
    return SeedAgreement(
        seed=seed["seed"],
        draws=n,
        draw_firsts=firsts,
        all_draws=_mean_over(scores, range(n)),
        probe_first=probe_first,
        conclusive=verdict.get("conclusive") if probe_first is not None else None,
        halves=(_mean_over(scores, range(half)), _mean_over(scores, range(half, 2 * half))) if n >= 4 else None,
        one_fine_tune=fmean(_hit(firsts[k], left_out[k]) for k in range(n)),
        probe=None if probe_first is None else fmean(_hit([probe_first], truth) for truth in left_out),
        one_fine_tune_regret=fmean(_regret(firsts[k], left_out[k]) for k in range(n)),
        probe_regret=None if probe_first is None else fmean(_regret([probe_first], truth) for truth in left_out),
    )


def _yes(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def _verdict(conclusive: bool | None) -> str:
    return "" if conclusive is None else (" (conclusive)" if conclusive else " (inconclusive)")


def _order(truth: dict[str, float]) -> str:
    order = sorted(truth, key=lambda t: (-truth[t], t))
    return ranking_text(order, truth) + " (" + ", ".join(f"{100 * truth[t]:.1f}" for t in order) + ")"


def family_table(name: str, rows: Sequence[SeedAgreement]) -> str:
    """One family's seeds: the truth of each half, of every draw, and who names its first teacher how often."""
    lines = [
        f"### {name}",
        "",
        "| seed | first teacher per draw | first half's truth | second half's truth | halves agree "
        "| all draws' truth | probe's first (verdict): right vs first half / second half / all "
        "| one full fine-tune per teacher, top-1 vs the other draws (points below the best) "
        "| the probe, vs the same |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        first_half, second_half = row.halves if row.halves is not None else (None, None)
        lines.append(
            f"| {row.seed} | {', '.join('='.join(f) for f in row.draw_firsts)} "
            f"| {'-' if first_half is None else _order(first_half)} "
            f"| {'-' if second_half is None else _order(second_half)} | {_yes(row.halves_agree)} "
            f"| {_order(row.all_draws)} | {row.probe_first or '-'}{_verdict(row.conclusive)}: "
            f"{_yes(None if first_half is None else row.probe_right(first_half))} / "
            f"{_yes(None if second_half is None else row.probe_right(second_half))} / "
            f"{_yes(row.probe_right(row.all_draws))} "
            f"| {100 * row.one_fine_tune:.0f}% ({100 * row.one_fine_tune_regret:.1f}) "
            f"| {'-' if row.probe is None else f'{100 * row.probe:.0f}% ({100 * (row.probe_regret or 0.0):.1f})'} |"
        )
    return "\n".join(lines) + f"\n\nOver {summary(rows)}\n"


def summary(rows: Sequence[SeedAgreement]) -> str:
    """Totals over seeds: expected top-1 counts of each recommender, and how often the halves agree."""
    halves = [row.halves_agree for row in rows if row.halves_agree is not None]
    probed = [row.probe for row in rows if row.probe is not None]
    text = f"{len(rows)} seeds: one full fine-tune per teacher names the other draws' best teacher in " + (
        f"{sum(row.one_fine_tune for row in rows):.1f} of {len(rows)} (expected; its pick trains "
        f"{100 * fmean(row.one_fine_tune_regret for row in rows):.1f} points below the best on average)"
    )
    if probed:
        regret = fmean(row.probe_regret or 0.0 for row in rows if row.probe is not None)
        text += f"; the probe in {sum(probed):.1f} of {len(probed)} ({100 * regret:.1f} points below)"
    if halves:
        text += f"; the two halves' truths share a first teacher in {sum(halves)} of {len(halves)}"
    for verdict, label in ((True, "conclusive"), (False, "inconclusive")):
        judged = [row.probe for row in rows if row.probe is not None and row.conclusive is verdict]
        if judged:
            text += f"; {label} probe verdicts right in {sum(judged):.1f} of {len(judged)}"
    return text + "."


def main(argv: Sequence[str] | None = None) -> int:
    """Print each family's table for every `--out` run given."""
    parser = argparse.ArgumentParser(prog="python -m bench.experiment.reliability", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, nargs="+", required=True, help="run folders holding results.json")
    args = parser.parse_args(argv)
    everything: list[SeedAgreement] = []
    for out in args.out:
        results = json.loads((out / "results.json").read_text())
        for family, run in results["families"].items():
            rows = [seed_agreement(seed) for seed in run["seeds"]]
            print(family_table(family, rows))
            everything += rows
    if len(everything) > 3:
        print(f"All families, over {summary(everything)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
