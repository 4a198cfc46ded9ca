"""Domain errors the API maps onto HTTP statuses (see app.py)."""

from __future__ import annotations


class NotFoundError(LookupError):
    """A job or sample that does not exist (404)."""


class ConflictError(RuntimeError):
    """A request that does not fit the job's current state, e.g. exporting a running job (409)."""


class UnavailableError(RuntimeError):
    """A dependency (database, broker) that cannot be reached right now (503)."""
