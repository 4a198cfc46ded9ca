"""Service benchmark: a 2,000-sample job end to end (upload -> decisions -> export) on both deployments.

For each deployment (Postgres + Redis with a prefork Celery worker; the embedded SQLite + filesystem broker
with a solo worker) a warm worker (student already loaded, as in a running service) takes a job POSTed over
the ASGI HTTP interface, and the run is split into upload, scoring (first chunk claimed -> last chunk stored),
decisions (policy + writes), export (the retained JSONL streamed back). Beside it, the bare scoring time: the
same candidates through the engine in this process, chunk by chunk, with no queue and no database.

Service overhead per sample = (end-to-end wall time - time inside the scoring engine during that same run)
/ samples: upload, queueing, database writes, policy and export. Target: < 2 ms/sample. The end-to-end time
minus the bare scoring time is printed too, but on a shared machine the two runs see different CPU
contention, so that difference is noise of the order of the scoring time's variance.
The samples are the example data recombined: each synthetic sample takes one example sample's texts and a
distinct case tag, so no two candidates share text (the engine's duplicate sharing cannot flatter it).

    python bench/service.py --samples 2000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_DATA = ROOT / "examples" / "data" / "refinements.jsonl"
POSTGRES_ADMIN = os.environ.get("FRONTIER_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("FRONTIER_BENCH_REDIS", "redis://127.0.0.1:6379/14")


def synthesise(n: int) -> list[dict[str, Any]]:
    """`n` samples recombined from the example data, every text unique."""
    base = [json.loads(line) for line in EXAMPLE_DATA.read_text(encoding="utf-8").splitlines()]
    samples = []
    for index in range(n):
        source = base[index % len(base)]
        tag = f" (case {index})"
        refinements = [
            {**refinement, **({"instruction": refinement["instruction"] + tag} if "instruction" in refinement else {})}
            for refinement in source.get("refinements", [])
        ]
        samples.append(
            {
                "id": f"bench-{index:05d}",
                "instruction": source["instruction"] + tag,
                "input": source.get("input", ""),
                "response": source["response"],
                "refinements": refinements,
            }
        )
    return samples


def bare_scoring(student: Path, samples: list[dict[str, Any]], chunk_size: int) -> float:
    """Seconds the engine alone needs for every candidate, scored chunk by chunk as the workers do."""
    from core.dataset import parse_records
    from service.settings import get_settings
    from workers.curation import get_scorer
    from workers.scoring import get_student

    settings = get_settings()
    student_obj = get_student(student, device=settings.device, precision=settings.dtype)
    scorer = get_scorer(
        str(student_obj.identity.path), student_obj.identity.fingerprint, "plain", settings.rank_clip, settings
    )
    from workers.curation import candidates_of

    records = parse_records(samples)
    scorer.score([c for _, _, c in candidates_of(records[0])])  # warm-up
    started = time.perf_counter()
    for first in range(0, len(records), chunk_size):
        scorer.score([c for record in records[first : first + chunk_size] for _, _, c in candidates_of(record)])
    return time.perf_counter() - started


def configure(env: dict[str, str]) -> None:
    """Point this process (and the worker it starts) at one deployment."""
    from service.db import dispose_engines
    from service.settings import get_settings

    for key in ("FRONTIER_DATABASE_URL", "FRONTIER_BROKER_URL"):
        os.environ.pop(key, None)
    # The bench client sends no API key (loopback only), and every candidate must really be scored so the
    # engine time compares with the bare run (the warm-up job's sample would otherwise come from the cache).
    os.environ.update({"FRONTIER_AUTH": "none", "FRONTIER_SCORE_CACHE": "false", **env})
    get_settings.cache_clear()
    dispose_engines()


def run_deployment(
    name: str, env: dict[str, str], student: Path, samples: list[dict[str, Any]], pool: str
) -> dict[str, float]:
    """One end-to-end job on a warm worker; returns the phase times in seconds."""
    from fastapi.testclient import TestClient

    from service import migrate
    from service.app import create_app
    from service.jobs.presenters import as_utc
    from service.settings import get_settings
    from workers.local import local_worker

    configure(env)
    migrate.upgrade()
    settings = get_settings()
    body = b"".join(json.dumps(sample).encode() + b"\n" for sample in samples)

    def wait(client: TestClient, job_id: str) -> dict[str, Any]:
        while True:
            job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
            if job["status"] in {"succeeded", "failed", "cancelled"}:
                if job["status"] != "succeeded":
                    raise RuntimeError(f"{name}: job {job_id} ended {job['status']}: {job['error']}")
                return job
            time.sleep(0.05)

    with local_worker(settings, env=os.environ.copy(), pool=pool), TestClient(create_app()) as client:
        warm = client.post(
            "/v1/jobs", files={"file": ("w.jsonl", body.split(b"\n", 2)[0] + b"\n")}, data={"student": str(student)}
        )
        wait(client, warm.json()["id"])

        started = time.perf_counter()
        created = client.post("/v1/jobs", files={"file": ("bench.jsonl", body)}, data={"student": str(student)})
        uploaded = time.perf_counter()
        if created.status_code != 202:
            raise RuntimeError(f"{name}: upload refused: {created.text}")
        job = wait(client, created.json()["id"])
        decided = time.perf_counter()
        export = client.get(f"/v1/jobs/{job['id']}/export", params={"decision": "retained"})
        exported = time.perf_counter()
        decisions = client.get(f"/v1/jobs/{job['id']}/samples", params={"limit": 500}).json()

    timings = job["timings"]
    started_at = as_utc(_parse(timings["started_at"]))
    scored_at = as_utc(_parse(timings["scored_at"]))
    finished_at = as_utc(_parse(timings["finished_at"]))
    if started_at is None or scored_at is None or finished_at is None:
        raise RuntimeError(f"{name}: job {job['id']} has no timings")
    return {
        "upload": uploaded - started,
        "queue_wait": max(0.0, (decided - uploaded) - (finished_at - started_at).total_seconds()),
        "scoring": (scored_at - started_at).total_seconds(),
        "engine": float(timings["scoring_seconds"]),
        "decisions": (finished_at - scored_at).total_seconds(),
        "export": exported - decided,
        "total": exported - started,
        "retained": float(job["counts"]["retained"]),
        "export_lines": float(len(export.text.splitlines())),
        "first_page": float(len(decisions["items"])),
    }


def _parse(value: str | None) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(value) if value else None


def fresh_postgres(database: str) -> str:
    """An empty database on the local Postgres; returns its SQLAlchemy URL."""
    import psycopg

    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {database}")
    return POSTGRES_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1) + f"/{database}"


def main() -> int:
    """Run the benchmark and print the table."""
    import tempfile

    import redis

    from examples.student import build_student, default_student_dir

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--chunk-size", type=int, default=128)
    parser.add_argument("--deployments", default="postgres,embedded")
    args = parser.parse_args()

    student = build_student(default_student_dir("tiny"), shape="tiny")
    samples = synthesise(args.samples)
    n_candidates = sum(1 + len(s["refinements"]) for s in samples)
    os.environ["FRONTIER_CHUNK_SIZE"] = str(args.chunk_size)
    print(f"{args.samples} samples, {n_candidates} candidates, chunks of {args.chunk_size}, student {student}")

    bare = bare_scoring(student, samples, args.chunk_size)
    print(f"bare scoring (engine only, this process): {bare:.2f} s = {1000 * bare / args.samples:.2f} ms/sample")

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="frontier-bench-") as scratch:
        for name in args.deployments.split(","):
            env = {"FRONTIER_DATA_DIR": str(Path(scratch) / name), "FRONTIER_CHUNK_SIZE": str(args.chunk_size)}
            if name == "postgres":
                redis.Redis.from_url(REDIS).flushdb()
                env |= {"FRONTIER_DATABASE_URL": fresh_postgres("frontier_bench"), "FRONTIER_BROKER_URL": REDIS}
            results[name] = run_deployment(
                name, env, student, samples, pool="prefork" if name == "postgres" else "solo"
            )

    header = f"{'deployment':<22}{'upload':>9}{'scoring':>9}{'(engine)':>10}{'decide':>9}{'export':>9}{'total':>9}"
    header += f"{'overhead ms/sample':>20}{'total-bare ms/sample':>22}"
    print(header)
    for name, r in results.items():
        overhead = 1000 * (r["total"] - r["engine"]) / args.samples
        versus_bare = 1000 * (r["total"] - bare) / args.samples
        label = "postgres+redis" if name == "postgres" else "embedded (sqlite+fs)"
        print(
            f"{label:<22}{r['upload']:>9.2f}{r['scoring']:>9.2f}{r['engine']:>10.2f}{r['decisions']:>9.2f}"
            f"{r['export']:>9.2f}{r['total']:>9.2f}{overhead:>20.2f}{versus_bare:>22.2f}"
        )
        print(
            f"{'':<22}retained {int(r['retained'])}, exported {int(r['export_lines'])} lines; "
            f"engine {1000 * r['engine'] / args.samples:.2f} ms/sample in the worker, "
            f"{1000 * bare / args.samples:.2f} ms/sample bare"
        )
    print("seconds; overhead = (total - engine time in the worker) / samples; target < 2 ms/sample")
    return 0


if __name__ == "__main__":
    sys.exit(main())
