"""API keys, tenant isolation and Idempotency-Key, on both deployments with authentication on."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from frontier.cli import main as frontier
from service import auth
from service.app import create_app
from service.db import session_scope
from service.models import ApiKey, Job
from service.settings import get_settings
from tests.service.test_jobs_api import run_job
from tests.services import Deployment, as_jsonl, example_records


@pytest.fixture
def keyed(deployment: Deployment, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """A client on the current deployment with API keys required."""
    monkeypatch.setenv("FRONTIER_AUTH", "keys")
    get_settings.cache_clear()
    with TestClient(create_app()) as client:
        yield client


def new_key(tenant: str) -> dict[str, str]:
    """A key of a tenant of this test's own (the Postgres database lasts the whole session)."""
    with session_scope() as session:
        return {"Authorization": f"Bearer {auth.create_key(session, f'{tenant}-{uuid.uuid4().hex[:8]}', 'test')}"}


def submit(client: TestClient, student: Path, headers: dict[str, str], records: list[dict[str, Any]]) -> Any:
    return client.post(
        "/v1/jobs", files={"file": ("d.jsonl", as_jsonl(records))}, data={"student": str(student)}, headers=headers
    )


def test_requests_without_a_valid_key_are_401(keyed: TestClient) -> None:
    alice = new_key("alice")
    prefix = alice["Authorization"].split("_")[1]
    with session_scope() as session:
        assert auth.revoke_key(session, prefix)
    for headers, says in [
        ({}, "missing API key"),
        ({"Authorization": "Bearer nonsense"}, "malformed API key"),
        ({"X-API-Key": "fck_00000000_guessed"}, "invalid API key"),
        (alice, "revoked"),
    ]:
        for method, path in [("GET", "/v1/jobs"), ("GET", "/v1/policies"), ("POST", "/v1/jobs")]:
            response = keyed.request(method, path, headers=headers)
            assert response.status_code == 401, (headers, path, response.text)
            assert says in response.json()["detail"]["message"]
            assert response.headers["www-authenticate"] == "Bearer"
    assert keyed.get("/healthz").status_code == 200  # liveness needs no key


def test_keys_are_stored_hashed(keyed: TestClient) -> None:
    headers = new_key("alice")
    key = headers["Authorization"].removeprefix("Bearer ")
    with session_scope() as session:
        stored = session.execute(select(ApiKey.prefix, ApiKey.key_hash)).all()
    assert all(key not in (row.prefix, row.key_hash) for row in stored)
    assert auth.hash_key(key) in {row.key_hash for row in stored}
    assert keyed.get("/v1/jobs", headers={"X-API-Key": key}).status_code == 200  # either header works


def test_tenants_never_see_each_others_jobs(keyed: TestClient, small_student: Path) -> None:
    alice, bob = new_key("alice"), new_key("bob")
    created = submit(keyed, small_student, alice, example_records(3, start=120))
    assert created.status_code == 202, created.text
    job = created.json()
    run_job(job)
    job_id = job["id"]
    sample_id = keyed.get(f"/v1/jobs/{job_id}/samples", headers=alice).json()["items"][0]["sample_id"]

    reads = [
        f"/v1/jobs/{job_id}",
        f"/v1/jobs/{job_id}/samples",
        f"/v1/jobs/{job_id}/samples/{sample_id}",
        f"/v1/jobs/{job_id}/export",
        f"/v1/jobs/{job_id}/report",
        f"/v1/jobs/{job_id}/manifest",
        f"/v1/jobs/{job_id}/card",
        f"/v1/jobs/{job_id}/decision-sets",
    ]
    writes = [
        (f"/v1/jobs/{job_id}/cancel", None),
        (f"/v1/jobs/{job_id}/decide", {"policy": "ifd_topk"}),
        (f"/v1/jobs/{job_id}/what-if", {"policy": "ifd_topk", "sweep": {"param": "k_percent", "values": [10]}}),
    ]
    for path in reads:
        assert keyed.get(path, headers=alice).status_code == 200, path
        answer = keyed.get(path, headers=bob)
        assert answer.status_code == 404, (path, answer.text)
        assert answer.json()["detail"]["message"] == f"job {job_id} not found"
    sets_before = len(keyed.get(f"/v1/jobs/{job_id}/decision-sets", headers=alice).json()["items"])
    for path, body in writes:
        assert keyed.post(path, json=body, headers=bob).status_code == 404, path
    # Bob's attempts changed nothing of Alice's.
    assert keyed.get(f"/v1/jobs/{job_id}", headers=alice).json()["status"] == "succeeded"
    assert len(keyed.get(f"/v1/jobs/{job_id}/decision-sets", headers=alice).json()["items"]) == sets_before
    assert [j["id"] for j in keyed.get("/v1/jobs", headers=alice).json()["items"]] == [job_id]
    assert keyed.get("/v1/jobs", headers=bob).json()["items"] == []


def test_idempotency_key_returns_the_same_job_or_409(keyed: TestClient, small_student: Path) -> None:
    alice, bob = new_key("alice"), new_key("bob")
    records = example_records(2, start=130)
    with session_scope() as session:
        jobs_before = int(session.scalar(select(func.count()).select_from(Job)) or 0)
    first = submit(keyed, small_student, {**alice, "Idempotency-Key": "upload-1"}, records)
    again = submit(keyed, small_student, {**alice, "Idempotency-Key": "upload-1"}, records)
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]

    other = submit(keyed, small_student, {**alice, "Idempotency-Key": "upload-1"}, example_records(2, start=140))
    assert other.status_code == 409, other.text
    assert "upload-1" in other.json()["detail"]["message"]
    # The same key is another tenant's own namespace.
    bobs = submit(keyed, small_student, {**bob, "Idempotency-Key": "upload-1"}, records)
    assert bobs.status_code == 202
    assert bobs.json()["id"] != first.json()["id"]
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == jobs_before + 2

    too_long = submit(keyed, small_student, {**alice, "Idempotency-Key": "k" * 201}, records)
    assert too_long.status_code == 422
    assert too_long.json()["detail"]["field"] == "Idempotency-Key"


def test_keys_cli_creates_lists_and_revokes(
    keyed: TestClient, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert frontier(["keys", "create", "--tenant", "carol", "--name", "ci"]) == 0
    key = capsys.readouterr().out.strip()
    assert key.startswith("fck_")
    assert keyed.get("/v1/jobs", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    prefix = key.split("_")[1]
    assert frontier(["keys", "list"]) == 0
    listed = capsys.readouterr().out
    assert prefix in listed
    assert "carol" in listed
    assert key not in listed
    assert frontier(["keys", "revoke", prefix]) == 0
    assert keyed.get("/v1/jobs", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    assert frontier(["keys", "revoke", prefix]) == 1  # already revoked


def test_serve_without_keys_refuses_a_public_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("FRONTIER_DATABASE_URL", "FRONTIER_BROKER_URL", "FRONTIER_AUTH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FRONTIER_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    assert frontier(["serve", "--host", "0.0.0.0", "--no-worker", "--no-migrate"]) == 2
    assert "refusing to serve on 0.0.0.0 without API keys" in capsys.readouterr().err
    get_settings.cache_clear()


def test_auth_default_follows_the_deployment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("FRONTIER_AUTH", raising=False)
    monkeypatch.delenv("FRONTIER_DATABASE_URL", raising=False)
    monkeypatch.setenv("FRONTIER_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    assert get_settings().auth_required is False  # embedded: loopback, no keys
    monkeypatch.setenv("FRONTIER_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1/none")
    get_settings.cache_clear()
    assert get_settings().auth_required is True  # a real deployment needs keys
    get_settings.cache_clear()
