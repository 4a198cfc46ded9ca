"""The schema comes only from migrations, and the migrations match the models on both backends."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from service import schema
from service.db import get_engine
from service.models import Base
from tests.services import Deployment


def test_migrated_schema_matches_the_models(deployment: Deployment) -> None:
    assert schema.current_revision() == schema.head_revision()
    with get_engine().connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def test_downgrade_and_upgrade_round_trip(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'roundtrip.sqlite3'}"
    schema.upgrade(url)
    tables = set(inspect(get_engine(url)).get_table_names())
    assert tables >= {"students", "jobs", "chunks", "samples", "candidates", "decision_sets", "decisions"}
    command.downgrade(schema.alembic_config(url), "base")
    assert set(inspect(get_engine(url)).get_table_names()) == {"alembic_version"}
    schema.upgrade(url)
    assert schema.current_revision(url) == schema.head_revision()
