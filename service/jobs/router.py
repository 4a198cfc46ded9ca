"""HTTP routes for jobs (v1): each route parses the request and calls one service function."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import ValidationError

from core.dataset import DatasetError, DatasetFormat, LimitError, parse_dataset, parse_records
from core.decisions import DecisionName, ExportDecision
from core.scores import MAX_RANK_CLIP
from core.templates import TEMPLATES
from service.deps import CallerDep, SettingsDep, UowDep, job_access
from service.jobs import decisions, exports, guards, lifecycle, manifest, points, presenters, queries, report, sweep
from service.jobs.report_markdown import report_markdown
from service.jobs.repository import SampleFilter
from service.jobs.schemas import (
    DecideIn,
    DecisionSetList,
    DecisionSetOut,
    JobCreate,
    JobOut,
    JobPage,
    JobStatusName,
    ManifestOut,
    PointsOut,
    ReportOut,
    SampleOut,
    SamplePage,
    WhatIfIn,
    WhatIfOut,
)
from service.queue import enqueue_chunks

# Every route needs the caller (an API key unless auth is off) and may only reach the caller's own jobs.
router = APIRouter(prefix="/v1/jobs", tags=["jobs"], dependencies=[Depends(job_access)])

DecisionSetParam = Annotated[
    int | None, Query(description="a decision set id of this job (GET .../decision-sets); default: the latest")
]

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
                        "template": {"type": "string", "enum": list(TEMPLATES)},
                        "rank_clip": {"type": "integer", "minimum": 1, "maximum": MAX_RANK_CLIP, "default": 100},
                        "format": {"type": "string", "enum": ["jsonl", "parquet"]},
                    },
                }
            },
            "application/json": {"schema": {"$ref": "#/components/schemas/JobCreate"}},
        },
    }
}


def _too_large(size: int, limit: int) -> LimitError:
    return LimitError(f"the upload is {size:,} bytes, over {limit:,}", limit="FRONTIER_MAX_UPLOAD_BYTES")


def _form_text(form: Any, name: str) -> str | None:
    value = form.get(name)
    if value is None or isinstance(value, str):
        return value
    raise DatasetError("expected a text field", field=name)


def _form_int(form: Any, name: str) -> int | None:
    value = _form_text(form, name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise DatasetError(f"expected an integer, got {value[:40]!r}", field=name) from None


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobOut,
    openapi_extra=_CREATE_BODY,
    responses={413: {"description": "upload too large"}, 422: {"description": "bad dataset, student or policy"}},
)
async def create_job(request: Request, uow: UowDep, settings: SettingsDep, caller: CallerDep) -> JobOut:
    """Create a curation job from an uploaded dataset (multipart) or inline samples (JSON); 202 + the job.

    With an `Idempotency-Key` header, the same key and request return the job it created; the same key with
    another request is a 409.
    """
    idempotency_key = request.headers.get("idempotency-key")
    if idempotency_key is not None and not 0 < len(idempotency_key.strip()) <= 200:
        raise DatasetError("expected 1 to 200 characters", field="Idempotency-Key")
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > settings.max_upload_bytes:
        raise _too_large(int(length), settings.max_upload_bytes)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise DatasetError("missing: upload the dataset as the multipart field 'file'", field="file")
        # Content-Length can be absent (chunked uploads) or wrong: the size that counts is what arrived.
        data = await upload.read()
        if len(data) > settings.max_upload_bytes:
            raise _too_large(len(data), settings.max_upload_bytes)
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
        records = await run_in_threadpool(parse_dataset, data, fmt=fmt, name=name, limits=settings.limits)
        content_digest = hashlib.sha256(data).hexdigest()
        dataset_format: str = fmt or ("parquet" if data[:4] == b"PAR1" else "jsonl")
        policy, template = _form_text(form, "policy"), _form_text(form, "template")
        rank_clip = _form_int(form, "rank_clip")
    else:
        try:
            body = JobCreate.model_validate_json(await request.body())
        except ValidationError as exc:
            first = exc.errors()[0]
            raise DatasetError(first["msg"], field=".".join(str(p) for p in first["loc"]) or None) from exc
        records = parse_records(body.samples, limits=settings.limits)
        student, params, policy, template = body.student, body.params, body.policy, body.template
        rank_clip = body.rank_clip
        name, dataset_format = body.name, "json"
        content_digest = hashlib.sha256(json.dumps(body.samples, sort_keys=True).encode()).hexdigest()
    asked: list[Any] = [content_digest, name, dataset_format, student, policy, params, template]
    if rank_clip is not None:  # only when given, so a retry hashes as it did before the parameter existed
        asked.append(rank_clip)
    request_hash = hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()
    job = await run_in_threadpool(
        lifecycle.create_job,
        uow,
        settings,
        records=records,
        student_path=student,
        policy=policy,
        params=params,
        template=template,
        rank_clip=rank_clip,
        dataset_name=name,
        dataset_format=dataset_format,
        tenant_id=caller.tenant_id,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        enqueue=lambda job_id, n_chunks: enqueue_chunks(job_id, n_chunks, settings),
    )
    return presenters.job_out(job)


@router.get("", response_model=JobPage)
def list_jobs(
    uow: UowDep,
    caller: CallerDep,
    status_filter: Annotated[JobStatusName | None, Query(alias="status")] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> JobPage:
    """List jobs, newest first (keyset pagination)."""
    return queries.list_jobs(uow.session, tenant_id=caller.tenant_id, status=status_filter, cursor=cursor, limit=limit)


@router.get("/{job_id}", response_model=JobOut)
def get_job(job_id: uuid.UUID, uow: UowDep) -> JobOut:
    """A job's status, progress, counts, throughput, student identity, policy and error."""
    return presenters.job_out(guards.get_job(uow.session, job_id))


@router.post("/{job_id}/cancel", response_model=JobOut)
def cancel_job(job_id: uuid.UUID, uow: UowDep) -> JobOut:
    """Cancel a queued or running job; 409 if it has already finished."""
    return presenters.job_out(lifecycle.cancel_job(uow.session, job_id))


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
    decision_set: DecisionSetParam = None,
) -> SamplePage:
    """Sample-level decisions with every candidate's scores, filtered, in input order (keyset pagination)."""
    filters = SampleFilter(decision=decision, reason=reason, teacher=teacher, chosen=chosen)
    return queries.list_samples(uow.session, job_id, filters, cursor=cursor, limit=limit, decision_set_id=decision_set)


@router.get("/{job_id}/samples/{sample_id}", response_model=SampleOut)
def get_sample(job_id: uuid.UUID, sample_id: str, uow: UowDep, decision_set: DecisionSetParam = None) -> SampleOut:
    """One sample: every candidate's texts and scores, the decision, the chosen candidate and the reason."""
    return queries.get_sample(uow.session, job_id, sample_id, decision_set_id=decision_set)


@router.post("/{job_id}/decide", status_code=status.HTTP_201_CREATED, response_model=DecisionSetOut)
def decide(job_id: uuid.UUID, body: DecideIn, uow: UowDep) -> DecisionSetOut:
    """Run a policy over the job's stored scores as a new decision set (no rescoring); it becomes the latest."""
    return decisions.redecide(uow.session, job_id, body.policy, body.params)


@router.get("/{job_id}/decision-sets", response_model=DecisionSetList)
def list_decision_sets(job_id: uuid.UUID, uow: UowDep) -> DecisionSetList:
    """The job's decision sets, oldest (its own) first, with their policies and counts."""
    return decisions.list_decision_sets(uow.session, job_id)


@router.post("/{job_id}/what-if", response_model=WhatIfOut)
def what_if(job_id: uuid.UUID, body: WhatIfIn, uow: UowDep) -> WhatIfOut:
    """Sweep one policy parameter over the stored scores: retained fraction and per-teacher acceptance per value."""
    return sweep.what_if(uow.session, job_id, body)


@router.get("/{job_id}/report", response_model=ReportOut, responses={200: {"content": {"text/markdown": {}}}})
def get_report(
    job_id: uuid.UUID,
    uow: UowDep,
    decision_set: DecisionSetParam = None,
    format: Literal["json", "markdown"] = "json",
) -> Any:
    """Teacher comparison: per teacher acceptance, score distributions, frontier zones, and a ranked recommendation."""
    built = report.build_report(uow.session, job_id, decision_set)
    if format == "markdown":
        return PlainTextResponse(report_markdown(built), media_type="text/markdown")
    return built


@router.get("/{job_id}/points", response_model=PointsOut)
def get_points(
    job_id: uuid.UUID,
    uow: UowDep,
    decision_set: DecisionSetParam = None,
    max_points: Annotated[
        int | None,
        Query(ge=1, description="at most about this many: every k-th sample's candidates (default: every one)"),
    ] = None,
) -> PointsOut:
    """Every candidate's IFD, r-IFD, frontier score, zone and decision in one response (the dashboard's plots)."""
    return points.candidate_points(uow.session, job_id, decision_set, max_points)


@router.get("/{job_id}/manifest", response_model=ManifestOut)
def get_manifest(job_id: uuid.UUID, uow: UowDep, decision_set: DecisionSetParam = None) -> ManifestOut:
    """Provenance of a decision set: job, student fingerprint, template, policy, counts by reason, code version."""
    return manifest.build_manifest(uow.session, job_id, decision_set)


@router.get("/{job_id}/card", response_class=PlainTextResponse, responses={200: {"content": {"text/markdown": {}}}})
def get_card(job_id: uuid.UUID, uow: UowDep, decision_set: DecisionSetParam = None) -> PlainTextResponse:
    """The dataset card (Markdown) of a decision set's retained samples."""
    return PlainTextResponse(manifest.card_markdown(uow.session, job_id, decision_set), media_type="text/markdown")


@router.get(
    "/{job_id}/export",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/x-ndjson": {}, "application/vnd.apache.parquet": {}, "application/zip": {}}}
    },
)
def export(
    job_id: uuid.UUID,
    format: Literal["jsonl", "parquet"] = "jsonl",
    decision: ExportDecision = "retained",
    scores: Annotated[bool, Query(description="add each sample's decision and chosen candidate's scores")] = False,
    decision_set: DecisionSetParam = None,
    bundle: Annotated[bool, Query(description="a zip of the data, manifest.json and the dataset card")] = False,
) -> StreamingResponse:
    """Stream the curated dataset in the input's own layout (the chosen candidate's text per sample)."""
    pinned, stream = exports.export_stream(
        job_id, format, decision, scores=scores, decision_set_id=decision_set, bundle=bundle
    )
    media = "application/vnd.apache.parquet" if format == "parquet" else "application/x-ndjson"
    filename = f"{job_id}-{decision}.{format}"
    if bundle:
        media, filename = "application/zip", f"{job_id}-{decision}-{format}.zip"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"', "X-Frontier-Decision-Set": str(pinned)}
    return StreamingResponse(stream, media_type=media, headers=headers)
