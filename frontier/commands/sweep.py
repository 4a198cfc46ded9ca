"""`frontier sweep`: find stuck work once (or every N seconds) and recover it, as each worker does by itself.

Re-queues chunks that have been running or waiting longer than FRONTIER_CHUNK_TIMEOUT_S, fails a job whose
chunk has been started FRONTIER_MAX_CHUNK_ATTEMPTS times, and finalizes fully scored jobs whose finalize task
was lost; re-queues probe tasks silent for FRONTIER_PROBE_TIMEOUT_S and fails those out of attempts; deletes
spooled uploads no ingesting job reads, untouched for FRONTIER_CHUNK_TIMEOUT_S. Prints one JSON line per job or
probe run it changed and per file it removed. For cron, or for a deployment whose workers are all gone.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any


def register(subparsers: Any) -> None:
    """Add the `sweep` subcommand."""
    parser = subparsers.add_parser(
        "sweep",
        help="re-queue stuck chunks, fail jobs out of attempts, finalize scored jobs (FRONTIER_CHUNK_TIMEOUT_S)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--every", type=float, default=None, metavar="SECONDS", help="repeat until interrupted")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Sweep once, or every `--every` seconds until interrupted."""
    from workers.curation import sweep, sweep_uploads
    from workers.probes import sweep_probes

    while True:
        for result in sweep():
            if result.requeued or result.failed or result.finalized or result.ingest_requeued:
                line = {
                    "job_id": str(result.job_id),
                    "requeued": list(result.requeued),
                    "failed": result.failed,
                    "finalized": result.finalized,
                    "ingest_requeued": result.ingest_requeued,
                }
                print(json.dumps(line), flush=True)
        for probe in sweep_probes():
            if probe.requeued or probe.failed:
                requeued = [{"condition": condition, "seed": seed} for condition, seed in probe.requeued]
                print(json.dumps({"probe_id": probe.probe_id, "requeued": requeued, "failed": list(probe.failed)}))
        for path in sweep_uploads():
            print(json.dumps({"upload_removed": str(path)}), flush=True)
        if args.every is None:
            return 0
        try:
            time.sleep(args.every)
        except KeyboardInterrupt:
            print("frontier sweep: stopped", file=sys.stderr)
            return 0
