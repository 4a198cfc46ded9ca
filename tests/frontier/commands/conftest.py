"""Fixtures of the command tests: a live `frontier serve` for `frontier jobs` (tests/live_server.py)."""

from tests.live_server import frontier_server

__all__ = ["frontier_server"]
