"""Serves the dashboard's page and static files; every number it shows comes from the /v1 API in the browser.

The files are public (they hold no data); the browser sends the user's API key with each /v1 call.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"

router = APIRouter(prefix="/dashboard", include_in_schema=False)


@router.get("")
def dashboard_redirect() -> RedirectResponse:
    """The page lives at /dashboard/ so its relative static links resolve."""
    return RedirectResponse("/dashboard/")


@router.get("/")
def dashboard() -> FileResponse:
    """The dashboard's single page (jobs, job plots, sample browser; routed by the URL fragment)."""
    # no-cache: a new release's page must not run against a cached older script.
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


def mount_dashboard(app: FastAPI) -> None:
    """Add the dashboard page at /dashboard/ and its static files at /dashboard/static/."""
    app.include_router(router)
    app.mount("/dashboard/static", StaticFiles(directory=STATIC), name="dashboard-static")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        """The service's front page is the dashboard."""
        return RedirectResponse("/dashboard/")
