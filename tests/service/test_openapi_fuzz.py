"""Schemathesis over the OpenAPI schema, on both deployments: whatever it sends, never a server error.

Driven through hypothesis directly (schemathesis' pytest plugin does not support this pytest yet): every
operation of the live schema gets up to `EXAMPLES` generated requests, positive and negative.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok

from service.app import create_app
from tests.services import Deployment

EXAMPLES = 25


def fuzz(operation: Any, server_errors: list[str]) -> int:
    """Send generated requests to one operation; returns how many were sent, records any 5xx."""
    label = f"{operation.method.upper()} {operation.path}"
    sent = 0

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
    )
    def call(case: Any) -> None:
        nonlocal sent
        response = case.call()
        sent += 1
        if response.status_code >= 500:
            server_errors.append(f"{label} -> {response.status_code}: {case.as_curl_command()}")

    call()
    return sent


def test_no_operation_answers_a_server_error(deployment: Deployment) -> None:
    api = schemathesis.openapi.from_asgi("/openapi.json", create_app())
    server_errors: list[str] = []
    operations = []
    for result in api.get_all_operations():
        assert isinstance(result, Ok), f"an operation schemathesis cannot read: {result}"
        operations.append(result.ok())
    sent = {f"{op.method} {op.path}": fuzz(op, server_errors) for op in operations}
    print(f"schemathesis: {sum(sent.values())} requests, {len(sent)} operations, {len(server_errors)} server errors")
    assert len(sent) >= 10, sent
    assert all(sent.values()), sent  # every operation was exercised
    assert not server_errors, "\n".join(server_errors[:20])
