"""The FastAPI application: v1 routes, health and readiness, domain errors mapped onto HTTP statuses.

Only the project's own input errors (core.errors.InputError and its kin) are the client's fault; any other
exception is a bug and answers 500 with the request id that its logged traceback carries.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.requests import ClientDisconnect

from core.dataset import DatasetError, LimitError
from core.dataset_roots import ROOTS_SETTING, DatasetPathRefusedError
from core.errors import ConflictError, InputError, NotFoundError, UnavailableError
from service.auth import AuthError
from service.dashboard.router import mount_dashboard
from service.db import dispose_engines, get_engine
from service.jobs.router import router as jobs_router
from service.metrics import REQUEST_LATENCY, render
from service.policies import PolicyError
from service.policies.router import router as policies_router
from service.probes.router import router as probes_router
from service.queue import check_broker

logger = logging.getLogger(__name__)
REQUEST_ID_HEADER = "X-Request-ID"


def _error(code: int, message: str, **where: Any) -> JSONResponse:
    return JSONResponse(status_code=code, content={"detail": {"message": message, **where}})


@asynccontextmanager
async def _lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield
    dispose_engines()


def create_app() -> FastAPI:
    """A new API application (engines are created lazily, in the serving process)."""
    app = FastAPI(
        title="Frontier Curator",
        version="1",
        summary="Keep the teacher outputs a student model can learn from.",
        description="A web dashboard of jobs, their plots and their samples is served at [/dashboard/](/dashboard/).",
        lifespan=_lifespan,
    )
    app.include_router(jobs_router)
    app.include_router(probes_router)
    app.include_router(policies_router)
    mount_dashboard(app)

    @app.middleware("http")
    async def _time_requests(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        # A caller's own id is kept (so its logs and ours line up); otherwise one is made for this request.
        request_id = request.headers.get(REQUEST_ID_HEADER, "")[:100] or uuid.uuid4().hex
        request.state.request_id = request_id
        response = await call_next(request)
        response.headers[REQUEST_ID_HEADER] = request_id
        # The route template, not the path: one series per endpoint, not one per job id.
        route = getattr(request.scope.get("route"), "path", "unmatched")
        REQUEST_LATENCY.labels(request.method, route, str(response.status_code)).observe(time.perf_counter() - started)
        return response

    @app.get("/metrics", tags=["health"], response_class=PlainTextResponse)
    async def metrics() -> Response:
        """Prometheus metrics: jobs by state, candidates and tokens scored, engine time, queue depth, latency."""
        return Response(await run_in_threadpool(render), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(DatasetError)
    async def _dataset_error(_: Request, exc: DatasetError) -> JSONResponse:
        return _error(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc), line=exc.line, field=exc.field)

    @app.exception_handler(LimitError)
    async def _limit_error(_: Request, exc: LimitError) -> JSONResponse:
        return _error(status.HTTP_413_CONTENT_TOO_LARGE, str(exc), line=exc.line, field=exc.field, limit=exc.limit)

    @app.exception_handler(AuthError)
    async def _auth_error(_: Request, exc: AuthError) -> JSONResponse:
        response = _error(status.HTTP_401_UNAUTHORIZED, str(exc))
        response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.exception_handler(PolicyError)
    async def _policy_error(_: Request, exc: PolicyError) -> JSONResponse:
        return _error(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc), field=exc.field or "policy")

    @app.exception_handler(DatasetPathRefusedError)
    async def _dataset_path_refused(_: Request, exc: DatasetPathRefusedError) -> JSONResponse:
        return _error(status.HTTP_403_FORBIDDEN, str(exc), field=exc.field, setting=ROOTS_SETTING)

    @app.exception_handler(ClientDisconnect)
    async def _client_gone(request: Request, _: ClientDisconnect) -> Response:
        # The client closed the connection mid-request: nobody reads this answer, and what it sent was discarded.
        logger.info("client disconnected during %s %s", request.method, request.url.path)
        return _error(status.HTTP_400_BAD_REQUEST, "the client disconnected before the request was complete")

    @app.exception_handler(InputError)
    async def _input_error(_: Request, exc: InputError) -> JSONResponse:
        return _error(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc), field=exc.field)

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
        # A bug, not the client's fault: log the traceback under an id the client can quote.
        request_id = getattr(request.state, "request_id", None) or uuid.uuid4().hex
        logger.error(
            "unhandled error in %s %s", request.method, request.url.path, exc_info=exc, extra={"request_id": request_id}
        )
        response = _error(
            status.HTTP_500_INTERNAL_SERVER_ERROR,
            f"internal error; quote request id {request_id} when reporting it",
            request_id=request_id,
        )
        response.headers[REQUEST_ID_HEADER] = request_id
        return response

    @app.exception_handler(NotFoundError)
    async def _not_found(_: Request, exc: NotFoundError) -> JSONResponse:
        return _error(status.HTTP_404_NOT_FOUND, str(exc))

    @app.exception_handler(ConflictError)
    async def _conflict(_: Request, exc: ConflictError) -> JSONResponse:
        return _error(status.HTTP_409_CONFLICT, str(exc))

    @app.exception_handler(UnavailableError)
    async def _unavailable(_: Request, exc: UnavailableError) -> JSONResponse:
        return _error(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc))

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def _database_unavailable(_: Request, exc: DBAPIError) -> JSONResponse:
        # Nothing was written (the request's transaction rolled back); the pool reconnects once the database is back.
        cause = str(exc.orig).strip().splitlines()[0][:200] if exc.orig is not None else type(exc).__name__
        response = _error(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"the database is unavailable; nothing was changed, retry later ({cause})",
            dependency="database",
        )
        response.headers["Retry-After"] = "5"
        return response

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], responses={503: {"description": "database or broker unreachable"}})
    async def readyz() -> JSONResponse:
        """Readiness: the database answers a query and the broker accepts a connection."""
        checks: dict[str, str] = {}

        def database() -> None:
            with get_engine().connect() as connection:
                connection.execute(text("SELECT 1"))

        for name, probe in (("database", database), ("broker", check_broker)):
            try:
                await run_in_threadpool(probe)
                checks[name] = "ok"
            except Exception as exc:
                checks[name] = f"unreachable: {type(exc).__name__}: {exc}"[:300]
        ready = all(value == "ok" for value in checks.values())
        code = status.HTTP_200_OK if ready else status.HTTP_503_SERVICE_UNAVAILABLE
        return JSONResponse(status_code=code, content={"status": "ready" if ready else "unavailable", **checks})

    return app
