"""What a job's probe runs tell the teacher report: its succeeded runs and their teacher conditions."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy.orm import Session

from core.probes import condition_kind
from service.models import ProbeStatus
from service.probes import presenters, repository
from service.probes.schemas import ConditionOut, ProbeOut


@dataclass(frozen=True, slots=True)
class TeacherProbes:
    """A succeeded probe run, and its `teacher:NAME` conditions' results by teacher name."""

    run: ProbeOut
    teachers: dict[str, ConditionOut]


def teacher_probe_runs(session: Session, job_id: uuid.UUID) -> Iterator[TeacherProbes]:
    """The job's succeeded probe runs with their per-teacher results, newest first (each read when reached)."""
    for run in repository.list_probe_runs(session, job_id):
        if run.status != ProbeStatus.succeeded:
            continue
        out = presenters.probe_out(session, run)
        teachers: dict[str, ConditionOut] = {}
        for result in out.results:
            kind, name = condition_kind(result.condition)
            if kind == "teacher" and name is not None:
                teachers[name] = result
        yield TeacherProbes(out, teachers)
