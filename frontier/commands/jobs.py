"""`frontier jobs submit|list|status|watch|samples|sample|export|report|decide|what-if|cancel|probe|probes`: the
server's shell.

Talks HTTP to a running `frontier serve` (frontier.client): the server is --server or FRONTIER_SERVER (default
http://127.0.0.1:8000), the API key --api-key or FRONTIER_API_KEY (needed when the server has keys on). A local
student directory or dataset path is sent as an absolute path, since the server resolves it on its own machine.

  JOB=$(frontier jobs submit examples/data/refinements.jsonl --student .cache/students/tiny --wait)
  frontier jobs submit /data/tulu3.jsonl.gz --by-reference --student /models/student   # read by the server
  frontier jobs export $JOB --out retained.parquet
  frontier jobs report $JOB
  PROBE=$(frontier jobs probe $JOB --steps 100 --seeds 3 --wait)    # learning curves per condition
  frontier jobs probes $JOB $PROBE

Exit codes: 0 done; 1 the server could not be reached, refused the key or failed (5xx); 2 bad input (arguments,
a file that cannot be read, a request the server refused: 403, 404, 409, 413, 422); 3 `watch`, `submit --wait` or
`probe --wait` on a job or probe run that ended failed or cancelled.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.templates import TEMPLATES

if TYPE_CHECKING:
    from frontier.client import Client, ExportFormat
    from service.jobs.schemas import JobOut, SampleOut

# A job still moving: poll often enough for a live bar, rarely enough to cost the server nothing.
POLL_SECONDS = 1.0
JOB_ENDED_BADLY = 3
# Table widths come from the first rows; later rows that are wider push their line out rather than wait for all.
TABLE_SAMPLE_ROWS = 200
# `frontier jobs sample` shows this much of each text unless --full: enough to recognise it, not a wall of it.
SAMPLE_TEXT_CHARS = 400


class _UsageError(Exception):
    """Bad arguments or an unreadable local file (exit 2)."""


def register(subparsers: Any) -> None:
    """Add the `jobs` subcommand and its actions."""
    parser = subparsers.add_parser(
        "jobs",
        help="submit, follow, inspect and download jobs on a Frontier server (HTTP client)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--server", default=None, help="server URL (default FRONTIER_SERVER, http://127.0.0.1:8000)")
    common.add_argument("--api-key", default=None, help="API key (default FRONTIER_API_KEY)")

    def action(name: str, handler: Callable[[Client, argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = actions.add_parser(name, parents=[common], help=help, description=help)
        sub.set_defaults(act=handler)
        return sub

    submit = action(
        "submit", _submit, "upload a dataset (streamed from disk) or name one on the server; prints the job id"
    )
    submit.add_argument(
        "data",
        type=Path,
        help="dataset: JSONL (gzip or not) or Parquet (native, Alpaca or chat layout); with --by-reference, its "
        "path on the server's machine",
    )
    submit.add_argument(
        "--by-reference",
        action="store_true",
        help="upload nothing: the server reads DATA itself (under its FRONTIER_DATASET_ROOTS), for files too big "
        "to upload",
    )
    submit.add_argument("--format", choices=("jsonl", "parquet"), default=None, help="default: by name, then content")
    submit.add_argument("--student", required=True, help="student checkpoint directory (on the server's machine)")
    submit.add_argument("--policy", default=None, help="decision policy (default: the server's, reflection)")
    submit.add_argument("--params", default=None, help="policy parameters as a JSON object")
    submit.add_argument("--template", choices=TEMPLATES, default=None, help="prompt template")
    submit.add_argument("--rank-clip", type=int, default=None, help="clip r of the token ranks behind RSR (100)")
    submit.add_argument("--idempotency-key", default=None, help="a retry with the same key returns the same job")
    submit.add_argument("--wait", action="store_true", help="follow the job to its end (as `watch`)")

    listing = action("list", _list, "jobs, newest first")
    listing.add_argument(
        "--status", choices=("ingesting", "queued", "running", "succeeded", "failed", "cancelled"), default=None
    )
    listing.add_argument("--limit", type=_positive_int, default=50, help="at most this many (default 50)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")

    status = action("status", _status, "a job's status, progress, counts, policy and student")
    status.add_argument("job", help="job id")
    status.add_argument("--json", action="store_true", help="the job as JSON")

    watch = action(
        "watch", _watch, "a live progress bar until the job ends, then a summary; exit 3 unless it succeeded"
    )
    watch.add_argument("job", help="job id")

    samples = action("samples", _samples, "sample decisions with the chosen candidate's scores, in input order")
    samples.add_argument("job", help="job id")
    samples.add_argument("--decision", choices=("retained", "rejected", "unscored"), default=None)
    samples.add_argument("--reason", default=None, help="a reason code, e.g. beyond_frontier")
    samples.add_argument("--teacher", default=None, help="samples that have a refinement by this teacher")
    samples.add_argument("--decision-set", type=int, default=None, help="a decision set id (default: the latest)")
    samples.add_argument("--limit", type=_positive_int, default=None, help="at most this many (default: all)")
    samples.add_argument("--json", action="store_true", help="one JSON object per sample, every candidate's scores")

    one = action("sample", _sample, "one sample: why it was kept or dropped, every candidate's scores and texts")
    one.add_argument("job", help="job id")
    one.add_argument("sample", help="sample id (the input's `id`)")
    one.add_argument("--decision-set", type=int, default=None, help="a decision set id (default: the latest)")
    one.add_argument("--full", action="store_true", help="whole texts (default: the first 400 characters)")
    one.add_argument("--json", action="store_true", help="the sample as JSON")

    export = action("export", _export, "download the curated dataset in the input's own layout")
    export.add_argument("job", help="job id")
    export.add_argument("--out", required=True, type=Path, help="file to write (appears only once complete)")
    export.add_argument(
        "--format", choices=("jsonl", "parquet"), default=None, help="default: from --out's suffix, else jsonl"
    )
    export.add_argument("--decision", choices=("retained", "rejected", "unscored", "all"), default="retained")
    export.add_argument("--scores", action="store_true", help="add each sample's decision and chosen scores")
    export.add_argument("--bundle", action="store_true", help="a zip of the data, manifest.json and dataset card")
    export.add_argument("--decision-set", type=int, default=None, help="a decision set id (default: the latest)")

    report = action("report", _report, "which teacher's outputs sit closest to the student's frontier")
    report.add_argument("job", help="job id")
    report.add_argument("--format", choices=("markdown", "json"), default="markdown")
    report.add_argument("--decision-set", type=int, default=None, help="a decision set id (default: the latest)")

    decide = action("decide", _decide, "re-decide a finished job under a policy (no rescoring); the new latest set")
    decide.add_argument("job", help="job id")
    decide.add_argument("--policy", required=True, help="policy name (reflection, ifd_topk, frontier_band, ...)")
    decide.add_argument("--params", default=None, help="policy parameters as a JSON object")
    decide.add_argument("--json", action="store_true", help="the decision set as JSON")

    what_if = action(
        "what-if", _what_if, "retained fraction and per-teacher acceptance over values of one policy parameter"
    )
    what_if.add_argument("job", help="job id")
    what_if.add_argument("--policy", required=True, help="policy name (reflection, ifd_topk, frontier_band, ...)")
    what_if.add_argument("--param", required=True, help="the parameter to sweep, e.g. high")
    what_if.add_argument("--values", required=True, help="comma-separated values, e.g. 0,0.84,1.5,2")
    what_if.add_argument("--params", default=None, help="the other parameters as a JSON object")
    what_if.add_argument("--json", action="store_true", help="the sweep as JSON")

    cancel = action("cancel", _cancel, "cancel a queued or running job (scores already computed are kept)")
    cancel.add_argument("job", help="job id")

    probe = action(
        "probe",
        _probe,
        "fine-tune a fresh copy of the job's student on each condition (each teacher; with --baselines also the "
        "originals and the union) for a short budget and measure exact match; prints the probe run's id",
    )
    probe.add_argument("job", help="job id (a succeeded job)")
    probe.add_argument(
        "--eval-set",
        type=Path,
        default=None,
        help="JSONL or Parquet of {instruction, input, answer[, response]} (default: hold out --held-out samples)",
    )
    probe.add_argument("--steps", type=_positive_int, default=None, help="optimiser steps per condition and seed")
    probe.add_argument("--seeds", type=_positive_int, default=None, help="how many seeds per condition")
    probe.add_argument("--batch-size", type=_positive_int, default=None, help="examples per step")
    probe.add_argument("--peak-lr", type=float, default=None, help="peak learning rate")
    probe.add_argument(
        "--warmup-steps",
        type=int,
        default=None,
        help="linear warm-up steps (default 10, or a tenth of --steps when that leaves too few)",
    )
    probe.add_argument(
        "--schedule-steps",
        type=_positive_int,
        default=None,
        help="learning-rate schedule length (default --steps); longer, the probe runs the first --steps of it: with "
        "your fine-tune's --batch-size, --peak-lr and --warmup-steps, a prefix of that fine-tune",
    )
    probe.add_argument("--eval-every", type=_positive_int, default=None, help="a learning-curve point every N steps")
    probe.add_argument("--held-out", type=_positive_int, default=None, help="samples held out as the eval set")
    probe.add_argument(
        "--max-new-tokens",
        type=_positive_int,
        default=None,
        help="greedy generation length (default: room for each condition's longest response)",
    )
    probe.add_argument("--answer-pattern", default=None, help="regex whose (one) group is the answer")
    probe.add_argument(
        "--decision-set",
        dest="decision_sets",
        type=int,
        nargs="+",
        action="extend",
        default=None,
        metavar="ID",
        help="also train on these decision sets' retained samples (each a condition decision_set:ID)",
    )
    probe.add_argument(
        "--baselines",
        dest="baselines",
        action="store_true",
        default=None,
        help="also train `original` and `union` beside the teachers (a longer run; the recommendation needs neither)",
    )
    probe.add_argument(
        "--teachers",
        nargs="+",
        action="extend",
        default=None,
        metavar="NAME",
        help="train only these teachers (default: all); e.g. the contenders of an inconclusive run (report: "
        "probe.follow_up)",
    )
    probe.add_argument("--wait", action="store_true", help="follow the run to its end, then print the results")

    probes = action("probes", _probes, "a job's probe runs, or one run's results per condition (or cancel it)")
    probes.add_argument("job", help="job id")
    probes.add_argument("probe", nargs="?", default=None, help="probe run id (default: list the job's runs)")
    probes.add_argument("--json", action="store_true", help="the run as JSON (a listing: one run per line)")
    probes.add_argument("--cancel", action="store_true", help="cancel the (queued or running) run PROBE first")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Carry out one action against the server; one line on stderr for any error."""
    from frontier.client import (
        AuthenticationError,
        Client,
        FrontierError,
        ServerError,
        ServerUnreachableError,
    )

    name = f"frontier jobs {args.action}"
    try:
        with Client.from_env(args.server, args.api_key) as client:
            code: int = args.act(client, args)
            return code
    except _UsageError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 2
    except FrontierError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, ServerUnreachableError | AuthenticationError | ServerError) else 2
    except KeyboardInterrupt:
        goes_on = (
            "the probe run goes on; `frontier jobs probes JOB PROBE --cancel` stops it"
            if args.action == "probe"
            else "the job itself goes on; `frontier jobs cancel` stops it"
        )
        print(f"\n{name}: interrupted ({goes_on})", file=sys.stderr)
        return 130


def _submit(client: Client, args: argparse.Namespace) -> int:
    """Upload the dataset (or name it on the server); print the job id on stdout (and, with --wait, follow it)."""
    data: Path = args.data
    asked: dict[str, Any] = {
        "student": _server_path(args.student),
        "policy": args.policy,
        "params": _params(args.params),
        "template": args.template,
        "rank_clip": args.rank_clip,
        "format": args.format,
        "idempotency_key": args.idempotency_key,
    }
    if args.by_reference:
        job = client.submit_reference(_server_path(str(data)), **asked)
    else:
        if not data.is_file():
            raise _UsageError(f"{data}: no such file")
        job = client.submit(data, **asked)
    print(job.id, flush=True)
    if job.status == "ingesting":
        stored = f"dataset {job.dataset.get('name') or data.name} being read and stored by the server"
    else:
        stored = f"{job.progress.total} samples, {job.progress.candidates} candidates"
    print(
        f"frontier jobs: job {job.id} {job.status}: {stored}, policy {job.policy.name}, student {job.student.path}",
        file=sys.stderr,
    )
    # stdout holds only the id (JOB=$(frontier jobs submit ... --wait)); the summary goes to stderr.
    return _follow(client, str(job.id), summary=sys.stderr) if args.wait else 0


def _watch(client: Client, args: argparse.Namespace) -> int:
    """Follow the job with a progress bar; print the summary."""
    return _follow(client, args.job, summary=sys.stdout)


def _follow(client: Client, job_id: str, summary: Any) -> int:
    """A live bar on stderr while the job runs, then the summary; 0 when it succeeded, else JOB_ENDED_BADLY."""
    from frontier.progress import ProgressBar

    bar: ProgressBar | None = None
    last: tuple[str, int] | None = None

    def show(job: JobOut) -> None:
        nonlocal bar, last
        # While ingesting the total is not known yet: count records stored, then samples scored.
        ingesting = job.status == "ingesting"
        done, total = (job.ingested_records, None) if ingesting else (job.progress.scored, job.progress.total)
        unit = "records stored" if ingesting else "samples"
        if bar is None or bar.unit != unit:
            if bar is not None:
                bar.close()
            bar = ProgressBar(total, sys.stderr, label="", unit=unit, done=done)
        bar.label = f"job {str(job.id)[:8]} {job.status}"
        bar.update(done, total)
        # Not a terminal (a log, CI): one plain line per change instead of a redrawn bar.
        if not bar.enabled and (unit, done) != last:
            print(f"frontier jobs: {bar.line()}", file=sys.stderr)
        last = (unit, done)

    job = client.wait(job_id, progress=show, poll_seconds=POLL_SECONDS)
    if bar is not None:
        bar.close()
    print(_summary(job), file=summary)
    return 0 if job.status == "succeeded" else JOB_ENDED_BADLY


def _summary(job: JobOut) -> str:
    """One paragraph on how the job ended."""
    timings, counts, progress = job.timings, job.counts, job.progress
    took = ""
    if timings.finished_at is not None:
        took = f" in {(timings.finished_at - timings.created_at).total_seconds():.1f}s"
    scored = (
        f"{progress.scored}/{progress.total} samples scored ({progress.candidates} candidates, "
        f"{progress.cached} from the score cache)"
    )
    if job.status != "succeeded" and (job.rejected_line is not None or job.progress.total == 0):
        # It ended while its dataset was being stored (a bad record, a cancel): no sample was kept.
        return f"Job {job.id} {job.status}{took}: {job.error or 'no error recorded'}. Nothing was stored or decided."
    if job.status != "succeeded":
        return f"Job {job.id} {job.status}{took}: {job.error or 'no error recorded'}. {scored}; nothing was decided."
    rate = f" at {timings.samples_per_second:.1f} samples/s" if timings.samples_per_second else ""
    return (
        f"Job {job.id} succeeded{took}: {counts.retained} retained, {counts.rejected} rejected, "
        f"{counts.unscored} unscored of {progress.total} samples, decided by {job.policy.name} "
        f"v{job.policy.version} {json.dumps(job.policy.params, sort_keys=True)}. {scored}{rate}, student "
        f"{job.student.path} (fingerprint {job.student.fingerprint[:12]}). "
        f"Download: frontier jobs export {job.id} --out retained.jsonl"
    )


def _list(client: Client, args: argparse.Namespace) -> int:
    """Print the jobs as a table (or JSON lines)."""
    jobs = client.jobs(status=args.status, limit=args.limit)
    if args.json:
        for job in jobs:
            print(job.model_dump_json())
        return 0
    header = ["JOB", "STATUS", "SCORED", "RETAINED", "REJECTED", "UNSCORED", "POLICY", "CREATED", "DATASET"]
    rows = (
        [
            str(job.id),
            job.status,
            f"{job.progress.scored}/{job.progress.total}",
            str(job.counts.retained),
            str(job.counts.rejected),
            str(job.counts.unscored),
            job.policy.name,
            f"{job.timings.created_at:%Y-%m-%d %H:%M:%S}",
            str(job.dataset.get("name") or ""),
        ]
        for job in jobs
    )
    _print_table(header, rows)
    return 0


def _status(client: Client, args: argparse.Namespace) -> int:
    """Print one job."""
    job = client.job(args.job)
    if args.json:
        print(job.model_dump_json(indent=2))
        return 0
    progress, counts, timings = job.progress, job.counts, job.timings
    lines = [
        ("job", str(job.id)),
        ("status", job.status),
        (
            "progress",
            f"{progress.scored}/{progress.total} samples scored, {progress.candidates} candidates, "
            f"{progress.cached} from the score cache",
        ),
        ("decisions", f"{counts.retained} retained, {counts.rejected} rejected, {counts.unscored} unscored"),
        ("policy", f"{job.policy.name} v{job.policy.version} {json.dumps(job.policy.params, sort_keys=True)}"),
        ("student", f"{job.student.path} ({job.student.model_type}, fingerprint {job.student.fingerprint[:12]})"),
        ("dataset", f"{job.dataset.get('name') or '-'} ({job.dataset.get('format')})"),
        ("scoring", f"template {job.template}, rank clip {job.rank_clip}"),
        ("created", f"{timings.created_at:%Y-%m-%d %H:%M:%S %Z}"),
        ("finished", f"{timings.finished_at:%Y-%m-%d %H:%M:%S %Z}" if timings.finished_at else "-"),
        (
            "scoring",
            f"{timings.scoring_seconds:.1f}s in the engine"
            + (f", {timings.samples_per_second:.1f} samples/s" if timings.samples_per_second else ""),
        ),
    ]
    if job.status == "ingesting" or job.rejected_line is not None:
        rejected = f", rejected at record {job.rejected_line}" if job.rejected_line is not None else ""
        lines.insert(2, ("ingest", f"{job.ingested_records} records read and stored{rejected}"))
    if job.error:
        lines.append(("error", job.error))
    for key, value in lines:
        print(f"{key:<10} {value}")
    return 0


def _samples(client: Client, args: argparse.Namespace) -> int:
    """Print sample decisions as a table (or JSON lines with every candidate)."""
    found = client.samples(
        args.job,
        decision=args.decision,
        reason=args.reason,
        teacher=args.teacher,
        decision_set=args.decision_set,
        limit=args.limit,
    )
    if args.json:
        for sample in found:
            print(sample.model_dump_json())
        return 0
    header = ["SAMPLE", "DECISION", "REASON", "CHOSEN", "IFD", "R-IFD", "CANDIDATES"]
    _print_table(header, (_sample_row(sample) for sample in found))
    return 0


def _sample_row(sample: SampleOut) -> list[str]:
    # The chosen candidate's scores say why it was kept; with none chosen, the original's say why it was not.
    shown = sample.chosen_candidate or "original"
    scores = next((c for c in sample.candidates if c.name == shown), None)

    return [
        sample.sample_id,
        sample.decision or "-",
        sample.reason or "-",
        sample.chosen_candidate or "-",
        _number(scores.ifd if scores else None),
        _number(scores.rifd if scores else None),
        ",".join(c.name for c in sample.candidates),
    ]


def _sample(client: Client, args: argparse.Namespace) -> int:
    """Print one sample: its decision and reason, a table of every candidate's scores, then their texts."""
    sample = client.sample(args.job, args.sample, decision_set=args.decision_set)
    if args.json:
        print(sample.model_dump_json(indent=2))
        return 0
    chosen = f", chose {sample.chosen_candidate}" if sample.chosen_candidate else ""
    print(f"sample {sample.sample_id}: {sample.decision or 'not decided'} ({sample.reason or '-'}){chosen}")

    header = ["CANDIDATE", "STATUS", "IFD", "R-IFD", "PPL(A|Q)", "L(A|Q)", "L(A)", "L(Q)", "L(Q|A)", "TOKENS Q/A"]
    rows = [
        [
            ("* " if c.name == sample.chosen_candidate else "  ") + c.name,
            c.status if c.status == "scored" else f"{c.status}: {c.error}",
            _number(c.ifd),
            _number(c.rifd),
            _number(c.ppl_response_given_instruction, 2),
            _number(c.nll_response_given_instruction),
            _number(c.nll_response),
            _number(c.nll_instruction),
            _number(c.nll_instruction_given_response),
            f"{c.n_instruction_tokens or '-'}/{c.n_response_tokens or '-'}",
        ]
        for c in sample.candidates
    ]
    _print_table(header, rows)
    limit = None if args.full else SAMPLE_TEXT_CHARS
    original = sample.candidates[0] if sample.candidates else None
    for candidate in sample.candidates:
        print(f"\n--- {candidate.name}" + (f" (teacher {candidate.teacher})" if candidate.teacher else ""))
        # A refinement that kept the original's instruction and input says so instead of repeating them.
        for label, text, base in (
            ("instruction", candidate.instruction, original.instruction if original else None),
            ("input", candidate.input, original.input if original else None),
        ):
            if text and (candidate is original or text != base):
                print(f"{label}: {_clip(text, limit)}")
        print(f"response: {_clip(candidate.response or '', limit)}")
    return 0


def _clip(text: str, limit: int | None) -> str:
    if limit is None or len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters; --full shows all)"


def _what_if(client: Client, args: argparse.Namespace) -> int:
    """Print the sweep: one row per value, the retained fraction and each teacher's acceptance."""
    values = [_sweep_value(text) for text in args.values.split(",") if text.strip()]
    if not values:
        raise _UsageError("--values: expected comma-separated values, e.g. 0,0.84,1.5")
    sweep = client.what_if(args.job, args.policy, args.param, values, _params(args.params))
    if args.json:
        print(sweep.model_dump_json(indent=2))
        return 0
    teachers = sorted({name for point in sweep.points for name in point.teachers})
    header = [args.param.upper(), "RETAINED", "REJECTED", "UNSCORED", "RETAINED%"] + [t.upper() for t in teachers]
    rows = []
    for point in sweep.points:
        shares = [point.teachers.get(t) for t in teachers]
        rows.append(
            [
                json.dumps(point.value),
                str(point.counts.retained),
                str(point.counts.rejected),
                str(point.counts.unscored),
                f"{100 * point.retained_fraction:.1f}",
                *("-" if s is None or s.acceptance is None else f"{100 * s.acceptance:.1f}%" for s in shares),
            ]
        )
    # Teacher columns: the share of that teacher's candidates (or of the originals) chosen for a retained sample.
    print(f"{sweep.policy} v{sweep.version} over {sweep.param}; nothing is written. Teacher columns: share chosen.")
    _print_table(header, rows)
    return 0


def _sweep_value(text: str) -> Any:
    """One --values entry: JSON when it parses (numbers, true/false, null), else the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text.strip()


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _print_table(header: list[str], rows: Iterable[list[str]]) -> None:
    """Left-aligned columns sized to the first rows, streamed (a long listing never waits for its end)."""
    iterator: Iterator[list[str]] = iter(rows)
    first: list[list[str]] = []
    for row in iterator:
        first.append(row)
        if len(first) >= TABLE_SAMPLE_ROWS:
            break
    widths = [max(len(cell) for cell in column) for column in zip(header, *first, strict=True)]
    for row in [header, *first]:
        print(_table_line(row, widths))
    for row in iterator:
        print(_table_line(row, widths))
    if not first:
        print("(none)", file=sys.stderr)


def _table_line(row: list[str], widths: list[int]) -> str:
    return "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()


def _export(client: Client, args: argparse.Namespace) -> int:
    """Stream the export to --out with a byte progress bar; print the file's path."""
    from frontier.progress import ProgressBar, size

    out: Path = args.out
    fmt: ExportFormat = args.format or ("parquet" if out.suffix.lower() in (".parquet", ".pq") else "jsonl")
    bar = ProgressBar(None, sys.stderr, label="export", unit="", render=size)
    written = client.export(
        args.job,
        out,
        format=fmt,
        decision=args.decision,
        scores=args.scores,
        bundle=args.bundle,
        decision_set=args.decision_set,
        progress=bar.update,
    )
    bar.close()
    what = f"{'a bundle of ' if args.bundle else ''}{args.decision} samples ({fmt})"
    print(f"frontier jobs: wrote {what} of job {args.job} to {out} ({size(written)})", file=sys.stderr)
    print(out)
    return 0


def _report(client: Client, args: argparse.Namespace) -> int:
    """Print the teacher comparison."""
    if args.format == "json":
        print(client.report(args.job, decision_set=args.decision_set).model_dump_json(indent=2))
    else:
        print(client.report_markdown(args.job, decision_set=args.decision_set), end="")
    return 0


def _decide(client: Client, args: argparse.Namespace) -> int:
    """Run a policy over the stored scores; print the new decision set."""
    made = client.decide(args.job, args.policy, _params(args.params))
    if args.json:
        print(made.model_dump_json(indent=2))
        return 0
    counts = made.counts
    print(
        f"decision set {made.id}: {made.policy.name} v{made.policy.version} "
        f"{json.dumps(made.policy.params, sort_keys=True)}: {counts.retained} retained, {counts.rejected} rejected, "
        f"{counts.unscored} unscored (now the latest: samples, export and report use it)"
    )
    return 0


def _cancel(client: Client, args: argparse.Namespace) -> int:
    """Cancel the job; print its summary."""
    print(_summary(client.cancel(args.job)))
    return 0


def _probe(client: Client, args: argparse.Namespace) -> int:
    """Start a probe run; print its id on stdout (and, with --wait, follow it and print its results)."""
    from frontier.probe_view import progress_text

    eval_set: Path | None = args.eval_set
    if eval_set is not None and not eval_set.is_file():
        raise _UsageError(f"--eval-set {eval_set}: no such file")
    params = {
        "steps": args.steps,
        "seeds": args.seeds,
        "batch_size": args.batch_size,
        "peak_lr": args.peak_lr,
        "warmup_steps": args.warmup_steps,
        "schedule_steps": args.schedule_steps,
        "eval_every": args.eval_every,
        "held_out": args.held_out,
        "max_new_tokens": args.max_new_tokens,
        "answer_pattern": args.answer_pattern,
        "decision_sets": args.decision_sets,
        "baselines": args.baselines,
        "teachers": args.teachers,
    }
    probe = client.create_probe(args.job, eval_set=eval_set, **params)
    print(probe["id"], flush=True)
    evaluation = probe.get("eval") or {}
    print(
        f"frontier jobs: probe run {probe['id']} of job {args.job} {probe['status']}: "
        f"{len(probe.get('conditions') or [])} conditions ({', '.join(probe.get('conditions') or [])}), "
        f"{progress_text(probe)}; eval on {evaluation.get('n_items', '?')} items ({evaluation.get('source', '?')})",
        file=sys.stderr,
    )
    # stdout holds only the id (PROBE=$(frontier jobs probe JOB --wait)); the results go to stderr.
    return _follow_probe(client, args.job, probe["id"], out=sys.stderr) if args.wait else 0


def _follow_probe(client: Client, job_id: str, probe_id: int | str, out: Any) -> int:
    """A live bar on stderr while the run goes on, then its facts and results; 0 when it succeeded, else 3."""
    from frontier.probe_view import ProbeProgress, describe

    progress = ProbeProgress(sys.stderr, "frontier jobs: ")
    probe = client.wait_probe(job_id, probe_id, poll=POLL_SECONDS, on_progress=progress)
    progress.close()
    for line in describe(probe):
        print(line, file=out)
    return 0 if probe.get("status") == "succeeded" else JOB_ENDED_BADLY


def _probes(client: Client, args: argparse.Namespace) -> int:
    """List the job's probe runs, or show (or cancel) one run with its results per condition."""
    from frontier.probe_view import describe, listing

    if args.cancel and args.probe is None:
        raise _UsageError("--cancel needs a probe run id: frontier jobs probes JOB PROBE --cancel")
    if args.probe is not None:
        probe = client.cancel_probe(args.job, args.probe) if args.cancel else client.get_probe(args.job, args.probe)
        if args.json:
            print(json.dumps(probe, indent=2))
        else:
            print("\n".join(describe(probe)))
        return 0
    runs = client.list_probes(args.job)
    if args.json:
        for run in runs:
            print(json.dumps(run))
        return 0
    if not runs:
        print(f"(no probe runs; start one with `frontier jobs probe {args.job}`)", file=sys.stderr)
        return 0
    print("\n".join(listing(runs)))
    return 0


def _params(text: str | None) -> dict[str, Any] | None:
    """--params as a JSON object."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _UsageError(f"--params: not valid JSON: {exc.msg}") from exc
    if not isinstance(value, dict):
        raise _UsageError(f"--params: expected a JSON object, got {text}")
    return value


def _server_path(student: str) -> str:
    """A local student directory as an absolute path (the server resolves paths itself); anything else as given."""
    local = Path(student).expanduser()
    return str(local.resolve()) if local.exists() else student


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return number
