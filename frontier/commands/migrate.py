"""`frontier migrate`: bring the configured database's schema up to date (its own deployment step)."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add the `migrate` subcommand."""
    parser = subparsers.add_parser(
        "migrate",
        help="apply the database migrations (FRONTIER_DATABASE_URL, default the embedded SQLite file)",
    )
    parser.add_argument("--revision", default="head", help="target revision (default: head)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Upgrade the schema and print the revision the database is at."""
    from service import migrate

    migrate.upgrade(revision=args.revision)
    print(f"database at revision {migrate.current_revision()}")
    return 0
