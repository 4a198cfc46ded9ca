"""Alembic environment: the URL comes from service.settings (or `-x url=...`), the schema from service.models."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from service.db import get_engine
from service.models import Base
from service.settings import get_settings

target_metadata = Base.metadata


def _url() -> str:
    # A caller's URL (service.migrate.upgrade), then `alembic -x url=...`, then FRONTIER_DATABASE_URL.
    given: str | None = context.config.attributes.get("url")
    return given or context.get_x_argument(as_dictionary=True).get("url") or get_settings().database_dsn


def run_offline() -> None:
    """Emit SQL for review without a database connection (`alembic upgrade head --sql`)."""
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    # Batch mode lets later ALTERs work on SQLite, which rebuilds tables instead of altering them.
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # A rebuild drops the old table; with foreign keys enforced (service.db turns them on) that would cascade
        # and delete every row that references it: all of a job's samples and candidates. Off for the migration
        # (SQLite ignores the pragma inside a transaction, so before it), checked after, back on.
        connection.commit()
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()  # so that Alembic's transaction below is its own, committed when the migration ends
    try:
        with context.begin_transaction():
            context.run_migrations()
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"the migration left rows that break foreign keys: {broken[:5]}")
    finally:
        if sqlite:
            connection.rollback()  # nothing to keep: the check only reads
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()


def run_online() -> None:
    """Apply migrations over a live connection (a caller may hand one in through `config.attributes`)."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    with get_engine(_url()).connect() as connection:
        _run(connection)


if context.is_offline_mode():
    run_offline()
else:
    run_online()
