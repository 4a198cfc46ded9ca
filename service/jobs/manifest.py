"""Provenance of a curated dataset: the manifest (JSON) and the dataset card (Markdown) of one decision set.

The manifest names everything a training set depends on: the job, the student's resolved path and content
fingerprint, the prompt template and scoring-engine version, the policy with its version and parameters, the
samples per decision and per reason code, and the code that decided (package version and git commit when it
runs from a git checkout, else null). Re-running `POST /v1/jobs/{id}/decide` with the manifest's policy and
params over the same job reproduces the same decisions.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from datetime import UTC, datetime
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from sqlalchemy.orm import Session

from service.jobs import decision_repository, repository
from service.jobs.decisions import decision_set_view
from service.jobs.guards import decided_job
from service.jobs.presenters import as_utc, student_out
from service.jobs.report import build_report
from service.jobs.schemas import CodeVersion, ManifestOut, ReportOut

PACKAGE = "frontier-curator"
_ROOT = Path(__file__).resolve().parents[2]


@lru_cache(maxsize=1)
def code_version() -> CodeVersion:
    """The installed package version and, from a git checkout, the commit it runs at."""
    try:
        version = metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        version = "unknown"
    commit = None
    if (_ROOT / ".git").exists():
        try:
            result = subprocess.run(
                ["git", "-C", str(_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
            )
            commit = result.stdout.strip() or None if result.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            commit = None
    return CodeVersion(package=PACKAGE, version=version, git_commit=commit)


def build_manifest(session: Session, job_id: uuid.UUID, decision_set_id: int | None = None) -> ManifestOut:
    """The manifest of a job's decision set (its latest unless one is named)."""
    job, decision_set = decided_job(session, job_id, decision_set_id, "described")
    return ManifestOut(
        job_id=job.id,
        dataset={"name": job.dataset_name, "format": job.dataset_format, "samples": job.total_samples},
        created_at=as_utc(job.created_at) or datetime.now(UTC),
        finished_at=as_utc(job.finished_at),
        student=student_out(job.student),
        template=job.template,
        scoring_versions=repository.scoring_versions(session, job_id),
        candidates=job.total_candidates,
        decision_set=decision_set_view(session, job_id, decision_set),
        reasons=decision_repository.reason_counts(session, decision_set.id),
        code=code_version(),
        generated_at=datetime.now(UTC),
    )


def dataset_card(manifest: ManifestOut, report: ReportOut) -> str:
    """A Markdown dataset card (README.md) for the retained samples of the manifest's decision set."""
    policy = manifest.decision_set.policy
    request = {"policy": policy.name, "params": policy.params}
    counts = manifest.decision_set.counts
    code, student = manifest.code, manifest.student
    lines = [
        f"# Curated dataset: {manifest.dataset.get('name') or 'job ' + str(manifest.job_id)}",
        "",
        f"{counts.retained} of {manifest.dataset.get('samples')} samples retained by Frontier Curator: each sample's "
        f"original response or one teacher's refinement, chosen by what the student `{manifest.student.path}` can "
        "learn from, judged by the student's own statistics (IFD, r-IFD, conditional perplexity).",
        "",
        "## Provenance",
        "",
        "| | |",
        "|---|---|",
        f"| job | `{manifest.job_id}` |",
        f"| student | `{student.path}` ({student.model_type}, max length {student.max_length}) |",
        f"| student fingerprint | `{manifest.student.fingerprint}` |",
        f"| template | `{manifest.template}` |",
        f"| scoring version | {', '.join(manifest.scoring_versions) or '-'} |",
        f"| decision set | {manifest.decision_set.id} |",
        f"| policy | `{policy.name}` v{policy.version} |",
        f"| params | `{json.dumps(policy.params)}` |",
        f"| code | {code.package} {code.version}, commit `{code.git_commit or 'unknown'}` |",
        "",
        "## Decisions",
        "",
        f"retained {counts.retained}, rejected {counts.rejected}, unscored {counts.unscored}.",
        "",
        "| decision | reason | samples |",
        "|---|---|---|",
    ]
    for decision, reasons in manifest.reasons.items():
        lines += [f"| {decision} | `{reason}` | {count} |" for reason, count in reasons.items()]
    lines += [
        "",
        "## Teachers",
        "",
        "| teacher | candidates | chosen for a retained sample | inside the student's frontier |",
        "|---|---|---|---|",
    ]
    for teacher in report.teachers:
        accepted = f"{teacher.accepted} ({teacher.accepted_share:.0%})" if teacher.accepted_share is not None else "0"
        lines.append(f"| {teacher.teacher} | {teacher.candidates} | {accepted} | {teacher.zones['inside']:.0%} |")
    if report.recommendation:
        lines += ["", report.recommendation]
    lines += [
        "",
        "## Reproduce",
        "",
        f"`POST /v1/jobs/{manifest.job_id}/decide` with `{json.dumps(request)}`"
        " over the same job gives the same decisions; the student fingerprint pins the checkpoint.",
        "",
        "## Method",
        "",
        "IFD = PPL(A|Q)/PPL(A) (Li et al., Cherry LLM, NAACL 2024); r-IFD = PPL(Q|A')/PPL(Q) (Li et al., Selective "
        "Reflection-Tuning, ACL Findings 2024); hedging words per Kim et al. 2026 (arXiv 2603.24472). Policies and "
        "the frontier score: docs/policies.md of Frontier Curator.",
        "",
    ]
    return "\n".join(lines)


def card_markdown(session: Session, job_id: uuid.UUID, decision_set_id: int | None = None) -> str:
    """The dataset card of a job's decision set (its latest unless one is named)."""
    manifest = build_manifest(session, job_id, decision_set_id)
    return dataset_card(manifest, build_report(session, job_id, manifest.decision_set.id))
