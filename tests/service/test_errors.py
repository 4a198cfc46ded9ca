"""Only the project's own input errors are 4xx: any other exception in a route is a 500 with a request id."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from core.errors import InputError
from service.app import REQUEST_ID_HEADER, create_app
from tests.services import Deployment


def _app_with_failing_routes() -> TestClient:
    app = create_app()

    @app.get("/boom/value-error")
    def value_error() -> None:
        # A bug that happens to be a ValueError must not pass for the client's fault.
        raise ValueError("int() of something internal")

    @app.get("/boom/key-error")
    def key_error() -> None:
        raise KeyError("missing internal key")

    @app.get("/boom/input-error")
    def input_error() -> None:
        raise InputError("limit: expected a positive number", field="limit")

    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize("path", ["/boom/value-error", "/boom/key-error"])
def test_an_internal_error_is_a_500_with_a_logged_request_id(
    deployment: Deployment, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = _app_with_failing_routes()
    with caplog.at_level(logging.ERROR, logger="service.app"):
        response = client.get(path)
    assert response.status_code == 500
    detail = response.json()["detail"]
    request_id = detail["request_id"]
    assert len(request_id) == 32
    assert request_id in detail["message"]
    assert response.headers[REQUEST_ID_HEADER] == request_id
    logged = [record for record in caplog.records if getattr(record, "request_id", None) == request_id]
    assert logged, "the traceback is logged under the request id"
    assert logged[0].exc_info is not None


def test_a_callers_request_id_is_kept(deployment: Deployment) -> None:
    client = _app_with_failing_routes()
    response = client.get("/boom/key-error", headers={REQUEST_ID_HEADER: "trace-123"})
    assert response.status_code == 500
    assert response.json()["detail"]["request_id"] == "trace-123"
    assert client.get("/healthz", headers={REQUEST_ID_HEADER: "trace-456"}).headers[REQUEST_ID_HEADER] == "trace-456"


def test_an_input_error_is_a_422_naming_its_field(deployment: Deployment) -> None:
    response = _app_with_failing_routes().get("/boom/input-error")
    assert response.status_code == 422
    assert response.json()["detail"] == {"message": "limit: expected a positive number", "field": "limit"}


def test_every_response_carries_a_request_id(client: TestClient) -> None:
    assert len(client.get("/healthz").headers[REQUEST_ID_HEADER]) == 32
