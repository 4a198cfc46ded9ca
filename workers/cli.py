"""The `frontier` command line: one subcommand per module in workers/commands."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Each module exposes `register(subparsers)`, which adds its subcommand and sets `handler` on the parser.
# Kept as names so `frontier serve` never imports torch: commands import heavy modules inside their handler.
COMMAND_MODULES: tuple[str, ...] = (
    "workers.commands.score",
    "workers.commands.curate",
    "workers.commands.serve",
    "workers.commands.migrate",
    "workers.commands.report",
    "workers.commands.sweep",
    "workers.commands.keys",
    "workers.commands.jobs",
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every registered subcommand."""
    parser = argparse.ArgumentParser(prog="frontier", description="Student-judged curation of teacher outputs.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
