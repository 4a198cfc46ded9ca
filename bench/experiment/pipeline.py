"""The experiment's stages: curate with the real product, build every condition's training set, train, evaluate.

Curation runs `frontier curate` (the CLI, embedded default: SQLite, the filesystem queue and a real Celery
worker) once per seed with the default policy; every other registered policy then re-decides the same job on
its stored scores through `service.jobs.decisions.decide`, the code behind `POST /v1/jobs/{id}/decide`, and its
retained set is read back through the export code (`service.jobs.exports`). New policies in
`service.policies.POLICIES` become conditions without any change here. Where the report of a policy's decision
set warns that an IFD / r-IFD cut rejects nearly everything, the policy is run again with the cut it suggests
(the job's median) as the condition `policy:NAME+suggested`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean
from typing import Any

import httpx

from bench.experiment.student import Example, FineTunePlan, evaluate, fine_tune
from core.probes import EvalItem
from core.processes import free_port, stop_process

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
JOB_LINE = re.compile(r"job ([0-9a-f-]{36})")


SERVE_START_S = 120
PROBE_POLL_S = 1.0


@contextlib.contextmanager
def _serve(data_dir: Path, log_path: Path) -> Iterator[str]:
    """`frontier serve` with a local worker on `data_dir` (embedded, no keys) until the block ends; yields its URL."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("FRONTIER_")}
    env.update(FRONTIER_DATA_DIR=str(data_dir), FRONTIER_AUTH="none")
    command = [sys.executable, "-m", "frontier.cli", "serve", "--port", str(port), "--worker"]
    with log_path.open("wb") as sink:
        # Its own session, so the server and the worker it started are stopped together.
        server = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVE_START_S
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"frontier serve exited with {server.returncode}:\n{log_path.read_text()[-2000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                tail = log_path.read_text()[-2000:]
                raise RuntimeError(f"frontier serve did not answer in {SERVE_START_S}s:\n{tail}")
            time.sleep(0.25)
        yield url
    finally:
        stop_process(server, timeout=45, group=True)


def follow_up_on_job(
    curated: Path, job_id: str, params: dict[str, Any], out: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run a probe follow-up on a curated job as a user would, and return its probe run and the job's report after.

    `curated` is a `frontier curate` output directory; its embedded state is copied to `out` (the original stays as
    it was), a `frontier serve` with a local worker is started on the copy, the follow-up is posted to
    `POST /v1/jobs/{id}/probes` and followed to its end, and the report is read from `GET /v1/jobs/{id}/report`:
    the ranking that combines the job's first probe run with its follow-up (docs/probes.md).
    """
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    data_dir = out / ".frontier"
    shutil.copytree(curated / ".frontier", data_dir, ignore=shutil.ignore_patterns("broker"))
    with _serve(data_dir, out / "serve.log") as url, httpx.Client(base_url=url, timeout=30) as client:
        created = client.post(f"/v1/jobs/{job_id}/probes", json=params)
        if created.status_code != 202:
            raise RuntimeError(f"the follow-up was refused ({created.status_code}): {created.text}")
        probe_id = created.json()["id"]
        while True:
            probe: dict[str, Any] = client.get(f"/v1/jobs/{job_id}/probes/{probe_id}").json()
            if probe["status"] in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(PROBE_POLL_S)
        if probe["status"] != "succeeded":
            raise RuntimeError(f"the follow-up probe run {probe_id} ended {probe['status']}: {probe.get('error')}")
        report: dict[str, Any] = client.get(f"/v1/jobs/{job_id}/report").json()
    (out / "probe.json").write_text(json.dumps(probe, indent=2) + "\n")
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return probe, report


@dataclass(frozen=True, slots=True)
class Curated:
    """One curation job's outputs the experiment needs: each policy's retained examples and per-teacher scores."""

    job_id: str
    # Per policy, the retained samples' (sample id, chosen candidate name), in input order.
    policy_sets: dict[str, list[tuple[str, str]]]
    teacher_scores: dict[str, dict[str, float]]
    seconds: float
    # What `frontier curate` reported: ranking, ranking_basis, rankings and the probe evidence (report.json).
    report: dict[str, Any]
    # The probe run `frontier curate --probe` made (probe.json), or None without one.
    probe: dict[str, Any] | None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every JSON object of a JSONL file."""
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def run_curate(data: Path, student: Path, out: Path, probe: dict[str, Any] | None = None) -> str:
    """Run `frontier curate` on `data` with `student` in a fresh `out` (with `--probe` when given its parameters,
    `{}` for the product's default budget); returns the job id."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    env = {**os.environ, "FRONTIER_DATA_DIR": str(out / ".frontier")}
    command = [sys.executable, "-m", "frontier.cli", "curate", str(data), "--student", str(student), "--out", str(out)]
    if probe is not None:
        command += ["--probe", *(["--probe-params", json.dumps(probe)] if probe else [])]
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)
    (out / "curate.log").write_text(result.stderr)
    if result.returncode != 0:
        raise RuntimeError(f"frontier curate failed ({result.returncode}):\n{result.stderr[-2000:]}")
    match = JOB_LINE.search(result.stderr)
    if match is None:
        raise RuntimeError("frontier curate did not report a job id")
    return match.group(1)


@contextlib.contextmanager
def _product_settings(data_dir: Path) -> Iterator[None]:
    """Point this process's product settings at a curate run's embedded database, then restore them."""
    from service.settings import get_settings

    previous = os.environ.get("FRONTIER_DATA_DIR")
    os.environ["FRONTIER_DATA_DIR"] = str(data_dir)
    get_settings.cache_clear()
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("FRONTIER_DATA_DIR", None)
        else:
            os.environ["FRONTIER_DATA_DIR"] = previous
        get_settings.cache_clear()


def curate(
    data: Path, student: Path, out: Path, policies: Sequence[str] | None = None, probe: dict[str, Any] | None = None
) -> Curated:
    """Curate `data` once (probing it when `probe` is given), then re-decide it under each policy; every policy's
    retained (example, teacher) pairs."""
    from service.db import dispose_engines, session_scope
    from service.jobs import decisions as jobs
    from service.jobs.report import build_report, suggested_params
    from service.policies import POLICIES

    started = time.perf_counter()
    job_id = run_curate(data, student, out, probe)
    names = list(policies) if policies is not None else sorted(POLICIES)
    # Per policy, the retained samples' (sample id, chosen candidate name), in input order.
    policy_sets: dict[str, list[tuple[str, str]]] = {}
    with _product_settings(out / ".frontier"):
        try:
            job = uuid.UUID(job_id)
            for name in names:
                with session_scope() as session:
                    made = jobs.decide(session, job, name, None)
                    decision_set, params = made.id, dict(made.params)
                policy_sets[name] = _retained(job, decision_set)
                # Where the report warns that a cut rejects nearly everything, also take its advice (the job's
                # median as the cut): the condition `NAME+suggested` measures whether the advice helps.
                with session_scope() as session:
                    suggested = suggested_params(build_report(session, job, decision_set))
                if suggested:
                    with session_scope() as session:
                        advised = jobs.decide(session, job, name, {**params, **suggested}).id
                    policy_sets[f"{name}+suggested"] = _retained(job, advised)
            # Follow the report's advice end to end: the re-decide it suggests (keep only its recommended teacher,
            # ranking[0] on whatever basis the report names), with exactly its parameters.
            with session_scope() as session:
                own = jobs.list_decision_sets(session, job).items[0].id
                suggestion = build_report(session, job, own).suggested_decide
            if suggestion is not None:
                with session_scope() as session:
                    advised = jobs.decide(session, job, suggestion.policy, suggestion.params).id
                policy_sets["recommended"] = _retained(job, advised)
            with session_scope() as session:
                table, _ = jobs.load_score_table(session, job)
        finally:
            dispose_engines()
    teacher_scores: dict[str, dict[str, float]] = {}
    by_teacher: dict[str, list[tuple[float, float]]] = {}
    # Dataset-level RSR (arXiv 2601.14249): mean of per-sample mean clipped rank / mean of per-sample mean surprisal.
    ranks: dict[str, list[tuple[float, float]]] = {}
    for sample in table:
        for candidate in sample.candidates:
            key = candidate.teacher or "original"
            if candidate.scored and candidate.ifd is not None and candidate.rifd is not None:
                by_teacher.setdefault(key, []).append((candidate.ifd, candidate.rifd))
            surprisal = candidate.nll_response_given_instruction
            if candidate.status == "scored" and candidate.rank_mean is not None and surprisal is not None:
                ranks.setdefault(key, []).append((candidate.rank_mean, surprisal))
    for teacher, values in by_teacher.items():
        teacher_scores[teacher] = {
            "ifd": round(fmean(ifd for ifd, _ in values), 4),
            "rifd": round(fmean(rifd for _, rifd in values), 4),
            "ifd_below_1": round(fmean(ifd < 1 for ifd, _ in values), 4),
        }
    for teacher, pairs in ranks.items():
        scores = teacher_scores.setdefault(teacher, {})
        scores["rank_mean"] = round(fmean(rank for rank, _ in pairs), 4)
        scores["rsr"] = round(fmean(rank for rank, _ in pairs) / fmean(nll for _, nll in pairs), 4)
    report = json.loads((out / "report.json").read_text())
    probe_file = out / "probe.json"
    return Curated(
        job_id,
        policy_sets,
        teacher_scores,
        round(time.perf_counter() - started, 1),
        {key: report.get(key) for key in ("ranking", "ranking_basis", "rankings", "signals_agree", "probe")},
        json.loads(probe_file.read_text()) if probe_file.exists() else None,
    )


def _retained(job: uuid.UUID, decision_set: int) -> list[tuple[str, str]]:
    """The (sample id, chosen candidate name) of every sample the decision set retained, in input order."""
    from service.db import session_scope
    from service.jobs import exports

    with session_scope() as session:
        records = exports.iter_records(session, job, "retained", scores=True, decision_set_id=decision_set)
        return [
            (sample_id, str(curation["chosen_candidate"]))
            for sample_id, _, _, curation in records
            if curation is not None
        ]


def load_candidates(data: Path) -> dict[tuple[str, str], Example]:
    """Every candidate of a dataset (any layout the product ingests), keyed by (sample id, candidate name)."""
    from core.dataset import candidate_texts, parse_dataset

    return {
        (record.id, text.name): Example(text.instruction, text.input, text.response)
        for record in parse_dataset(data, name=str(data))
        for text in candidate_texts(record)
    }


def conditions(
    candidates: dict[tuple[str, str], Example], curated: Curated
) -> dict[str, tuple[list[Example], dict[str, int]]]:
    """Every condition's training set and its composition by source: each teacher alone, the union, each policy."""
    from core.dataset import ORIGINAL

    by_teacher: dict[str, list[Example]] = {}
    for (_, name), example in candidates.items():
        if name != ORIGINAL:
            by_teacher.setdefault(name, []).append(example)
    result: dict[str, tuple[list[Example], dict[str, int]]] = {}
    for teacher, examples in by_teacher.items():
        result[f"teacher:{teacher}"] = (examples, {teacher: len(examples)})
    union = [example for examples in by_teacher.values() for example in examples]
    result["union"] = (union, {teacher: len(examples) for teacher, examples in by_teacher.items()})
    for policy, chosen in curated.policy_sets.items():
        result[f"policy:{policy}"] = (
            [candidates[key] for key in chosen],
            dict(Counter(name for _, name in chosen)),
        )
    return result


def configure_logging() -> None:
    """The experiment's log format on stderr, the libraries' chatter silenced."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    for noisy in ("transformers", "httpx", "celery"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def init_fine_tune_process(threads: int) -> None:
    """A process that runs `run_condition` for a pool: the experiment's log format and thread count."""
    import torch

    configure_logging()
    torch.set_num_threads(threads)


def draw_seed(seed: int, draw: int) -> int:
    """The fine-tune seed (data order) of a condition's `draw`-th fine-tune in experiment seed `seed`."""
    return seed + 1000 * draw


def run_condition(
    name: str,
    examples: Sequence[Example],
    student: Path,
    evaluation: dict[str, list[EvalItem]],
    work: Path,
    plan: FineTunePlan,
    seed: int,
    *,
    max_new_tokens: int,
    device: str,
    keep_model: bool,
    draw: int = 0,
) -> dict[str, Any]:
    """Fine-tune a copy of the student on one condition's examples (its `draw`-th data order) and evaluate it."""
    model_dir = work / (name.replace(":", "-") + (f"-draw{draw}" if draw else ""))
    result: dict[str, Any] = {"train": fine_tune(student, examples, model_dir, plan, draw_seed(seed, draw), device)}
    started = time.perf_counter()
    result["eval"] = {
        split: evaluate(model_dir, items, max_new_tokens=max_new_tokens, device=device)
        for split, items in evaluation.items()
    }
    result["eval_seconds"] = round(time.perf_counter() - started, 1)
    if not keep_model:
        shutil.rmtree(model_dir, ignore_errors=True)
    accuracies = ", ".join(f"{split} {value['accuracy']:.3f}" for split, value in result["eval"].items())
    log.info("seed %d %-24s n=%-5d %s", seed, name + (f" #{draw}" if draw else ""), len(examples), accuracies)
    return result


def mean_of_draws(draws: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One condition's result from several fine-tunes of it: each split's exact match is the mean over the draws.

    `train` stays the first draw's (the cost of one full fine-tune, which is what a probe's share is measured
    against); each draw's own figures are kept under `draws`.
    """
    first = draws[0]
    evaluation = {
        split: {**value, "accuracy": fmean(d["eval"][split]["accuracy"] for d in draws)}
        for split, value in first["eval"].items()
    }
    return {
        "train": first["train"],
        "eval": evaluation,
        "eval_seconds": round(sum(d["eval_seconds"] for d in draws), 1),
        "draws": [
            {"train": d["train"], "accuracy": {split: v["accuracy"] for split, v in d["eval"].items()}} for d in draws
        ],
    }
