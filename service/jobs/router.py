"""HTTP routes for jobs (v1): each route parses the request and calls one service function."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import ValidationError

from core.dataset import (
    DatasetError,
    DatasetFormat,
    LimitError,
    SampleRecord,
    detect_format,
    parse_dataset,
    parse_records,
)
from core.dataset_roots import DatasetPathRefusedError, resolve_dataset_path
from core.decisions import DecisionName, ExportDecision
from core.scores import MAX_RANK_CLIP
from core.templates import TEMPLATES
from service.auth import Caller
from service.db import UnitOfWork
from service.deps import CallerDep, SettingsDep, UowDep, job_access
from service.jobs import (
    decisions,
    exports,
    guards,
    ingest,
    lifecycle,
    manifest,
    points,
    presenters,
    queries,
    report,
    sweep,
    uploads,
)
from service.jobs.ingest import DatasetSource
from service.jobs.report_markdown import report_markdown
from service.jobs.repository import SampleFilter
from service.jobs.schemas import (
    DatasetRef,
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
from service.models import Job
from service.queue import enqueue_chunks, enqueue_ingest
from service.settings import Settings

# Every route needs the caller (an API key unless auth is off) and may only reach the caller's own jobs.
router = APIRouter(prefix="/v1/jobs", tags=["jobs"], dependencies=[Depends(job_access)])

# The smallest limit of a JSON body, whatever FRONTIER_SYNC_INGEST_BYTES says.
JSON_BODY_FLOOR = 1024 * 1024

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


def _form_text(fields: dict[str, str], name: str) -> str | None:
    return fields.get(name)


def _form_int(fields: dict[str, str], name: str) -> int | None:
    value = _form_text(fields, name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise DatasetError(f"expected an integer, got {value[:40]!r}", field=name) from None


def _request_hash(content_digest: str, name: str, dataset_format: str, asked: JobAsk) -> str:
    parts: list[Any] = [content_digest, name, dataset_format, asked.student, asked.policy, asked.params]
    parts.append(asked.template)
    if asked.rank_clip is not None:  # only when given, so a retry hashes as it did before the parameter existed
        parts.append(asked.rank_clip)
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class JobAsk:
    """What a create request asks for besides its dataset."""

    student: str
    policy: str | None
    params: dict[str, Any] | None
    template: str | None
    rank_clip: int | None
    tenant_id: int | None
    idempotency_key: str | None


def _form_ask(
    fields: dict[str, str], caller: Caller, idempotency_key: str | None
) -> tuple[JobAsk, DatasetFormat | None]:
    student = _form_text(fields, "student")
    if not student:
        raise DatasetError("missing: the student checkpoint directory", field="student")
    raw_params = _form_text(fields, "params")
    try:
        params = json.loads(raw_params) if raw_params else None
    except json.JSONDecodeError as exc:
        raise DatasetError(f"not valid JSON: {exc.msg}", field="params") from exc
    if params is not None and not isinstance(params, dict):
        raise DatasetError("expected a JSON object", field="params")
    fmt: DatasetFormat | None
    match _form_text(fields, "format"):
        case None:
            fmt = None
        case "jsonl" | "parquet" as given:
            fmt = given
        case _:
            raise DatasetError("expected 'jsonl' or 'parquet'", field="format")
    ask = JobAsk(
        student=student,
        policy=_form_text(fields, "policy"),
        params=params,
        template=_form_text(fields, "template"),
        rank_clip=_form_int(fields, "rank_clip"),
        tenant_id=caller.tenant_id,
        idempotency_key=idempotency_key,
    )
    return ask, fmt


def _create_inline(
    uow: UnitOfWork, settings: Settings, ask: JobAsk, records: list[SampleRecord], name: str, fmt: str, digest: str
) -> Job:
    """Store a parsed dataset's job whole (the synchronous path: samples, candidates and chunks in this request)."""
    return lifecycle.create_job(
        uow,
        settings,
        records=records,
        student_path=ask.student,
        policy=ask.policy,
        params=ask.params,
        template=ask.template,
        rank_clip=ask.rank_clip,
        dataset_name=name,
        dataset_format=fmt,
        tenant_id=ask.tenant_id,
        idempotency_key=ask.idempotency_key,
        request_hash=_request_hash(digest, name, fmt, ask),
        enqueue=lambda job_id, n_chunks: enqueue_chunks(job_id, n_chunks, settings),
    )


def _create_ingesting(uow: UnitOfWork, settings: Settings, ask: JobAsk, source: DatasetSource, digest: str) -> Job:
    """Store the job as `ingesting` and queue its ingest task once committed.

    A spooled upload that no new job takes (an Idempotency-Key replay, a refused student) is deleted by
    create_ingesting_job itself.
    """
    fmt = source.fmt or "jsonl"
    return ingest.create_ingesting_job(
        uow,
        settings,
        source=source,
        student_path=ask.student,
        policy=ask.policy,
        params=ask.params,
        template=ask.template,
        rank_clip=ask.rank_clip,
        dataset_format=fmt,
        tenant_id=ask.tenant_id,
        idempotency_key=ask.idempotency_key,
        request_hash=_request_hash(digest, source.name, fmt, ask),
        enqueue=lambda job_id: enqueue_ingest(job_id, settings),
    )


async def _create_from_upload(
    request: Request, uow: UnitOfWork, settings: Settings, caller: Caller, idempotency_key: str | None
) -> Job:
    """A multipart upload: spooled to disk as it arrives; parsed here when small, else ingested in the background."""
    spooled = await uploads.spool_multipart(
        request.stream(),
        request.headers.get("content-type", ""),
        settings.upload_folder,
        max_bytes=settings.max_upload_bytes,
    )
    handed_over = False
    try:
        ask, given = _form_ask(spooled.fields, caller, idempotency_key)
        head = await run_in_threadpool(uploads.read_head, spooled.path)
        fmt = given or detect_format(spooled.filename, head)
        inline = await run_in_threadpool(
            uploads.parse_inline, spooled.path, fmt, bound=settings.sync_ingest_bytes, limits=settings.limits
        )
        if inline:
            records = await run_in_threadpool(
                parse_dataset, spooled.path, fmt=given, name=spooled.filename, limits=settings.limits
            )
            return await run_in_threadpool(
                _create_inline, uow, settings, ask, records, spooled.filename, fmt, spooled.sha256
            )
        source = DatasetSource(path=spooled.path, fmt=fmt, name=spooled.filename, owned=True)
        job = await run_in_threadpool(_create_ingesting, uow, settings, ask, source, spooled.sha256)
        handed_over = True
        return job
    finally:
        if not handed_over:
            await run_in_threadpool(uploads.remove, spooled.path)


def _dataset_roots(settings: Settings) -> list[Path] | None:
    """Where referenced datasets may live: FRONTIER_DATASET_ROOTS; unset, anywhere when embedded, else nowhere."""
    if settings.dataset_roots is not None:
        return settings.dataset_roots
    if settings.database_url is None:
        return None
    raise DatasetPathRefusedError(
        "datasets by reference are off on this deployment: "
        "set FRONTIER_DATASET_ROOTS to the folders they may be read from"
    )


def _create_by_reference(uow: UnitOfWork, settings: Settings, ask: JobAsk, ref: DatasetRef, name: str) -> Job:
    """A dataset file on the server's machine, checked against the dataset roots; always ingested in the background."""
    path = resolve_dataset_path(ref.path, _dataset_roots(settings))
    stat = path.stat()
    # The file itself stands for its content in the Idempotency-Key hash: hashing gigabytes here would take seconds.
    digest = hashlib.sha256(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()
    fmt = ref.format or detect_format(path.name, uploads.read_head(path))
    source = DatasetSource(path=path, fmt=fmt, name=name or Path(ref.path).name, owned=False)
    return _create_ingesting(uow, settings, ask, source, digest)


async def _read_body(request: Request, limit: int, setting: str) -> bytes:
    """The whole request body, refused as soon as it passes `limit` bytes."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise LimitError(f"the JSON body is over {limit:,} bytes", limit=setting)
    return bytes(body)


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobOut,
    openapi_extra=_CREATE_BODY,
    responses={
        403: {"description": "a referenced dataset outside FRONTIER_DATASET_ROOTS"},
        413: {"description": "upload too large"},
        422: {"description": "bad dataset, student or policy"},
    },
)
async def create_job(request: Request, uow: UowDep, settings: SettingsDep, caller: CallerDep) -> JobOut:
    """Create a curation job from an uploaded dataset (multipart), inline samples or a dataset path (JSON); 202.

    An upload is streamed to disk as it arrives. Up to FRONTIER_SYNC_INGEST_BYTES (decoded) it is parsed and
    stored in the request, so a bad file is a 422 naming its line and field and the job comes back `queued`;
    a larger one, or a dataset by reference, comes back `ingesting` and is parsed and stored by an ingest task
    (a bad record then fails the job with its line and field, and leaves no samples). With an `Idempotency-Key`
    header, the same key and request return the job it created; the same key with another request is a 409.
    """
    idempotency_key = request.headers.get("idempotency-key")
    if idempotency_key is not None and not 0 < len(idempotency_key.strip()) <= 200:
        raise DatasetError("expected 1 to 200 characters", field="Idempotency-Key")
    content_type = request.headers.get("content-type", "")
    multipart = content_type.startswith("multipart/form-data")
    # Inline samples are parsed in memory, so a JSON body is held to the in-request size, not the upload size
    # (never under JSON_BODY_FLOOR, so a dataset reference or a few samples always fit).
    limit, setting = (settings.max_upload_bytes, "FRONTIER_MAX_UPLOAD_BYTES")
    json_limit = max(settings.sync_ingest_bytes, JSON_BODY_FLOOR)
    if not multipart and json_limit < limit:
        limit, setting = json_limit, "FRONTIER_SYNC_INGEST_BYTES"
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        if multipart:
            raise uploads.too_large(int(length), limit)
        raise LimitError(f"the JSON body is {int(length):,} bytes, over {limit:,}", limit=setting)
    if multipart:
        job = await _create_from_upload(request, uow, settings, caller, idempotency_key)
        return presenters.job_out(job)
    try:
        body = JobCreate.model_validate_json(await _read_body(request, limit, setting))
    except ValidationError as exc:
        first = exc.errors()[0]
        raise DatasetError(first["msg"], field=".".join(str(p) for p in first["loc"]) or None) from exc
    if (body.samples is None) == (body.dataset is None):
        raise DatasetError(
            "give exactly one of `samples` (records inline) and `dataset` (a file on the server)", field="samples"
        )
    ask = JobAsk(
        student=body.student,
        policy=body.policy,
        params=body.params,
        template=body.template,
        rank_clip=body.rank_clip,
        tenant_id=caller.tenant_id,
        idempotency_key=idempotency_key,
    )
    if body.dataset is not None:
        job = await run_in_threadpool(_create_by_reference, uow, settings, ask, body.dataset, body.name)
        return presenters.job_out(job)
    assert body.samples is not None
    records = parse_records(body.samples, limits=settings.limits)
    digest = hashlib.sha256(json.dumps(body.samples, sort_keys=True).encode()).hexdigest()
    job = await run_in_threadpool(_create_inline, uow, settings, ask, records, body.name, "json", digest)
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
