"""`python -m bench.experiment`: the weak- vs strong-teacher experiment, end to end, then the table and plot.

Synthetic mode (default, CPU): per seed, build the task data, curate it with `frontier curate` and every
registered policy, fine-tune copies of the pre-trained character-level student on each condition for the same
number of optimiser steps, and score exact match on held-out problems in distribution and one digit harder.

Real mode (GPU): `--student DIR --data FILE --eval-set NAME=FILE ...` runs the same stages on a local Hugging
Face checkpoint, a dataset with several teachers' refinements, and held-out JSONL files of
{"instruction", "input", "answer"}; see docs/experiment.md for the recipe.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import multiprocessing
import re
import sys
import time
from collections.abc import Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.experiment.families import FAMILIES, PUBLISHED
from bench.experiment.pipeline import (
    REPO_ROOT,
    conditions,
    configure_logging,
    curate,
    init_fine_tune_process,
    load_candidates,
    mean_of_draws,
    read_jsonl,
    run_condition,
)
from bench.experiment.report import (
    aggregate,
    best_teachers,
    markdown_table,
    ranking_text,
    svg_plot,
    teacher_tokens,
    teacher_truth,
)
from bench.experiment.student import (
    MIN_NEW_TOKENS,
    EvalItem,
    Example,
    FineTunePlan,
    StudentPlan,
    evaluate,
    longest_texts,
    new_tokens_for,
    pretrain_student,
    student_positions,
)
from examples.make_dataset import write_jsonl

log = logging.getLogger("bench.experiment")

DOC = REPO_ROOT / "docs" / "experiment.md"
# The regions of DOC a run's tables replace: the published families' table, or one per check family.
TABLE, CHECK_TABLE = "experiment-table", "check-table"
# The split the truth is read on: held-out problems of the training distribution.
SPLIT = "in_distribution"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m bench.experiment", description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--families",
        nargs="+",
        choices=sorted(FAMILIES),
        default=list(PUBLISHED),
        help=f"task families (default: {' '.join(PUBLISHED)}; check families: "
        f"{' '.join(sorted(set(FAMILIES) - set(PUBLISHED)))})",
    )
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "out" / "experiment")
    parser.add_argument("--policies", nargs="*", default=None, help="policy names (default: every registered one)")
    parser.add_argument("--steps", type=int, default=FineTunePlan().steps, help="optimiser steps per fine-tune")
    parser.add_argument("--batch-size", type=int, default=FineTunePlan().batch_size)
    parser.add_argument("--lr", type=float, default=FineTunePlan().peak_lr)
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=None,
        help=f"generation length (default: room for the family's longest response, at least {MIN_NEW_TOKENS})",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads per fine-tune (1 is fastest on a busy machine)"
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="fine-tunes run at once, each in its own process with --threads threads"
    )
    parser.add_argument(
        "--truth-draws",
        type=int,
        default=2,
        help="fine-tunes per teacher condition and seed, each on its own data order; the truth is their mean",
    )
    parser.add_argument("--keep-models", action="store_true", help="keep every fine-tuned checkpoint")
    parser.add_argument(
        "--probe-params",
        default="{}",
        help="probe run parameters for `frontier curate --probe` as JSON (default {}: the product's default budget)",
    )
    parser.add_argument("--no-probe", action="store_true", help="curate without a probe run")
    parser.add_argument("--write-docs", action="store_true", help="update the table and plot in docs/")
    parser.add_argument("--report-only", action="store_true", help="redraw the table and plot from OUT/results.json")
    synthetic = parser.add_argument_group("synthetic task (default)")
    synthetic.add_argument("--train", type=int, default=400, help="training prompts per seed")
    synthetic.add_argument("--eval", type=int, default=200, help="held-out problems per split")
    synthetic.add_argument("--weak-error-rate", type=float, default=0.1)
    synthetic.add_argument("--pretrain-steps", type=int, default=StudentPlan().steps)
    real = parser.add_argument_group("real student and dataset (GPU recipe)")
    real.add_argument("--student", type=Path, default=None, help="local Hugging Face checkpoint directory")
    real.add_argument("--data", type=Path, default=None, help="dataset with refinements (any layout the product reads)")
    real.add_argument("--eval-set", action="append", default=[], metavar="NAME=FILE", help="held-out JSONL split")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.threads < 1 or args.truth_draws < 1:
        parser.error("--jobs, --threads and --truth-draws must be at least 1")
    if (args.student is None) != (args.data is None) or (args.student is not None and not args.eval_set):
        parser.error("real mode needs --student, --data and at least one --eval-set")
    return args


def _eval_items(path: Path) -> list[EvalItem]:
    return [EvalItem(row["instruction"], row.get("input", ""), str(row["answer"])) for row in read_jsonl(path)]


def run_seed(
    args: argparse.Namespace, family: str, seed: int, plan: FineTunePlan, pool: Executor | None = None
) -> dict[str, Any]:
    """Every stage for one seed of one task family; returns its results.

    With a `pool`, the conditions' fine-tunes run in its processes; each seeds its own data order and weights, so
    the results are those of a run without one (up to the floating-point order of a different thread count).
    """
    work = args.out / family / f"seed-{seed}"
    started = time.perf_counter()
    max_new_tokens = args.max_new_tokens
    if args.student is not None:
        student, data = args.student.resolve(), args.data.resolve()
        evaluation = {name: _eval_items(Path(path)) for name, path in (spec.split("=", 1) for spec in args.eval_set)}
        max_new_tokens = MIN_NEW_TOKENS if max_new_tokens is None else max_new_tokens
    else:
        task = FAMILIES[family].build(seed, n_train=args.train, n_eval=args.eval, weak_error_rate=args.weak_error_rate)
        longest_text, longest_response = longest_texts(task.records)
        plan_student = StudentPlan(steps=args.pretrain_steps, n_positions=student_positions(longest_text))
        if plan_student.n_positions != StudentPlan().n_positions:
            log.info(
                "seed %d: %s's longest training text has %d tokens; the student gets %d positions",
                seed,
                family,
                longest_text,
                plan_student.n_positions,
            )
        student = pretrain_student(work / "student", seed, plan_student, family)
        max_new_tokens = new_tokens_for(longest_response) if max_new_tokens is None else max_new_tokens
        data = write_jsonl(work / "refinements.jsonl", task.records)
        evaluation = {
            split: [EvalItem(p.instruction, "", p.answer) for p in problems]
            for split, problems in task.evaluation.items()
        }
    pretrained_at = time.perf_counter()
    probe = None if args.no_probe else json.loads(args.probe_params)
    curated = curate(data, student, work / "curate", args.policies, probe)
    log.info("seed %d: curated in %.0fs (job %s)", seed, curated.seconds, curated.job_id)
    baseline_started = time.perf_counter()
    baseline = {
        split: evaluate(student, items, max_new_tokens=max_new_tokens, device=args.device)
        for split, items in evaluation.items()
    }
    # The student as it is: the floor every condition should beat, and what a policy that keeps nothing leaves.
    results: dict[str, Any] = {
        "student": {
            "composition": {},
            "train": {"examples": 0, "seconds": 0.0},
            "eval": baseline,
            "eval_seconds": round(time.perf_counter() - baseline_started, 1),
        }
    }
    pending: dict[str, tuple[dict[str, int], list[Future[dict[str, Any]]]]] = {}
    # A condition whose training set is an earlier one's (the allow-list of one teacher is that teacher's
    # refinements) shares its fine-tunes: the same examples, order and seed would train the same model again.
    trained: dict[tuple[Example, ...], str] = {}
    same: dict[str, tuple[dict[str, int], str]] = {}
    for name, (examples, composition) in conditions(load_candidates(data), curated).items():
        # A placeholder keeps the table's condition order; the result fills it in below.
        results[name] = {}
        if not examples:
            log.warning("seed %d: %s retained nothing; reported as the untouched student", seed, name)
            results[name] = {**results["student"], "composition": composition}
            continue
        if tuple(examples) in trained:
            same[name] = (composition, trained[tuple(examples)])
            continue
        trained[tuple(examples)] = name
        call = (name, examples, student, evaluation, work / "models", plan, seed)
        options = {"max_new_tokens": max_new_tokens, "device": args.device, "keep_model": args.keep_models}
        # The truth the recommendation is checked against is each teacher's full fine-tune: measured over
        # `truth_draws` data orders, since one order alone can swap two close teachers (docs/experiment.md).
        draws = args.truth_draws if name.startswith("teacher:") else 1
        executor = pool if pool is not None else _Inline()
        pending[name] = (composition, [executor.submit(run_condition, *call, **options, draw=k) for k in range(draws)])
    for name, (composition, futures) in pending.items():
        outcomes = [future.result() for future in futures]
        results[name] = {"composition": composition, **(outcomes[0] if len(outcomes) == 1 else mean_of_draws(outcomes))}
    for name, (composition, source) in same.items():
        results[name] = {**results[source], "composition": composition, "same_as": source}
    return {
        "seed": seed,
        "student": str(student),
        "job_id": curated.job_id,
        "teacher_scores": curated.teacher_scores,
        "report": curated.report,
        "probe": _probe_summary(curated.probe),
        "conditions": results,
        "seconds": {
            "student_and_data": round(pretrained_at - started, 1),
            "curate": curated.seconds,
            "total": round(time.perf_counter() - started, 1),
        },
    }


class _Inline(Executor):
    """An executor that runs each call at once, in this process (the experiment without `--jobs`)."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Run `fn` now; its result (or exception) is in the returned future."""
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as error:  # handed to the caller through the future, as a pool does
            future.set_exception(error)
        return future


def _probe_summary(probe: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the tables need of a probe run: its budget, cost and each condition's exact match and tokens."""
    if probe is None:
        return None
    return {
        "id": probe["id"],
        "status": probe["status"],
        "budget": probe["budget"],
        "eval": probe["eval"],
        "cost": probe["cost"],
        # The learning rate the engine used (the budget's is None: chosen for the student).
        "peak_lr": next(
            (seed["cost"]["peak_lr"] for r in probe["results"] for seed in r["seeds"] if seed.get("cost")), None
        ),
        "conditions": {
            result["condition"]: {
                "exact_match": result["exact_match"]["mean"],
                "exact_match_sd": result["exact_match"]["sd"],
                "loss": result["loss"]["mean"],
                "tokens": sum((seed["cost"] or {}).get("tokens", 0) for seed in result["seeds"]),
            }
            for result in probe["results"]
        },
    }


def probe_table(seeds: Sequence[dict[str, Any]]) -> str:
    """Per seed: the report's recommendation (`frontier curate --probe`) against the full fine-tunes, and its cost.

    The truth is each teacher's `teacher:*` in-distribution exact match after the full fine-tune; the cost share is
    the whole probe run's tokens (every condition) over the tokens of the full per-teacher fine-tunes.
    """
    from service.jobs.report import sampling_noise

    lines = [
        "| seed | fine-tune ranking | fine-tune 1st - 2nd (noise) | probe ranking (exact match) "
        "| report ranking[0] (basis) | top-1 | ranking[0] within noise of the best | Spearman | probe cost share |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    right = decisive = decisive_right = tied_right = 0
    for seed in seeds:
        probe, report = seed.get("probe"), seed.get("report") or {}
        if probe is None:
            continue
        truth = teacher_truth(seed)
        teachers = list(truth)
        by_truth = sorted(teachers, key=lambda t: (-truth[t], t))
        bests = best_teachers(truth)
        probed = {t: probe["conditions"].get(f"teacher:{t}", {}).get("exact_match") for t in teachers}
        by_probe = sorted(teachers, key=lambda t: -(probed[t] or 0.0))
        rho = spearman([-truth[t] for t in teachers], [-(probed[t] or 0.0) for t in teachers])
        full_tokens = teacher_tokens(seed)
        share = probe["cost"]["tokens"] / full_tokens if full_tokens else None
        first = (report.get("ranking") or ["-"])[0]
        probe_order = " > ".join(f"{t} {100 * (probed[t] or 0):.0f}%" for t in by_probe)
        # The truth's own resolution: the same two-standard-error rule the report applies to a probe, on the
        # fine-tunes' eval problems. A first place inside it is a tie the eval set cannot break.
        n_eval = seed["conditions"][f"teacher:{by_truth[0]}"]["eval"]["in_distribution"]["n"]
        best = truth[by_truth[0]]
        gap = best - truth[by_truth[1]] if len(by_truth) > 1 else math.inf
        gap_noise = sampling_noise(best, truth[by_truth[1]], n_eval) if len(by_truth) > 1 else 0.0
        close = first in truth and best - truth[first] <= sampling_noise(best, truth[first], n_eval)
        right += first in bests
        tied_right += close
        if gap > gap_noise:
            decisive += 1
            decisive_right += first in bests
        # Which teacher each fine-tune draw alone would have put first: where they differ, one draw was a coin.
        draws = [seed["conditions"][f"teacher:{t}"].get("draws") for t in teachers]
        per_draw = ""
        if all(draws) and len({len(d) for d in draws}) == 1:
            firsts = []
            for k in range(len(draws[0])):
                scored = {t: seed["conditions"][f"teacher:{t}"]["draws"][k]["accuracy"][SPLIT] for t in teachers}
                # A tie for first names every teacher in it.
                firsts.append("=".join(t for t in teachers if scored[t] == max(scored.values())))
            per_draw = f" (per draw: {', '.join(firsts)})"
        lines.append(
            f"| {seed['seed']} | {ranking_text(by_truth, truth)}{per_draw} | {100 * gap:+.1f} (±{100 * gap_noise:.1f})"
            f"{'' if gap > gap_noise else ', a tie'} | {probe_order} | {first} ({report.get('ranking_basis')}) "
            f"| {'yes' if first in bests else 'no'} | {'yes' if close else 'no'} "
            f"| {'-' if rho is None else f'{rho:+.2f}'} | {'-' if share is None else f'{share:.1%}'} |"
        )
    run: dict[str, Any] | None = next((seed["probe"] for seed in seeds if seed.get("probe")), None)
    if run is None:
        return ""
    budget = run["budget"]
    lr = budget["peak_lr"] if budget["peak_lr"] is not None else run.get("peak_lr")
    chosen = "" if budget["peak_lr"] is not None else " chosen for the student"
    head = (
        f"The product's recommendation after `frontier curate --probe` (probe budget: {budget['steps']} steps of "
        f"{budget['batch_size']} examples, peak lr {lr}{chosen}, {budget['seeds']} seed(s), "
        f"{budget['held_out']} held-out samples), per seed:\n\n"
    )
    counted = len(lines) - 2
    n_draws = max(len(c.get("draws") or [None]) for seed in seeds for c in seed["conditions"].values())
    truth_note = (
        f"The truth is each teacher's mean exact match over {n_draws} full fine-tunes (data orders) per seed; the "
        "noise is two standard errors on one fine-tune's eval problems. "
        if n_draws > 1
        else ""
    )
    tail = (
        f"\n{truth_note}Top-1 (ranking[0] is a teacher whose full fine-tune scored best; `=` in a ranking is an "
        f"exact tie, where either counts): {right} of {counted}; where the full fine-tunes separate their first two "
        f"beyond the noise of their eval problems: {decisive_right} of {decisive}; ranking[0]'s full fine-tune "
        f"within that noise of the best: {tied_right} of {counted}.\n"
    )
    return head + "\n".join(lines) + "\n" + tail


def teacher_score_table(seeds: Sequence[dict[str, Any]]) -> str:
    """Mean student statistics per source over seeds, as the product reports them."""
    sources = list(seeds[0]["teacher_scores"])
    lines = [
        "| source | mean IFD | mean r-IFD | share with IFD < 1 | mean clipped rank | dataset RSR |",
        "|---|---|---|---|---|---|",
    ]

    def mean(values: list[dict[str, float]], key: str) -> str:
        found = [v[key] for v in values if v.get(key) is not None]
        return f"{sum(found) / len(found):.3f}" if found else "-"

    for source in sources:
        values = [seed["teacher_scores"][source] for seed in seeds if source in seed["teacher_scores"]]
        below = mean(values, "ifd_below_1")
        share = f"{100 * float(below):.0f}%" if below != "-" else "-"
        lines.append(
            f"| {source} | {mean(values, 'ifd')} | {mean(values, 'rifd')} | {share} | {mean(values, 'rank_mean')} "
            f"| {mean(values, 'rsr')} |"
        )
    return "\n".join(lines) + "\n" + signal_agreement(seeds)


def _ranks(values: Sequence[float]) -> list[float]:
    """Average ranks (1 = smallest), ties sharing the mean of their positions."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation (Pearson on average ranks); None when either side is constant."""
    rx, ry = _ranks(x), _ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    sx = sum((a - mx) ** 2 for a in rx) ** 0.5
    sy = sum((b - my) ** 2 for b in ry) ** 0.5
    if sx == 0 or sy == 0:
        return None
    return float(sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True)) / (sx * sy))


def signal_agreement(seeds: Sequence[dict[str, Any]]) -> str:
    """Per seed: does a score-only signal order the teachers as their full fine-tunes did (in distribution), and as
    the probe did?

    A signal's ranking is teachers by ascending value for RSR (lower = better, arXiv 2601.14249), by descending
    value for mean IFD (Cherry LLM's "harder is better"); the truth is each teacher's `teacher:*` exact match, the
    probe's is each `teacher:*` condition's exact match in the run `frontier curate --probe` made.
    """
    signals = (("dataset RSR (lower first)", "rsr", 1.0), ("mean IFD (higher first)", "ifd", -1.0))
    lines = [
        "",
        "Score-only teacher ranking against the full fine-tunes (in-distribution exact match) and the probe:",
        "",
    ]
    lines += [
        "| seed | fine-tune ranking | signal | its ranking | Spearman | top-1 | Spearman vs probe | top-1 vs probe |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for seed in seeds:
        truth = teacher_truth(seed)
        teachers = list(truth)
        by_truth = sorted(teachers, key=lambda t: (-truth[t], t))
        probe = (seed.get("probe") or {}).get("conditions", {})
        probed = {t: probe.get(f"teacher:{t}", {}).get("exact_match") for t in teachers}
        for label, key, sign in signals:
            values = {t: seed["teacher_scores"].get(t, {}).get(key) for t in teachers}
            if any(v is None for v in values.values()):
                continue
            scores = [sign * float(values[t] or 0.0) for t in teachers]
            ranked = sorted(teachers, key=lambda t: (sign * float(values[t] or 0.0), t))
            rho = spearman([-truth[t] for t in teachers], scores)
            versus = "- | -"
            if all(value is not None for value in probed.values()):
                by_probe = max(teachers, key=lambda t: probed[t] or 0.0)
                rho_probe = spearman([-(probed[t] or 0.0) for t in teachers], scores)
                versus = (
                    f"{'-' if rho_probe is None else f'{rho_probe:+.2f}'} | {'yes' if ranked[0] == by_probe else 'no'}"
                )
            top1 = "yes" if ranked[0] in best_teachers(truth) else "no"
            lines.append(
                f"| {seed['seed']} | {ranking_text(by_truth, truth)} | {label} | {' > '.join(ranked)} "
                f"| {'-' if rho is None else f'{rho:+.2f}'} | {top1} | {versus} |"
            )
    return "\n".join(lines) + "\n"


def family_block(name: str, family: dict[str, Any]) -> tuple[str, list[Any]]:
    """One task family's section of the results: its conditions table and its score-only signals."""
    seeds = family["seeds"]
    rows = aggregate(seeds)
    about = FAMILIES[name].summary if name in FAMILIES else "a user's own student and dataset"
    block = (
        f"### {name}\n\n{about[0].upper()}{about[1:]}.\n\n{markdown_table(rows, len(seeds))}\n"
        f"{probe_table(seeds)}\n"
        "Student statistics of each source on the training prompts (mean over seeds):\n\n"
        f"{teacher_score_table(seeds)}\n"
    )
    return block, rows


def write_reports(results: dict[str, Any], out: Path, write_docs: bool) -> str:
    """Write table.md and one accuracy plot per family under `out` (and into docs/ when asked); returns the text."""
    blocks: dict[str, str] = {}
    plots: dict[str, str] = {}
    for name, family in results["families"].items():
        blocks[name], rows = family_block(name, family)
        plots[name] = svg_plot(rows, f"{name}: exact match by training condition (held-out problems)")
    seeds = sorted({seed["seed"] for family in results["families"].values() for seed in family["seeds"]})
    footer = (
        f"\nSeeds {', '.join(map(str, seeds))}; {results['plan']['steps']} optimiser steps of "
        f"{results['plan']['batch_size']} examples per condition; wall time {results['seconds'] / 60:.1f} min "
        f"({results['command']}).\n"
    )
    block = "\n".join(blocks.values()) + footer
    (out / "table.md").write_text(block)
    for name, plot in plots.items():
        (out / f"accuracy-{name}.svg").write_text(plot)
        if write_docs:
            (DOC.parent / f"experiment-accuracy-{name}.svg").write_text(plot)
    if write_docs and set(results["families"]) <= set(PUBLISHED):
        write_doc_region(TABLE, block)
    elif write_docs:
        for name, family_text in blocks.items():
            write_doc_region(f"{CHECK_TABLE}-{name}", family_text + footer)
    return block


def write_doc_region(region: str, block: str) -> None:
    """Replace DOC's `<!-- REGION:start -->` ... `<!-- REGION:end -->` with `block`; an error if DOC lacks it."""
    start, end = f"<!-- {region}:start -->", f"<!-- {region}:end -->"
    text = DOC.read_text()
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise SystemExit(f"{DOC} has no {start} ... {end} region to write the tables into")
    DOC.write_text(pattern.sub(lambda _: f"{start}\n{block}{end}", text))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the experiment and print the table."""
    import torch

    args = parse_args(argv)
    configure_logging()
    torch.set_num_threads(args.threads)
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        print(write_reports(json.loads((args.out / "results.json").read_text()), args.out, args.write_docs))
        return 0
    plan = FineTunePlan(steps=args.steps, batch_size=args.batch_size, peak_lr=args.lr)
    started = time.perf_counter()
    # A user's own student and dataset (real mode) is one family of its own.
    families = ["custom"] if args.student is not None else args.families
    # Fresh interpreters (spawn), not forks of one that holds torch's threads and the curation's state.
    pool = (
        ProcessPoolExecutor(
            args.jobs,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=init_fine_tune_process,
            initargs=(args.threads,),
        )
        if args.jobs > 1
        else None
    )
    try:
        runs = {
            family: {"seeds": [run_seed(args, family, seed, plan, pool) for seed in args.seeds]} for family in families
        }
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    results = {
        "command": "python -m bench.experiment " + " ".join(argv if argv is not None else sys.argv[1:]),
        "plan": asdict(plan),
        "jobs": args.jobs,
        "families": runs,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(write_reports(results, args.out, args.write_docs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
