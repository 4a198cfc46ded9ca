"""`python -m bench.experiment.prefix`: rank an experiment's teachers with a probe that runs a prefix of its recipe.

Reads OUT/results.json of a finished `python -m bench.experiment` run (synthetic mode). For each (family, seed) it
runs `frontier curate DATA --student DIR --probe` on that seed's data and student with the experiment's own
fine-tuning recipe (batch size, peak lr, warm-up; its length as the probe's `schedule_steps`) stopped at `--share`
of its steps, and compares the report's `ranking[0]` with the seed's best full fine-tune. Curve points fall every
fifth of the schedule, and each is what a shorter prefix of the same schedule would have measured, so one run
also gives the cheaper prefixes. Prints a table per family; writes OUT/prefix.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.experiment.pipeline import run_curate
from bench.experiment.report import best_teachers, teacher_tokens, teacher_truth


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m bench.experiment.prefix", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="a finished experiment's output directory")
    parser.add_argument("--share", type=float, default=0.6, help="share of the recipe's steps to run (0 < s <= 1)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="probe generation length (default: probe's)")
    args = parser.parse_args(argv)
    if not 0 < args.share <= 1:
        parser.error(f"--share must be in (0, 1], got {args.share}")
    return args


def prefix_budget(plan: dict[str, Any], share: float, max_new_tokens: int | None = None) -> dict[str, Any]:
    """The probe budget that runs the first `share` of `plan` (an experiment's FineTunePlan as a dict)."""
    schedule = int(plan["steps"])
    steps = max(1, round(share * schedule))
    budget: dict[str, Any] = {
        "steps": steps,
        "batch_size": int(plan["batch_size"]),
        "peak_lr": float(plan["peak_lr"]),
        # A probe needs fewer warm-up steps than steps; only a smoke-sized recipe is clamped.
        "warmup_steps": min(int(plan["warmup_steps"]), steps - 1),
        "schedule_steps": schedule,
        "eval_every": max(1, schedule // 5),
    }
    if max_new_tokens is not None:
        budget["max_new_tokens"] = max_new_tokens
    return budget


def first_at(curves: dict[str, list[tuple[int, float]]], step: int) -> list[str]:
    """The teachers with the highest exact match at `step` (several on a tie)."""
    values = {teacher: dict(curve).get(step) for teacher, curve in curves.items()}
    measured = {teacher: value for teacher, value in values.items() if value is not None}
    best = max(measured.values(), default=None)
    return sorted(teacher for teacher, value in measured.items() if value == best)


def run_seed(work: Path, seed: dict[str, Any], budget: dict[str, Any], dest: Path) -> dict[str, Any]:
    """One seed: the prefix probe through `frontier curate --probe`, its ranking and curves, and the seed's truth."""
    run_curate(work / "refinements.jsonl", Path(seed["student"]), dest, budget)
    report = json.loads((dest / "report.json").read_text())
    probe = json.loads((dest / "probe.json").read_text())
    truth = teacher_truth(seed)
    full_tokens = teacher_tokens(seed)
    curves = {
        result["condition"].removeprefix("teacher:"): [
            (point["step"], point["exact_match"]) for point in result["seeds"][0]["curve"]
        ]
        for result in probe["results"]
        if result["condition"].startswith("teacher:")
    }
    return {
        "seed": seed["seed"],
        "truth": truth,
        "best": best_teachers(truth),
        "ranking": report["ranking"],
        "conclusive": (report.get("probe") or {}).get("conclusive"),
        "cost_share": probe["cost"]["tokens"] / full_tokens if full_tokens else None,
        "curves": curves,
    }


def table(family: str, seeds: list[dict[str, Any]], budget: dict[str, Any]) -> str:
    """Top-1 against the full fine-tunes at every curve point of the prefix probe, per seed."""
    schedule = budget["schedule_steps"]
    steps = sorted({step for seed in seeds for curve in seed["curves"].values() for step, _ in curve if step > 0})
    lines = [
        f"### {family}: a prefix of the recipe ({budget['steps']} of {schedule} steps of {budget['batch_size']})",
        "",
        "| prefix (share of the recipe) | top-1 | first teacher per seed (exact match) |",
        "|---|---|---|",
    ]
    for step in steps:
        firsts = [first_at(seed["curves"], step) for seed in seeds]
        # Right when the probe's first is one teacher and the fine-tunes scored it best (alone or in an exact tie).
        hits = sum(len(first) == 1 and first[0] in seed["best"] for first, seed in zip(firsts, seeds, strict=True))
        shown = ", ".join(
            "/".join(first) + f" {dict(seed['curves'][first[0]]).get(step, 0):.0%}" if first else "-"
            for first, seed in zip(firsts, seeds, strict=True)
        )
        lines.append(f"| {step} of {schedule} ({step / schedule:.0%}) | {hits} of {len(seeds)} | {shown} |")
    final = sum(seed["ranking"][0] in seed["best"] for seed in seeds if seed["ranking"])
    shares = ", ".join(f"{seed['cost_share']:.1%}" for seed in seeds if seed["cost_share"] is not None)
    lines += [
        "",
        f"The report's ranking[0] at the last point: {final} of {len(seeds)} (best full fine-tune first); "
        f"probe tokens over the full per-teacher fine-tunes': {shares}.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the prefix probe on every seed of the experiment in `--out` and print the tables."""
    args = parse_args(argv)
    out = args.out.resolve()
    results = json.loads((out / "results.json").read_text())
    budget = prefix_budget(results["plan"], args.share, args.max_new_tokens)
    summary: dict[str, Any] = {"budget": budget, "families": {}}
    text = []
    for family, data in results["families"].items():
        seeds = []
        for seed in data["seeds"]:
            name = f"seed-{seed['seed']}"
            seeds.append(run_seed(out / family / name, seed, budget, out / "prefix" / family / name))
        summary["families"][family] = seeds
        text.append(table(family, seeds, budget))
    (out / "prefix.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("\n".join(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
