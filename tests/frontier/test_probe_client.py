"""frontier.client's probe methods on a stub transport: what they send, how they wait, how they fail."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.processes import free_port
from frontier.client import Client, ConflictError, FrontierError, ServerError

JOB = "00000000-0000-0000-0000-00000000000a"


def run(status: str, fraction: float) -> dict[str, Any]:
    """The parts of a ProbeOut the client reads."""
    return {"id": 4, "job_id": JOB, "status": status, "progress": {"fraction": fraction}}


def test_create_probe_sends_json_without_an_eval_set_and_a_form_with_one(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202, json=run("queued", 0.0))

    eval_set = tmp_path / "eval.jsonl"
    eval_set.write_text('{"instruction": "1+1?", "answer": "2"}\n', encoding="utf-8")
    with Client("http://frontier.test", transport=httpx.MockTransport(answer)) as client:
        assert client.create_probe(JOB, steps=4, seeds=None, decision_sets=[2])["id"] == 4
        client.create_probe(JOB, eval_set=eval_set, steps=4)
        client.create_probe(JOB, eval_set=eval_set)
    plain, uploaded, bare = seen
    assert plain.url.path == f"/v1/jobs/{JOB}/probes"
    assert plain.headers["content-type"] == "application/json"
    # None is left to the server's defaults.
    assert json.loads(plain.content) == {"steps": 4, "decision_sets": [2]}
    assert uploaded.headers["content-type"].startswith("multipart/form-data")
    body = uploaded.content.decode()
    assert 'name="eval_set"; filename="eval.jsonl"' in body
    assert '{"instruction": "1+1?", "answer": "2"}' in body
    assert 'name="params"' in body
    assert '{"steps": 4}' in body
    assert 'name="params"' not in bare.content.decode()


def test_reads_cancel_and_refusals(tmp_path: Path) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/cancel"):
            return httpx.Response(409, json={"detail": {"message": "probe run 4 already succeeded"}})
        if request.url.path.endswith("/probes"):
            return httpx.Response(200, json={"items": [run("running", 0.5)]})
        if request.url.path.endswith("/probes/5"):
            return httpx.Response(200, json=[1, 2])
        return httpx.Response(200, json=run("succeeded", 1.0))

    with Client("http://frontier.test", transport=httpx.MockTransport(answer)) as client:
        assert [p["status"] for p in client.list_probes(JOB)] == ["running"]
        assert client.get_probe(JOB, 4)["status"] == "succeeded"
        with pytest.raises(ConflictError, match=r"already succeeded \(HTTP 409\)"):
            client.cancel_probe(JOB, 4)
        with pytest.raises(ServerError, match="not an object"):
            client.get_probe(JOB, 5)
        with pytest.raises(FileNotFoundError, match=r"eval set .*missing\.jsonl: no such file"):
            client.create_probe(JOB, eval_set=tmp_path / "missing.jsonl")


def test_wait_probe_reports_each_poll_rides_out_a_503_and_times_out() -> None:
    states: Iterator[httpx.Response] = iter(
        [
            httpx.Response(200, json=run("queued", 0.0)),
            httpx.Response(503, json={"detail": {"message": "database unavailable"}}),
            httpx.Response(200, json=run("running", 0.5)),
            httpx.Response(200, json=run("succeeded", 1.0)),
        ]
    )
    seen: list[float] = []
    with Client("http://frontier.test", transport=httpx.MockTransport(lambda _: next(states))) as client:
        done = client.wait_probe(JOB, 4, poll=0.01, on_progress=lambda p: seen.append(p["progress"]["fraction"]))
    assert done["status"] == "succeeded"
    assert seen == [0.0, 0.5, 1.0]

    running = httpx.MockTransport(lambda _: httpx.Response(200, json=run("running", 0.5)))
    with Client("http://frontier.test", transport=running) as client, pytest.raises(TimeoutError, match="probe run 4"):
        client.wait_probe(JOB, 4, poll=0.01, timeout=0.05)


def test_wait_probe_gives_up_after_the_outage_allowance() -> None:
    with Client(f"http://127.0.0.1:{free_port()}") as client:
        started = time.monotonic()
        with pytest.raises(FrontierError, match="cannot reach"):
            client.wait_probe(JOB, 4, poll=0.1, outage_seconds=1.0)
    assert 1.0 <= time.monotonic() - started < 30
