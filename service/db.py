"""Database plumbing: the declarative base, per-process engines, and the one unit of work that commits."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from sqlalchemy import JSON, Engine, MetaData, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from service.settings import get_settings

# Deterministic constraint names, so migrations can name what they alter on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSONB on Postgres (indexable, compact), plain JSON text elsewhere.
JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    """Declarative base of every ORM model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSONType, list[Any]: JSONType}


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # WAL lets the API read while a worker writes; busy_timeout turns lock contention into waiting.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for `url`, with SQLite tuned for one writer and concurrent readers across processes."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


# Engines are created lazily in the process that uses them and recreated after a fork (pools break across fork).
_engines: dict[tuple[int, str], Engine] = {}
_sessionmakers: dict[tuple[int, str], sessionmaker[Session]] = {}


def get_engine(url: str | None = None) -> Engine:
    """This process's engine for `url` (default: the configured database)."""
    key = (os.getpid(), url or get_settings().database_dsn)
    engine = _engines.get(key)
    if engine is None:
        engine = _engines[key] = make_engine(key[1])
    return engine


def get_sessionmaker(url: str | None = None) -> sessionmaker[Session]:
    """This process's session factory for `url`; sessions keep loaded objects usable after commit."""
    key = (os.getpid(), url or get_settings().database_dsn)
    factory = _sessionmakers.get(key)
    if factory is None:
        factory = _sessionmakers[key] = sessionmaker(get_engine(key[1]), expire_on_commit=False)
    return factory


def dispose_engines() -> None:
    """Close every pooled connection of this process (tests, worker shutdown, settings changes)."""
    for key, engine in list(_engines.items()):
        if key[0] == os.getpid():
            engine.dispose()
    _engines.clear()
    _sessionmakers.clear()


class UnitOfWork:
    """A session plus actions to run only once its transaction has committed (e.g. enqueueing tasks)."""

    def __init__(self, session: Session):
        self.session = session
        self._after_commit: list[Callable[[], None]] = []

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run `action` after a successful commit; dropped if the transaction rolls back."""
        self._after_commit.append(action)

    def run_after_commit(self) -> None:
        """Run and clear the deferred actions."""
        actions, self._after_commit = self._after_commit, []
        for action in actions:
            action()


@contextmanager
def unit_of_work(url: str | None = None) -> Iterator[UnitOfWork]:
    """The one place that commits: commit on success, roll back on error, then run after-commit actions."""
    session = get_sessionmaker(url)()
    uow = UnitOfWork(session)
    try:
        yield uow
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
    uow.run_after_commit()


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A committing session scope for code that has nothing to defer (tasks, CLI)."""
    with unit_of_work(url) as uow:
        yield uow.session


def insert_ignoring_conflicts(session: Session, model: type[Base]) -> postgresql.Insert | sqlite.Insert:
    """INSERT ... ON CONFLICT DO NOTHING on the session's backend (Postgres or SQLite): first writer wins."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(model).on_conflict_do_nothing()
    return sqlite.insert(model).on_conflict_do_nothing()
