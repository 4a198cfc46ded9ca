"""The schema comes only from migrations, and the migrations match the models on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text

from service import migrate
from service.db import Base, get_engine
from tests.service.test_jobs_api import create, run_job
from tests.services import Deployment, example_records


def test_migrated_schema_matches_the_models(deployment: Deployment) -> None:
    assert migrate.current_revision() == migrate.head_revision()
    with get_engine().connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def test_downgrade_and_upgrade_round_trip(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'roundtrip.sqlite3'}"
    migrate.upgrade(url)
    tables = set(inspect(get_engine(url)).get_table_names())
    assert tables >= {"students", "jobs", "chunks", "samples", "candidates", "decision_sets", "decisions"}
    command.downgrade(migrate.alembic_config(url), "base")
    assert set(inspect(get_engine(url)).get_table_names()) == {"alembic_version"}
    migrate.upgrade(url)
    assert migrate.current_revision(url) == migrate.head_revision()


@pytest.mark.parametrize("deployment", ["embedded"], indirect=True)
def test_sqlite_table_rebuilds_keep_every_row(deployment: Deployment, client: TestClient, small_student: Path) -> None:
    # 0004 and 0005 rebuild `jobs` on SQLite; with foreign keys on, dropping the old table would cascade into
    # the job's samples, candidates, chunks and decisions. Down past both and up again: every row still there.
    job = create(client, small_student, example_records(3, start=176))
    run_job(job)
    url = deployment.settings.database_dsn
    tables = ("jobs", "chunks", "samples", "candidates", "decision_sets", "decisions")

    def rows() -> dict[str, int]:
        with get_engine(url).connect() as connection:
            return {name: connection.execute(text(f"SELECT count(*) FROM {name}")).scalar_one() for name in tables}

    before = rows()
    assert min(before.values()) > 0
    command.downgrade(migrate.alembic_config(url), "0003")
    assert rows() == before
    migrate.upgrade(url)
    assert rows() == before
    assert client.get(f"/v1/jobs/{job['id']}/samples").json()["items"]
