"""The project's own error family: every process raises these, the API maps them onto HTTP statuses.

Only an `InputError` (or a subclass) is the client's fault (4xx); anything else escaping a route is a bug
and answers 500 with a request id (service/app.py).
"""

from __future__ import annotations


class FrontierError(Exception):
    """Base of every error this project raises on purpose."""


class InputError(FrontierError, ValueError):
    """Input that cannot be used as given (422); `field` names the request field at fault when known."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFoundError(FrontierError, LookupError):
    """A job, sample or decision set that does not exist, or is another tenant's (404)."""


class ConflictError(FrontierError):
    """A request that does not fit the current state, e.g. exporting a running job (409)."""


class UnavailableError(FrontierError):
    """A dependency (database, broker) that cannot be reached right now (503)."""
