"""HTTP routes for jobs (v1): each route parses the request and calls one service function."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from service.deps import SettingsDep, UowDep
from service.ingest import DatasetError, DatasetFormat, parse_dataset, parse_records
from service.jobs import exports
from service.jobs import service as jobs
from service.jobs.repository import SampleFilter
from service.jobs.schemas import DecisionName, JobCreate, JobOut, JobPage, JobStatusName, SampleOut, SamplePage
from service.queue import enqueue_chunks

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

_CREATE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "student"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "JSONL or Parquet dataset"},
                        "student": {"type": "string", "description": "student checkpoint directory"},
                        "policy": {"type": "string", "default": "reflection"},
                        "params": {"type": "string", "description": "policy parameters as a JSON object"},
                        "template": {"type": "string", "enum": ["plain", "chat", "alpaca"]},
                        "format": {"type": "string", "enum": ["jsonl", "parquet"]},
                    },
                }
            },
            "application/json": {"schema": {"$ref": "#/components/schemas/JobCreate"}},
        },
    }
}


def _form_text(form: Any, name: str) -> str | None:
    value = form.get(name)
    if value is None or isinstance(value, str):
        return value
    raise DatasetError("expected a text field", field=name)


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobOut,
    openapi_extra=_CREATE_BODY,
    responses={413: {"description": "upload too large"}, 422: {"description": "bad dataset, student or policy"}},
)
async def create_job(request: Request, uow: UowDep, settings: SettingsDep) -> JobOut:
    """Create a curation job from an uploaded dataset (multipart) or inline samples (JSON); 202 + the job."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > settings.max_upload_bytes:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"upload exceeds {settings.max_upload_bytes} bytes")
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise DatasetError("missing: upload the dataset as the multipart field 'file'", field="file")
        data = await upload.read()
        student = _form_text(form, "student")
        if not student:
            raise DatasetError("missing: the student checkpoint directory", field="student")
        raw_params = _form_text(form, "params")
        try:
            params = json.loads(raw_params) if raw_params else None
        except json.JSONDecodeError as exc:
            raise DatasetError(f"not valid JSON: {exc.msg}", field="params") from exc
        if params is not None and not isinstance(params, dict):
            raise DatasetError("expected a JSON object", field="params")
        fmt: DatasetFormat | None
        match _form_text(form, "format"):
            case None:
                fmt = None
            case "jsonl" | "parquet" as given:
                fmt = given
            case _:
                raise DatasetError("expected 'jsonl' or 'parquet'", field="format")
        name = upload.filename or ""
        records = await run_in_threadpool(parse_dataset, data, fmt=fmt, name=name)
        dataset_format: str = fmt or ("parquet" if data[:4] == b"PAR1" else "jsonl")
        policy, template = _form_text(form, "policy"), _form_text(form, "template")
    else:
        try:
            body = JobCreate.model_validate_json(await request.body())
        except ValidationError as exc:
            first = exc.errors()[0]
            raise DatasetError(first["msg"], field=".".join(str(p) for p in first["loc"]) or None) from exc
        records = parse_records(body.samples)
        student, params, policy, template = body.student, body.params, body.policy, body.template
        name, dataset_format = body.name, "json"
    job = await run_in_threadpool(
        jobs.create_job,
        uow,
        settings,
        records=records,
        student_path=student,
        policy=policy,
        params=params,
        template=template,
        dataset_name=name,
        dataset_format=dataset_format,
        enqueue=lambda job_id, n_chunks: enqueue_chunks(job_id, n_chunks, settings),
    )
    return jobs.job_out(job)


@router.get("", response_model=JobPage)
def list_jobs(
    uow: UowDep,
    status_filter: Annotated[JobStatusName | None, Query(alias="status")] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> JobPage:
    """List jobs, newest first (keyset pagination)."""
    return jobs.list_jobs(uow.session, status=status_filter, cursor=cursor, limit=limit)


@router.get("/{job_id}", response_model=JobOut)
def get_job(job_id: uuid.UUID, uow: UowDep) -> JobOut:
    """A job's status, progress, counts, throughput, student identity, policy and error."""
    return jobs.job_out(jobs.get_job(uow.session, job_id))


@router.post("/{job_id}/cancel", response_model=JobOut)
def cancel_job(job_id: uuid.UUID, uow: UowDep) -> JobOut:
    """Cancel a queued or running job; 409 if it has already finished."""
    return jobs.job_out(jobs.cancel_job(uow.session, job_id))


@router.get("/{job_id}/samples", response_model=SamplePage)
def list_samples(
    job_id: uuid.UUID,
    uow: UowDep,
    decision: DecisionName | None = None,
    reason: str | None = None,
    teacher: Annotated[str | None, Query(description="samples that have a refinement by this teacher")] = None,
    chosen: Annotated[str | None, Query(description="samples whose chosen candidate has this name")] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> SamplePage:
    """Sample-level decisions with every candidate's scores, filtered, in input order (keyset pagination)."""
    filters = SampleFilter(decision=decision, reason=reason, teacher=teacher, chosen=chosen)
    return jobs.list_samples(uow.session, job_id, filters, cursor=cursor, limit=limit)


@router.get("/{job_id}/samples/{sample_id}", response_model=SampleOut)
def get_sample(job_id: uuid.UUID, sample_id: str, uow: UowDep) -> SampleOut:
    """One sample: every candidate's texts and scores, the decision, the chosen candidate and the reason."""
    return jobs.get_sample(uow.session, job_id, sample_id)


@router.get(
    "/{job_id}/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}, "application/vnd.apache.parquet": {}}}},
)
def export(
    job_id: uuid.UUID,
    format: Literal["jsonl", "parquet"] = "jsonl",
    decision: Literal["retained", "rejected", "unscored", "all"] = "retained",
    scores: Annotated[bool, Query(description="add each sample's decision and chosen candidate's scores")] = False,
) -> StreamingResponse:
    """Stream the curated dataset in the input's own layout (the chosen candidate's text per sample)."""
    stream = exports.export_stream(job_id, format, decision, scores=scores)
    media = "application/vnd.apache.parquet" if format == "parquet" else "application/x-ndjson"
    filename = f"{job_id}-{decision}.{format}"
    return StreamingResponse(
        stream, media_type=media, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )
