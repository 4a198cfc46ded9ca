"""Fixtures of the CLI tests (defined in tests/services.py, shared with tests/service and tests/workers)."""

from tests.services import client, deployment, postgres_url, redis_url, small_student

__all__ = ["client", "deployment", "postgres_url", "redis_url", "small_student"]
