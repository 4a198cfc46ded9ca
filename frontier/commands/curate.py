"""`frontier curate DATA --student DIR --out DIR`: one curation job end to end on this machine.

The same pipeline as the service (job rows, chunk tasks on the queue, a Celery worker, the policy, the
export), on the embedded SQLite database and filesystem broker under `OUT/.frontier` unless FRONTIER_*
settings say otherwise. Writes retained.jsonl, rejected.jsonl (and unscored.jsonl when any sample could not
be scored) in the input's own layout, decisions.jsonl with every sample's decision, reason and scores, the
teacher comparison (report.json, report.md), the provenance manifest (manifest.json) and a dataset card
(README.md).

With --probe, once the job has succeeded the same local worker runs a probe run on it (docs/probes.md): a
fresh copy of the student fine-tuned for a short budget on each condition (each teacher's refinements; the
originals and their union with {"baselines": true}), measured by exact match on --eval-set or on held-out
samples. Its result is written as probe.json (the API's ProbeOut) and its table printed on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.probes import ProbeBudget
from core.templates import TEMPLATES

if TYPE_CHECKING:
    import subprocess

    from service.settings import Settings

POLL_SECONDS = 0.2
# A probe run's tasks each train for a while: polling it a couple of times a second is plenty.
PROBE_POLL_SECONDS = 0.5


def register(subparsers: Any) -> None:
    """Add the `curate` subcommand."""
    parser = subparsers.add_parser(
        "curate",
        help="score a dataset with a student, decide every sample, write the filtered dataset",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("data", type=Path, help="dataset: JSONL or Parquet (native, Alpaca or chat layout)")
    parser.add_argument("--student", required=True, type=Path, help="local student checkpoint directory")
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--policy", default=None, help="decision policy (default: reflection)")
    parser.add_argument("--params", default=None, help="policy parameters as a JSON object")
    parser.add_argument("--template", choices=TEMPLATES, default=None)
    parser.add_argument("--rank-clip", type=int, default=None, help="clip r of the token ranks behind RSR (100)")
    parser.add_argument("--no-worker", dest="worker", action="store_false", help="rely on workers already running")
    probe = parser.add_argument_group("probe run (after the job: learning curves per condition, into probe.json)")
    probe.add_argument("--probe", action="store_true", help="fine-tune the student briefly per condition, measure it")
    probe.add_argument(
        "--eval-set",
        type=Path,
        default=None,
        help="JSONL or Parquet of {instruction, input, answer[, response]} (default: hold out some of DATA's samples)",
    )
    probe.add_argument(
        "--probe-steps", type=int, default=None, help=f"optimiser steps per condition and seed ({ProbeBudget().steps})"
    )
    probe.add_argument("--probe-seeds", type=int, default=None, help=f"seeds per condition ({ProbeBudget().seeds})")
    probe.add_argument(
        "--probe-params",
        default=None,
        help='other probe parameters as a JSON object, e.g. {"batch_size": 8, "held_out": 32, "eval_every": 10}',
    )
    parser.set_defaults(handler=run)


class WorkerExitedError(RuntimeError):
    """The local worker process ended while the command still waited on its work."""

    def __init__(self, code: int | None) -> None:
        super().__init__(f"the local worker exited with code {code} before the work it was running finished")


def _check_worker(worker: subprocess.Popen[bytes] | None) -> None:
    """Raise WorkerExitedError once the local worker has ended: nothing else would finish the job."""
    if worker is not None and worker.poll() is not None:
        raise WorkerExitedError(worker.returncode)


def _fail(message: str) -> int:
    print(f"frontier curate: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Create the job, run it with a local worker, write the outputs and print the output directory."""
    out = args.out.expanduser().resolve()
    if "FRONTIER_DATA_DIR" not in os.environ:
        os.environ["FRONTIER_DATA_DIR"] = str(out / ".frontier")
    from core.checkpoint import CheckpointError
    from core.dataset import DatasetError, parse_dataset
    from service.db import unit_of_work
    from service.jobs import lifecycle as jobs
    from service.migrate import upgrade
    from service.policies import PolicyError
    from service.queue import enqueue_chunks
    from service.settings import get_settings
    from workers.local import local_worker

    get_settings.cache_clear()
    settings = get_settings()
    try:
        params = json.loads(args.params) if args.params else None
        records = parse_dataset(args.data, name=str(args.data), limits=settings.limits)
    except FileNotFoundError:
        return _fail(f"{args.data}: no such file")
    except json.JSONDecodeError as exc:
        return _fail(f"--params: not valid JSON: {exc.msg}")
    except DatasetError as exc:
        return _fail(f"{args.data}: {exc}")
    # The probe request is checked before anything runs: a bad eval set must not wait for the scoring to be told.
    try:
        probe = _probe_request(args, settings)
    except ValueError as exc:
        return _fail(str(exc))
    out.mkdir(parents=True, exist_ok=True)
    upgrade()
    try:
        with unit_of_work() as uow:
            job = jobs.create_job(
                uow,
                settings,
                records=records,
                student_path=str(args.student),
                policy=args.policy,
                params=params,
                template=args.template,
                rank_clip=args.rank_clip,
                dataset_name=args.data.name,
                dataset_format="parquet" if args.data.suffix in (".parquet", ".pq") else "jsonl",
                enqueue=lambda job_id, n_chunks: enqueue_chunks(job_id, n_chunks, settings),
            )
    except (CheckpointError, PolicyError, ValueError) as exc:
        return _fail(str(exc))
    print(
        f"frontier curate: job {job.id}: {job.total_samples} samples, {job.total_candidates} candidates",
        file=sys.stderr,
    )
    probe_error: str | None = None
    try:
        with local_worker(settings) if args.worker else contextlib.nullcontext() as worker:
            status = _wait(job.id, worker)
            if status == "succeeded" and probe is not None:
                # The worker stays up: it also trains the probe run's tasks.
                probe_error = run_probe(job.id, out, settings, *probe, worker=worker)
    except WorkerExitedError as exc:
        # Its own output (on stderr, above) says why; the job stays in the database, unfinished.
        return _fail(f"job {job.id}: {exc}")
    if status != "succeeded":
        return _fail(f"job {job.id} ended {status}")
    counts, warnings = write_outputs(job.id, out)
    print(f"frontier curate: {counts}", file=sys.stderr)
    for warning in warnings:
        print(f"frontier curate: warning: {warning}", file=sys.stderr)
    print(out)
    return _fail(probe_error) if probe_error else 0


def _probe_request(args: argparse.Namespace, settings: Settings) -> tuple[dict[str, Any], bytes | None] | None:
    """The probe run's parameters and eval set file, checked as the API checks them; None without --probe."""
    from core.dataset import DatasetError
    from service.probes.params import parse_probe_request

    asked = [name for name in ("eval_set", "probe_steps", "probe_seeds", "probe_params") if getattr(args, name)]
    if not args.probe:
        if asked:
            raise ValueError(f"--{asked[0].replace('_', '-')} needs --probe")
        return None
    try:
        params = json.loads(args.probe_params) if args.probe_params else {}
    except json.JSONDecodeError as exc:
        raise ValueError(f"--probe-params: not valid JSON: {exc.msg}") from exc
    if not isinstance(params, dict):
        raise ValueError(f"--probe-params: expected a JSON object, got {args.probe_params}")
    if args.probe_steps is not None:
        params["steps"] = args.probe_steps
    if args.probe_seeds is not None:
        params["seeds"] = args.probe_seeds
    eval_file: bytes | None = None
    if args.eval_set is not None:
        try:
            eval_file = args.eval_set.read_bytes()
        except FileNotFoundError:
            raise ValueError(f"--eval-set {args.eval_set}: no such file") from None
        except OSError as exc:
            raise ValueError(f"--eval-set {args.eval_set}: cannot be read: {exc.strerror or exc}") from None
    try:
        parse_probe_request(params, eval_file=eval_file, limits=settings.probe_limits)
    except DatasetError as exc:  # LimitError included: it names the FRONTIER_PROBE_MAX_* setting
        where = f"--eval-set {args.eval_set}" if eval_file is not None and exc.field in (None, "eval_set") else "probe"
        raise ValueError(f"{where}: {exc}") from None
    return params, eval_file


def run_probe(
    job_id: uuid.UUID,
    out: Path,
    settings: Settings,
    params: dict[str, Any],
    eval_file: bytes | None,
    *,
    worker: subprocess.Popen[bytes] | None = None,
) -> str | None:
    """Probe the succeeded job, follow the run, write OUT/probe.json and print its results; None if it succeeded.

    Raises WorkerExitedError when `worker` (the local worker training the run) ends before the run does.
    """
    from core.errors import InputError
    from frontier.probe_view import ProbeProgress, describe
    from service.db import session_scope, unit_of_work
    from service.probes import lifecycle, presenters
    from service.queue import enqueue_probe_tasks

    try:
        with unit_of_work() as uow:
            run = lifecycle.create_probe_run(
                uow,
                settings,
                job_id,
                params=params,
                eval_file=eval_file,
                enqueue=lambda probe_id, tasks: enqueue_probe_tasks(probe_id, tasks, settings),
            )
            probe_id = run.id
    except InputError as exc:
        return f"probe run not started: {exc}"
    progress = ProbeProgress(sys.stderr, "frontier curate: ")
    try:
        while True:
            with session_scope() as session:
                shown = presenters.probe_out(session, lifecycle.probe_run(session, job_id, probe_id))
            probe = shown.model_dump(mode="json")
            progress(probe)
            if probe["status"] in ("succeeded", "failed", "cancelled"):
                break
            _check_worker(worker)
            time.sleep(PROBE_POLL_SECONDS)
    finally:
        progress.close()
    (out / "probe.json").write_text(json.dumps(probe, indent=2) + "\n", encoding="utf-8")
    for line in describe(probe):
        print(f"frontier curate: {line}" if line else "", file=sys.stderr)
    if probe["status"] != "succeeded":
        return f"probe run {probe_id} ended {probe['status']}: {probe.get('error') or 'no error recorded'}"
    return None


def _wait(job_id: uuid.UUID, worker: subprocess.Popen[bytes] | None = None) -> str:
    """Follow the job to its end, printing progress; its final status (WorkerExitedError if `worker` ends)."""
    from service.db import session_scope
    from service.jobs import guards as jobs
    from service.models import FINISHED_STATUSES

    last = -1
    while True:
        with session_scope() as session:
            job = jobs.get_job(session, job_id)
        if job.scored_samples != last:
            last = job.scored_samples
            print(f"frontier curate: scored {last}/{job.total_samples}", file=sys.stderr)
        if job.status in FINISHED_STATUSES:
            if job.error:
                print(f"frontier curate: {job.error}", file=sys.stderr)
            return str(job.status)
        _check_worker(worker)
        time.sleep(POLL_SECONDS)


def write_outputs(job_id: uuid.UUID, out: Path) -> tuple[dict[str, int], list[str]]:
    """Write the decided job's files into `out`; returns samples per decision and the report's warnings."""
    from service.db import session_scope
    from service.jobs import exports
    from service.jobs import queries as jobs
    from service.jobs.repository import SampleFilter

    counts: dict[str, int] = {}
    for decision in ("retained", "rejected", "unscored"):
        path = out / f"{decision}.jsonl"
        with path.open("wb") as handle:
            for block in exports.iter_jsonl(job_id, decision):
                handle.write(block)
        counts[decision] = sum(1 for _ in path.open("rb"))
        if decision == "unscored" and counts[decision] == 0:
            path.unlink()
    with (out / "decisions.jsonl").open("w", encoding="utf-8") as handle, session_scope() as session:
        cursor = None
        while True:
            page = jobs.list_samples(session, job_id, SampleFilter(), cursor=cursor, limit=500)
            for item in page.items:
                record = item.model_dump(mode="json")
                record["policy"] = page.policy.model_dump(mode="json") if page.policy else None
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    return counts, write_provenance(job_id, out)


def write_provenance(job_id: uuid.UUID, out: Path) -> list[str]:
    """Write the job's report (JSON and Markdown), manifest and dataset card into `out`; the report's warnings."""
    from service.db import session_scope
    from service.jobs.manifest import build_manifest, dataset_card
    from service.jobs.report import build_report
    from service.jobs.report_markdown import report_markdown

    with session_scope() as session:
        report = build_report(session, job_id)
        manifest = build_manifest(session, job_id, report.decision_set.id)
    (out / "report.json").write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    (out / "report.md").write_text(report_markdown(report), encoding="utf-8")
    (out / "manifest.json").write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    (out / "README.md").write_text(dataset_card(manifest, report), encoding="utf-8")
    return [warning.message for warning in report.warnings]
