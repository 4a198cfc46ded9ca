"""`frontier curate DATA --student DIR --out DIR`: one curation job end to end on this machine.

The same pipeline as the service (job rows, chunk tasks on the queue, a Celery worker, the policy, the
export), on the embedded SQLite database and filesystem broker under `OUT/.frontier` unless FRONTIER_*
settings say otherwise. Writes retained.jsonl, rejected.jsonl (and unscored.jsonl when any sample could not
be scored) in the input's own layout, decisions.jsonl with every sample's decision, reason and scores, the
teacher comparison (report.json, report.md), the provenance manifest (manifest.json) and a dataset card
(README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from core.templates import TEMPLATES

POLL_SECONDS = 0.2


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
    parser.set_defaults(handler=run)


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
    if args.worker:
        with local_worker(settings):
            status = _wait(job.id)
    else:
        status = _wait(job.id)
    if status != "succeeded":
        return _fail(f"job {job.id} ended {status}")
    counts, warnings = write_outputs(job.id, out)
    print(f"frontier curate: {counts}", file=sys.stderr)
    for warning in warnings:
        print(f"frontier curate: warning: {warning}", file=sys.stderr)
    print(out)
    return 0


def _wait(job_id: uuid.UUID) -> str:
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
