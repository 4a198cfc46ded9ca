"""Request dependencies: settings, the request's unit of work (the API's one place that commits), the caller."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request

from service.auth import LOCAL, Caller, authenticate, check_job_access
from service.db import UnitOfWork, unit_of_work
from service.settings import Settings, get_settings


def _uow() -> Iterator[UnitOfWork]:
    with unit_of_work() as uow:
        yield uow


# Function scope: the transaction commits (and queued tasks are sent) before the response goes out.
UowDep = Annotated[UnitOfWork, Depends(_uow, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def _caller(request: Request, uow: UowDep, settings: SettingsDep) -> Caller:
    if not settings.auth_required:
        return LOCAL
    header = request.headers.get("authorization", "")
    key = header[len("bearer ") :].strip() if header.lower().startswith("bearer ") else request.headers.get("x-api-key")
    return authenticate(uow.session, key)


CallerDep = Annotated[Caller, Depends(_caller)]


def job_access(request: Request, caller: CallerDep, uow: UowDep) -> None:
    """On every /v1/jobs/{job_id}/... route: 404 unless the job belongs to the caller's tenant."""
    raw = request.path_params.get("job_id")
    if raw is None:
        return
    try:
        job_id = uuid.UUID(str(raw))
    except ValueError:
        return  # the route's own validation answers 422
    check_job_access(uow.session, job_id, caller)
