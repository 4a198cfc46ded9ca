"""`frontier report JOB_ID`: the teacher comparison of a finished job, from the configured database.

Reads FRONTIER_DATABASE_URL, or the embedded SQLite file under FRONTIER_DATA_DIR (`--data-dir`; a `frontier
curate` run keeps its state in OUT/.frontier). Prints Markdown (default) or JSON; never scores anything.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add the `report` subcommand."""
    parser = subparsers.add_parser(
        "report",
        help="which teacher's outputs sit closest to the student's frontier, for a finished job",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("job_id", type=uuid.UUID, help="the job's id")
    parser.add_argument("--decision-set", type=int, default=None, help="a decision set id (default: the latest)")
    parser.add_argument("--format", choices=("markdown", "json"), default="markdown")
    parser.add_argument("--data-dir", type=Path, default=None, help="embedded state directory (FRONTIER_DATA_DIR)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print the report; exit 2 when the job or decision set does not exist or the job has not succeeded."""
    if args.data_dir is not None:
        os.environ["FRONTIER_DATA_DIR"] = str(args.data_dir.expanduser().resolve())
    from core.errors import ConflictError, NotFoundError
    from service.db import session_scope
    from service.jobs.report import build_report
    from service.jobs.report_markdown import report_markdown
    from service.settings import get_settings

    get_settings.cache_clear()
    try:
        with session_scope() as session:
            report = build_report(session, args.job_id, args.decision_set)
    except (NotFoundError, ConflictError) as exc:
        print(f"frontier report: {exc}", file=sys.stderr)
        return 2
    print(report.model_dump_json(indent=2) if args.format == "json" else report_markdown(report))
    return 0
