"""`python -m bench.experiment.followup`: where the default probe was inconclusive, run the follow-up it suggests.

Reads OUT/results.json of a finished `python -m bench.experiment` run (synthetic mode). For each (family, seed)
whose report called its probe verdict inconclusive, it runs the follow-up on that seed's own job as a user would:
`frontier serve` on a copy of the job's embedded state, `POST /v1/jobs/{id}/probes` with the report's
`probe.follow_up` (for a run stored before reports carried it, the same rule, `core.probes.follow_up_params`,
applied to the stored verdict: the contenders alone, the same budget for twice the steps), then the job's report,
which ranks by the follow-up and the first run together. It compares that `ranking[0]` with the seed's best full
fine-tune; a conclusive seed keeps its first verdict. Prints a table per family; writes OUT/followup.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.experiment.pipeline import follow_up_on_job
from bench.experiment.report import best_teachers, teacher_tokens, teacher_truth
from core.probes import follow_up_params


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m bench.experiment.followup", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="a finished experiment's output directory")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="probe generation length (default: run's)")
    return parser.parse_args(argv)


def suggested_follow_up(seed: dict[str, Any]) -> dict[str, Any] | None:
    """The follow-up a seed's report suggests (None when its verdict was conclusive or it had no probe)."""
    evidence = (seed.get("report") or {}).get("probe") or {}
    if not evidence or evidence.get("conclusive", True):
        return None
    if "follow_up" in evidence:
        follow_up: dict[str, Any] | None = evidence["follow_up"]
        return follow_up
    return follow_up_params(seed["probe"]["budget"], evidence.get("contenders") or [])


def run_seed(work: Path, seed: dict[str, Any], dest: Path, max_new_tokens: int | None) -> dict[str, Any]:
    """One seed: its first verdict, and the job's ranking after the follow-up when there is one."""
    truth = teacher_truth(seed)
    full_tokens = teacher_tokens(seed)
    report = seed.get("report") or {}
    first = (report.get("ranking") or [None])[0]
    entry: dict[str, Any] = {
        "seed": seed["seed"],
        "truth": truth,
        "best": best_teachers(truth),
        "first": first,
        "conclusive": (report.get("probe") or {}).get("conclusive"),
        "share": seed["probe"]["cost"]["tokens"] / full_tokens if seed.get("probe") and full_tokens else None,
        "follow_up": None,
        "after": first,
        "follow_up_share": 0.0,
    }
    params = suggested_follow_up(seed)
    if params is None:
        return entry
    if max_new_tokens is not None:
        params = {**params, "max_new_tokens": max_new_tokens}
    probe, followed = follow_up_on_job(work / "curate", seed["job_id"], params, dest)
    entry.update(
        follow_up=params,
        after=followed["ranking"][0],
        after_conclusive=(followed.get("probe") or {}).get("conclusive"),
        exact_match={
            result["condition"].removeprefix("teacher:"): result["exact_match"]["mean"] for result in probe["results"]
        },
        follow_up_share=probe["cost"]["tokens"] / full_tokens if full_tokens else None,
    )
    return entry


def table(family: str, seeds: list[dict[str, Any]]) -> str:
    """Per seed: the first verdict, the follow-up's, each against the best full fine-tune, and what both cost."""
    lines = [
        f"### {family}: the default probe, then its follow-up where it was inconclusive",
        "",
        "| seed | best full fine-tune | probe ranking[0] | follow-up (steps: exact match) | ranking[0] after "
        "| top-1 | cost share (probe + follow-up) |",
        "|---|---|---|---|---|---|---|",
    ]
    for seed in seeds:
        if seed["follow_up"] is None:
            follow_up = "- (conclusive)" if seed["conclusive"] else "-"
        else:
            shown = ", ".join(f"{teacher} {value:.0%}" for teacher, value in seed["exact_match"].items())
            follow_up = f"{seed['follow_up']['steps']}: {shown}"
        share, extra = seed["share"] or 0.0, seed["follow_up_share"] or 0.0
        verdict = "" if seed["conclusive"] else " (inconclusive)"
        lines.append(
            f"| {seed['seed']} | {' = '.join(seed['best'])} | {seed['first']}{verdict} "
            f"| {follow_up} | {seed['after']} | {'yes' if seed['after'] in seed['best'] else 'no'} "
            f"| {share:.1%} + {extra:.1%} = {share + extra:.1%} |"
        )
    before = sum(seed["first"] in seed["best"] for seed in seeds)
    after = sum(seed["after"] in seed["best"] for seed in seeds)
    lines += ["", f"Top-1: {before} of {len(seeds)} with the probe alone, {after} of {len(seeds)} after follow-ups."]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suggested follow-ups of the experiment in `--out` and print the tables."""
    args = parse_args(argv)
    out = args.out.resolve()
    results = json.loads((out / "results.json").read_text())
    summary: dict[str, Any] = {"families": {}}
    text = []
    for family, data in results["families"].items():
        seeds = []
        for seed in data["seeds"]:
            name = f"seed-{seed['seed']}"
            seeds.append(run_seed(out / family / name, seed, out / "followup" / family / name, args.max_new_tokens))
        summary["families"][family] = seeds
        text.append(table(family, seeds))
    (out / "followup.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("\n".join(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
