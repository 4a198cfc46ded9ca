"""HTTP routes for probe runs (v1): each route parses the request and calls one service function."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, status
from fastapi.concurrency import run_in_threadpool

from core.dataset import DatasetError, LimitError
from service.deps import SettingsDep, UowDep, job_access
from service.jobs import guards
from service.probes import lifecycle, presenters, repository
from service.probes.params import MAX_ID
from service.probes.schemas import ProbeList, ProbeOut
from service.queue import enqueue_probe_tasks

# Every route may only reach the caller's own jobs (404 for another tenant's), like the jobs routes.
router = APIRouter(prefix="/v1/jobs", tags=["probes"], dependencies=[Depends(job_access)])

ProbeId = Annotated[int, Path(ge=1, le=MAX_ID, description="a probe run id of this job")]

_CREATE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "eval_set": {
                            "type": "string",
                            "format": "binary",
                            "description": "JSONL or Parquet of instruction, input, answer[, response]; default: "
                            "hold out `held_out` of the job's samples",
                        },
                        "params": {
                            "type": "string",
                            "description": "budget fields, answer_pattern and decision_sets as a JSON object",
                        },
                    },
                }
            },
            "application/json": {"schema": {"$ref": "#/components/schemas/ProbeCreate"}},
        },
    }
}


def _too_large(size: int, limit: int) -> LimitError:
    return LimitError(f"the request is {size:,} bytes, over {limit:,}", limit="FRONTIER_PROBE_MAX_REQUEST_BYTES")


async def _capped_body(request: Request, limit: int) -> bytes:
    """The request's body, refused as soon as more than `limit` bytes have arrived (a chunked body has no length)."""
    parts: list[bytes] = []
    size = 0
    async for part in request.stream():
        size += len(part)
        if size > limit:
            raise _too_large(size, limit)
        parts.append(part)
    return b"".join(parts)


def _json_object(raw: bytes | str, field: str | None) -> dict[str, Any] | None:
    if not raw.strip():
        return None
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"not valid JSON: {exc}", field=field) from exc
    if value is not None and not isinstance(value, dict):
        raise DatasetError(f"expected a JSON object, got {type(value).__name__}", field=field)
    return value


@router.post(
    "/{job_id}/probes",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ProbeOut,
    openapi_extra=_CREATE_BODY,
    responses={
        409: {"description": "the job has not succeeded"},
        413: {"description": "over a limit (named)"},
        422: {"description": "bad parameter or eval set"},
    },
)
async def create_probe(job_id: uuid.UUID, request: Request, uow: UowDep, settings: SettingsDep) -> ProbeOut:
    """Start a probe run on a succeeded job: fine-tune its student briefly per condition and seed; 202 + the run."""
    length = request.headers.get("content-length")
    limit = settings.probe_max_request_bytes
    if length is not None and length.isdigit() and int(length) > limit:
        raise _too_large(int(length), limit)
    eval_file: bytes | None = None
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("eval_set")
        if isinstance(upload, str):
            raise DatasetError("expected a file (JSONL or Parquet)", field="eval_set")
        if upload is not None:
            # Content-Length can be absent (chunked uploads) or wrong: the size that counts is what arrived.
            eval_file = await upload.read(limit + 1)
            if len(eval_file) > limit:
                raise _too_large(upload.size or len(eval_file), limit)
        raw = form.get("params")
        if raw is not None and not isinstance(raw, str):
            raise DatasetError("expected a text field holding a JSON object", field="params")
        params = _json_object(raw or "", "params")
    else:
        body = await _capped_body(request, limit)
        params = _json_object(body, None)
    run = await run_in_threadpool(
        lifecycle.create_probe_run,
        uow,
        settings,
        job_id,
        params=params,
        eval_file=eval_file,
        enqueue=lambda probe_id, tasks: enqueue_probe_tasks(probe_id, tasks, settings),
    )
    return await run_in_threadpool(presenters.probe_out, uow.session, run)


@router.get("/{job_id}/probes", response_model=ProbeList)
def list_probes(job_id: uuid.UUID, uow: UowDep) -> ProbeList:
    """The job's probe runs, newest first, each with its progress and per-condition results."""
    guards.get_job(uow.session, job_id)
    return presenters.probe_list(uow.session, repository.list_probe_runs(uow.session, job_id))


@router.get("/{job_id}/probes/{probe_id}", response_model=ProbeOut)
def get_probe(job_id: uuid.UUID, probe_id: ProbeId, uow: UowDep) -> ProbeOut:
    """One probe run: budget, eval source, progress, learning curves and summaries per condition, cost, error."""
    return presenters.probe_out(uow.session, lifecycle.probe_run(uow.session, job_id, probe_id))


@router.post("/{job_id}/probes/{probe_id}/cancel", response_model=ProbeOut)
def cancel_probe(job_id: uuid.UUID, probe_id: ProbeId, uow: UowDep) -> ProbeOut:
    """Cancel a queued or running probe run (its tasks stop at their next curve point); 409 if already finished."""
    return presenters.probe_out(uow.session, lifecycle.cancel_probe_run(uow.session, job_id, probe_id))
