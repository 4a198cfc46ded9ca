"""The `frontier` command line: one subcommand per module in frontier/commands."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

# Each module exposes `register(subparsers)`, which adds its subcommand and sets `handler` on the parser.
# Kept as names so `frontier serve` never imports torch: commands import heavy modules inside their handler.
COMMAND_MODULES: tuple[str, ...] = (
    "frontier.commands.score",
    "frontier.commands.curate",
    "frontier.commands.serve",
    "frontier.commands.migrate",
    "frontier.commands.report",
    "frontier.commands.sweep",
    "frontier.commands.keys",
    "frontier.commands.jobs",
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
    try:
        code: int = args.handler(args)
    except BrokenPipeError:
        # The reader went away (`frontier jobs samples ... | head`): stop quietly like other Unix tools. Point
        # stdout at /dev/null so the interpreter's final flush does not raise a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a command killed by a closed pipe
    return code


if __name__ == "__main__":
    sys.exit(main())
