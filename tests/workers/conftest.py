"""Fixtures of the worker tests outside scoring/ (defined in tests/services.py, shared with tests/service)."""

from tests.services import client, deployment, postgres_url, redis_url, small_student

__all__ = ["client", "deployment", "postgres_url", "redis_url", "small_student"]
