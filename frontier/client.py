"""A typed Python client of the v1 API: submit a dataset, follow the job, read its decisions, download the result.

    with Client.from_env() as frontier:                     # FRONTIER_SERVER, FRONTIER_API_KEY
        job = frontier.submit("data.jsonl", student="/models/student")      # streamed from disk
        job = frontier.submit_reference("/data/big.jsonl.gz", student="/models/student")   # read by the server
        job = frontier.wait(job.id, progress=lambda job: print(job.progress.scored))
        frontier.export(job.id, "retained.parquet", format="parquet")
        probe = frontier.create_probe(job.id, steps=100, seeds=3)            # docs/probes.md
        probe = frontier.wait_probe(job.id, probe["id"])

Responses are the API's own pydantic models (service.jobs.schemas), except probe runs, which come back as the
spec's ProbeOut JSON (plain dicts). Refusals are `FrontierError`s that carry the server's message, by status: 401
`AuthenticationError`, 403 `ForbiddenError`, 404 `NotFoundError`, 409 `ConflictError`, 413 `TooLargeError`, 422
`BadRequestError` (with the dataset line and field where the server names them), anything else `ServerError`, and
no answer at all `ServerUnreachableError`. Imports only httpx and the schemas: no torch, no database.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

import httpx
from pydantic import BaseModel

from core.decisions import DecisionName, ExportDecision
from core.files import atomic_write
from core.templates import TemplateName
from service.jobs.schemas import (
    DecisionSetList,
    DecisionSetOut,
    JobOut,
    JobPage,
    JobStatusName,
    ReportOut,
    SampleOut,
    SamplePage,
    WhatIfOut,
)

DEFAULT_SERVER = "http://127.0.0.1:8000"
FINISHED: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
# The server's page size limit (FRONTIER_PAGE_LIMIT_MAX defaults to 500): fewer round trips when iterating.
PAGE_SIZE = 500
CHUNK_BYTES = 1024 * 1024

ExportFormat = Literal["jsonl", "parquet"]
Model = TypeVar("Model", bound=BaseModel)
Polled = TypeVar("Polled")


class FrontierError(Exception):
    """A request the server refused or could not answer; `status` is the HTTP status (None: no answer)."""

    def __init__(self, message: str, *, status: int | None = None, line: int | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.line = line
        self.field = field


class ServerUnreachableError(FrontierError):
    """Nothing answered at the server's address."""


class AuthenticationError(FrontierError):
    """401: the API key is missing, unknown or revoked."""


class ForbiddenError(FrontierError):
    """403: a dataset path outside the server's FRONTIER_DATASET_ROOTS (or references turned off there)."""


class NotFoundError(FrontierError):
    """404: no such job or sample (or another tenant's)."""


class ConflictError(FrontierError):
    """409: the job's state does not allow it (e.g. exporting a running job), or an Idempotency-Key reused."""


class TooLargeError(FrontierError):
    """413: the upload or dataset is over a limit; the message names the FRONTIER_* setting."""


class BadRequestError(FrontierError):
    """422: bad dataset, student, policy or parameters; `line` and `field` point into the dataset."""


class ServerError(FrontierError):
    """Any other refusal: 5xx (503: the database or broker is down), or an unexpected status."""


# Statuses of a server that is there but briefly cannot answer (restarting, its database or broker down).
OUTAGE_STATUSES = (502, 503, 504)

_BY_STATUS: dict[int, type[FrontierError]] = {
    401: AuthenticationError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    413: TooLargeError,
}


class Client:
    """A connection to one Frontier server, optionally with an API key (sent as `Authorization: Bearer`)."""

    def __init__(
        self,
        server: str = DEFAULT_SERVER,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.server = server.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # A short connect timeout: a server that is not running should say so at once, not after a minute.
        self._http = httpx.Client(
            base_url=self.server,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=5.0),
            transport=transport,
        )

    @classmethod
    def from_env(cls, server: str | None = None, api_key: str | None = None, **options: Any) -> Client:
        """A client for `server` and `api_key`, else FRONTIER_SERVER and FRONTIER_API_KEY, else the local default."""
        return cls(
            server or os.environ.get("FRONTIER_SERVER") or DEFAULT_SERVER,
            api_key or os.environ.get("FRONTIER_API_KEY") or None,
            **options,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    # -- jobs -------------------------------------------------------------------------------------------------

    def submit(
        self,
        data: str | Path,
        *,
        student: str,
        policy: str | None = None,
        params: dict[str, Any] | None = None,
        template: TemplateName | None = None,
        rank_clip: int | None = None,
        format: ExportFormat | None = None,
        idempotency_key: str | None = None,
    ) -> JobOut:
        """Upload a JSONL (gzip or not) or Parquet dataset as a new job for `student` (a path on the server's side).

        The file is streamed from disk in blocks (httpx's multipart reads an open file 64 KiB at a time), never
        read whole into memory. A small file comes back `queued`; a large one `ingesting` (the server stores it
        in the background: `wait` follows it through that state).
        """
        path = Path(data)
        fields = {"student": student, "policy": policy, "template": template, "format": format}
        form = {name: value for name, value in fields.items() if value is not None}
        if params is not None:
            form["params"] = json.dumps(params)
        if rank_clip is not None:
            form["rank_clip"] = str(rank_clip)
        with path.open("rb") as handle:
            files = {"file": (path.name, handle, "application/octet-stream")}
            response = self._request("POST", "/v1/jobs", files=files, data=form, headers=_idempotency(idempotency_key))
        return JobOut.model_validate_json(response.content)

    def submit_reference(
        self,
        path: str,
        *,
        student: str,
        policy: str | None = None,
        params: dict[str, Any] | None = None,
        template: TemplateName | None = None,
        rank_clip: int | None = None,
        format: ExportFormat | None = None,
        name: str | None = None,
        idempotency_key: str | None = None,
    ) -> JobOut:
        """A new job over a dataset file already on the server's machine (`path` there, under its dataset roots).

        Nothing is uploaded: the server reads the file itself (JSONL, gzip JSONL or Parquet) in the background,
        so the job comes back `ingesting`. A path outside FRONTIER_DATASET_ROOTS is a ForbiddenError.
        """
        body: dict[str, Any] = {"dataset": {"path": path, "format": format}, "student": student}
        wanted = {"policy": policy, "params": params, "template": template, "rank_clip": rank_clip, "name": name}
        body.update({key: value for key, value in wanted.items() if value is not None})
        response = self._request("POST", "/v1/jobs", json=body, headers=_idempotency(idempotency_key))
        return JobOut.model_validate_json(response.content)

    def jobs(self, *, status: JobStatusName | None = None, limit: int | None = None) -> Iterator[JobOut]:
        """Every job (of the caller's tenant), newest first, fetched a page at a time; at most `limit`."""
        params = {"status": status} if status else {}
        yield from self._pages("/v1/jobs", JobPage, params, limit)

    def job(self, job_id: uuid.UUID | str) -> JobOut:
        """A job's status, progress, counts, student, policy, timings and error."""
        return self._get(f"/v1/jobs/{job_id}", JobOut)

    def cancel(self, job_id: uuid.UUID | str) -> JobOut:
        """Cancel a queued or running job (ConflictError once it has finished)."""
        return JobOut.model_validate_json(self._request("POST", f"/v1/jobs/{job_id}/cancel").content)

    def wait(
        self,
        job_id: uuid.UUID | str,
        *,
        progress: Callable[[JobOut], None] | None = None,
        poll_seconds: float = 1.0,
        timeout: float | None = None,
        outage_seconds: float = 60.0,
    ) -> JobOut:
        """Poll until the job has finished (succeeded, failed or cancelled), calling `progress` with every poll.

        The job goes on in the workers while the API restarts or its database blinks, so a watcher rides out
        an outage (server unreachable, 502/503/504, a dropped connection) of up to `outage_seconds` in a row.
        """
        return _poll_until_finished(
            lambda: self.job(job_id),
            lambda job: job.status,
            f"job {job_id}",
            progress=progress,
            poll_seconds=poll_seconds,
            timeout=timeout,
            outage_seconds=outage_seconds,
        )

    # -- decisions --------------------------------------------------------------------------------------------

    def samples(
        self,
        job_id: uuid.UUID | str,
        *,
        decision: DecisionName | None = None,
        reason: str | None = None,
        teacher: str | None = None,
        chosen: str | None = None,
        decision_set: int | None = None,
        limit: int | None = None,
    ) -> Iterator[SampleOut]:
        """The job's samples in input order, filtered, with every candidate's scores; at most `limit`."""
        wanted = {
            "decision": decision,
            "reason": reason,
            "teacher": teacher,
            "chosen": chosen,
            "decision_set": decision_set,
        }
        params = {name: value for name, value in wanted.items() if value is not None}
        yield from self._pages(f"/v1/jobs/{job_id}/samples", SamplePage, params, limit)

    def sample(self, job_id: uuid.UUID | str, sample_id: str, *, decision_set: int | None = None) -> SampleOut:
        """One sample: every candidate's texts and scores, the decision, the chosen candidate and the reason."""
        params = {"decision_set": decision_set} if decision_set is not None else {}
        return self._get(f"/v1/jobs/{job_id}/samples/{sample_id}", SampleOut, params)

    def decide(self, job_id: uuid.UUID | str, policy: str, params: dict[str, Any] | None = None) -> DecisionSetOut:
        """Run `policy` over the job's stored scores as a new decision set (no rescoring); it becomes the latest."""
        body = {"policy": policy, "params": params}
        return DecisionSetOut.model_validate_json(self._request("POST", f"/v1/jobs/{job_id}/decide", json=body).content)

    def decision_sets(self, job_id: uuid.UUID | str) -> list[DecisionSetOut]:
        """The job's decision sets, oldest (its own) first."""
        return self._get(f"/v1/jobs/{job_id}/decision-sets", DecisionSetList).items

    def what_if(
        self,
        job_id: uuid.UUID | str,
        policy: str,
        param: str,
        values: list[Any],
        params: dict[str, Any] | None = None,
    ) -> WhatIfOut:
        """Retained fraction and per-teacher acceptance at each value of one policy parameter; nothing is written."""
        body = {"policy": policy, "params": params, "sweep": {"param": param, "values": values}}
        return WhatIfOut.model_validate_json(self._request("POST", f"/v1/jobs/{job_id}/what-if", json=body).content)

    def report(self, job_id: uuid.UUID | str, *, decision_set: int | None = None) -> ReportOut:
        """The teacher comparison: acceptance, score distributions, frontier zones and the ranking."""
        params = {"decision_set": decision_set} if decision_set is not None else {}
        return self._get(f"/v1/jobs/{job_id}/report", ReportOut, params)

    def report_markdown(self, job_id: uuid.UUID | str, *, decision_set: int | None = None) -> str:
        """The teacher comparison as Markdown."""
        params: dict[str, Any] = {"format": "markdown"}
        if decision_set is not None:
            params["decision_set"] = decision_set
        return self._request("GET", f"/v1/jobs/{job_id}/report", params=params).text

    # -- probe runs (docs/probes.md) ---------------------------------------------------------------------

    def create_probe(
        self, job_id: uuid.UUID | str, *, eval_set: str | Path | None = None, **params: Any
    ) -> dict[str, Any]:
        """Start a probe run on a succeeded job: fine-tune the student per condition and measure exact match.

        `params` are the budget fields (steps, batch_size, peak_lr, warmup_steps, schedule_steps, eval_every, seeds,
        held_out, max_new_tokens), `answer_pattern`, `decision_sets` (ids), `baselines` and `teachers` (names); None
        values are left to the server's defaults. `eval_set` is a local JSONL or Parquet file of {instruction, input,
        answer[, response]} rows, uploaded with the request (without one the server holds out `held_out` of the
        job's samples). Returns the ProbeOut as JSON.
        """
        body = {name: value for name, value in params.items() if value is not None}
        path = f"/v1/jobs/{job_id}/probes"
        if eval_set is None:
            response = self._request("POST", path, json=body)
        else:
            upload = Path(eval_set)
            if not upload.is_file():
                raise FileNotFoundError(f"eval set {upload}: no such file")
            form = {"params": json.dumps(body)} if body else {}
            with upload.open("rb") as handle:
                files = {"eval_set": (upload.name, handle, "application/octet-stream")}
                response = self._request("POST", path, files=files, data=form)
        return _json_object(response)

    def list_probes(self, job_id: uuid.UUID | str) -> list[dict[str, Any]]:
        """The job's probe runs (ProbeOut as JSON), newest first."""
        items = _json_object(self._request("GET", f"/v1/jobs/{job_id}/probes")).get("items")
        if not isinstance(items, list):
            raise ServerError(f"unexpected answer from {self.server}: a probe listing without items")
        return items

    def get_probe(self, job_id: uuid.UUID | str, probe_id: int | str) -> dict[str, Any]:
        """One probe run: status, progress, per-condition learning curves, results and cost (ProbeOut as JSON)."""
        return _json_object(self._request("GET", f"/v1/jobs/{job_id}/probes/{probe_id}"))

    def cancel_probe(self, job_id: uuid.UUID | str, probe_id: int | str) -> dict[str, Any]:
        """Cancel a queued or running probe run (ConflictError once it has finished)."""
        return _json_object(self._request("POST", f"/v1/jobs/{job_id}/probes/{probe_id}/cancel"))

    def wait_probe(
        self,
        job_id: uuid.UUID | str,
        probe_id: int | str,
        *,
        poll: float = 1.0,
        timeout: float | None = None,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        outage_seconds: float = 60.0,
    ) -> dict[str, Any]:
        """Poll until the probe run has finished (succeeded, failed or cancelled), calling `on_progress` each poll.

        Rides out a server outage of up to `outage_seconds` in a row, as `wait` does.
        """
        return _poll_until_finished(
            lambda: self.get_probe(job_id, probe_id),
            lambda probe: str(probe.get("status")),
            f"probe run {probe_id} of job {job_id}",
            progress=on_progress,
            poll_seconds=poll,
            timeout=timeout,
            outage_seconds=outage_seconds,
        )

    # -- export -----------------------------------------------------------------------------------------------

    def export(
        self,
        job_id: uuid.UUID | str,
        out: str | Path,
        *,
        format: ExportFormat = "jsonl",
        decision: ExportDecision = "retained",
        scores: bool = False,
        bundle: bool = False,
        decision_set: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Stream the curated dataset into `out` (a zip with `bundle`); returns the bytes written.

        The file appears only when complete: it is written beside `out` under a temporary name and renamed, so
        a refusal or a dropped connection leaves nothing behind. `progress` gets the bytes written so far.
        """
        params: dict[str, Any] = {"format": format, "decision": decision, "scores": scores, "bundle": bundle}
        if decision_set is not None:
            params["decision_set"] = decision_set
        written = 0
        with (
            atomic_write(Path(out), binary=True) as handle,
            self._stream(f"/v1/jobs/{job_id}/export", params) as blocks,
        ):
            for block in blocks:
                handle.write(block)
                written += len(block)
                if progress is not None:
                    progress(written)
        return written

    # -- transport --------------------------------------------------------------------------------------------

    def _get(self, path: str, model: type[Model], params: dict[str, Any] | None = None) -> Model:
        return model.model_validate_json(self._request("GET", path, params=params).content)

    def _pages(
        self, path: str, page: type[JobPage] | type[SamplePage], params: dict[str, Any], limit: int | None
    ) -> Iterator[Any]:
        """Items of a keyset-paginated listing, following `next_cursor` until the end or `limit`."""
        seen = 0
        cursor: str | None = None
        while True:
            size = PAGE_SIZE if limit is None else max(1, min(PAGE_SIZE, limit - seen))
            query = {**params, "limit": size, **({"cursor": cursor} if cursor else {})}
            fetched = self._get(path, page, query)
            for item in fetched.items:
                if limit is not None and seen >= limit:
                    return
                seen += 1
                yield item
            cursor = fetched.next_cursor
            if cursor is None or (limit is not None and seen >= limit):
                return

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self._transport_error(exc) from exc
        if response.is_error:
            raise self._refusal(response)
        return response

    @contextmanager
    def _stream(self, path: str, params: dict[str, Any]) -> Iterator[Iterator[bytes]]:
        """A GET's body block by block; refusals and a connection dropped mid-body are `FrontierError`s."""
        try:
            with self._http.stream("GET", path, params=params) as response:
                if response.is_error:
                    response.read()
                    raise self._refusal(response)
                yield response.iter_bytes(CHUNK_BYTES)
        except httpx.TransportError as exc:
            raise self._transport_error(exc) from exc

    def _transport_error(self, exc: httpx.TransportError) -> FrontierError:
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return ServerUnreachableError(
                f"cannot reach the Frontier server at {self.server}: {exc or type(exc).__name__}; "
                "is `frontier serve` running? (set the address with --server or FRONTIER_SERVER)"
            )
        return ServerError(f"lost the connection to the Frontier server at {self.server}: {exc or type(exc).__name__}")

    def _refusal(self, response: httpx.Response) -> FrontierError:
        """The error a refused request stands for, with the server's own message (service/app.py's body shape)."""
        status = response.status_code
        line = field = None
        try:
            detail = response.json().get("detail")
        except (ValueError, AttributeError):
            detail = None
        if isinstance(detail, dict):
            message = str(detail.get("message") or detail)
            line, field = detail.get("line"), detail.get("field")
        elif isinstance(detail, list) and detail:
            # FastAPI's own request validation: [{"loc": [...], "msg": ...}, ...]
            message = "; ".join(
                f"{'.'.join(str(p) for p in item.get('loc', [])[1:]) or 'request'}: {item.get('msg')}"
                for item in detail
                if isinstance(item, dict)
            )
        elif isinstance(detail, str):
            message = detail
        else:
            message = response.text.strip()[:500] or response.reason_phrase
        if status == 401:
            message += (
                " — this server needs a valid API key: pass --api-key or set FRONTIER_API_KEY "
                "(an administrator creates one with `frontier keys create --tenant TEAM`)"
            )
        kind = _BY_STATUS.get(status) or (BadRequestError if status in (400, 422) else ServerError)
        return kind(f"{message} (HTTP {status})", status=status, line=line, field=field)


def _poll_until_finished(
    fetch: Callable[[], Polled],
    status: Callable[[Polled], str],
    what: str,
    *,
    progress: Callable[[Polled], None] | None,
    poll_seconds: float,
    timeout: float | None,
    outage_seconds: float,
) -> Polled:
    """Fetch until the status is a finished one; an outage (unreachable, 502/503/504) is waited out for a while."""
    deadline = None if timeout is None else time.monotonic() + timeout
    down_since: float | None = None
    while True:
        try:
            current = fetch()
        except (ServerUnreachableError, ServerError) as exc:
            if exc.status not in (None, *OUTAGE_STATUSES):
                raise
            down_since = down_since or time.monotonic()
            if time.monotonic() - down_since >= outage_seconds:
                raise
            time.sleep(poll_seconds)
            continue
        down_since = None
        if progress is not None:
            progress(current)
        state = status(current)
        if state in FINISHED:
            return current
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"{what} is still {state} after {timeout:.0f}s")
        time.sleep(poll_seconds)


def _idempotency(key: str | None) -> dict[str, str]:
    return {"Idempotency-Key": key} if key else {}


def _json_object(response: httpx.Response) -> dict[str, Any]:
    """A response body that must be a JSON object (a server that answers anything else is a ServerError)."""
    try:
        value = response.json()
    except ValueError as exc:
        raise ServerError(f"the server answered {response.request.url.path} with something other than JSON") from exc
    if not isinstance(value, dict):
        raise ServerError(f"the server answered {response.request.url.path} with JSON that is not an object")
    return value
