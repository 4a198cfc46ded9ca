"""Request dependencies: settings and the request's unit of work (the API's one place that commits)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends

from service.db import UnitOfWork, unit_of_work
from service.settings import Settings, get_settings


def _uow() -> Iterator[UnitOfWork]:
    with unit_of_work() as uow:
        yield uow


# Function scope: the transaction commits (and queued tasks are sent) before the response goes out.
UowDep = Annotated[UnitOfWork, Depends(_uow, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
