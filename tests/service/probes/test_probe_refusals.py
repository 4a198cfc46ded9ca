"""Every bad probe request we could think of, on both deployments: a clear 4xx naming what was wrong, nothing written.

Each case is one request to `POST /v1/jobs/{job_id}/probes`. After it, probe_runs and probe_tasks hold exactly
what they held before, and no probe task reached the broker.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.settings import get_settings
from tests.service.probes.helpers import TINY, probe_rows, succeeded_job
from tests.service.test_jobs_api import create, queued
from tests.services import Deployment, example_records

GOOD_ITEM = {"instruction": "Add 2 and 3.", "answer": "5"}


def jsonl(*rows: object) -> bytes:
    return b"".join(json.dumps(row).encode() + b"\n" for row in rows)


@dataclass(frozen=True)
class Jobs:
    """The jobs a case may aim at: a succeeded one, another succeeded one, and one still queued."""

    done: str
    other: str
    queued: str
    other_decision_set: int


@dataclass(frozen=True)
class Case:
    """One bad request and what the answer must say (status, words of the message, and the detail's fields)."""

    status: int
    says: str
    json_body: Any = None
    params: dict[str, Any] | str | None = None
    eval_set: bytes | None = None
    raw_body: bytes | None = None
    job: Callable[[Jobs], str] = lambda jobs: jobs.done
    env: dict[str, str] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)


CASES: dict[str, Case] = {
    "job not finished": Case(409, "only a succeeded job can be probed", json_body=TINY, job=lambda jobs: jobs.queued),
    "eval set line missing its answer": Case(
        422,
        "line 2, field 'answer': missing",
        eval_set=jsonl(GOOD_ITEM, {"instruction": "Add 1 and 1."}),
        detail={"line": 2, "field": "answer"},
    ),
    "eval set line not JSON": Case(
        422, "line 3: not valid JSON", eval_set=jsonl(GOOD_ITEM, GOOD_ITEM) + b"{nope\n", detail={"line": 3}
    ),
    "eval set line with an unknown field": Case(
        422,
        "line 1, field 'question': unknown field",
        eval_set=jsonl({**GOOD_ITEM, "question": "?"}),
        detail={"line": 1, "field": "question"},
    ),
    "eval set empty": Case(422, "the eval set has no rows", eval_set=b"\n\n", detail={"field": "eval_set"}),
    "inline eval set item without instruction": Case(
        422,
        "eval_set item 2, field 'instruction': missing",
        json_body={**TINY, "eval_set": [GOOD_ITEM, {"answer": "1"}]},
        detail={"line": 2, "field": "instruction"},
    ),
    "inline eval set not a list": Case(
        422, "expected a list of objects", json_body={"eval_set": {"a": 1}}, detail={"field": "eval_set"}
    ),
    "eval set given twice": Case(
        422, "give the eval set once", params={"eval_set": [GOOD_ITEM]}, eval_set=jsonl(GOOD_ITEM)
    ),
    "steps over the limit": Case(
        413,
        "steps 100,000 is over 5,000 (limit: FRONTIER_PROBE_MAX_STEPS)",
        json_body={"steps": 100_000},
        detail={"limit": "FRONTIER_PROBE_MAX_STEPS", "field": "steps"},
    ),
    "steps over a lowered limit, in the multipart params": Case(
        413,
        "FRONTIER_PROBE_MAX_STEPS",
        params={"steps": 50},
        env={"FRONTIER_PROBE_MAX_STEPS": "10"},
        detail={"limit": "FRONTIER_PROBE_MAX_STEPS"},
    ),
    "seeds over the limit": Case(413, "FRONTIER_PROBE_MAX_SEEDS", json_body={"seeds": 6}),
    "too many conditions": Case(
        413,
        "the probe would train 5 conditions (3 teachers, original, union and 0 decision sets), over 4",
        json_body=TINY,
        env={"FRONTIER_PROBE_MAX_CONDITIONS": "4"},
        detail={"limit": "FRONTIER_PROBE_MAX_CONDITIONS"},
    ),
    "eval set over the item limit": Case(
        413,
        "FRONTIER_PROBE_MAX_EVAL_ITEMS",
        eval_set=jsonl(GOOD_ITEM, GOOD_ITEM, GOOD_ITEM),
        env={"FRONTIER_PROBE_MAX_EVAL_ITEMS": "2"},
    ),
    "inline eval set over the item limit": Case(
        413,
        "the eval set has 3 items, over 2",
        json_body={"eval_set": [GOOD_ITEM] * 3},
        env={"FRONTIER_PROBE_MAX_EVAL_ITEMS": "2"},
    ),
    "upload over the byte limit": Case(
        413,
        "FRONTIER_PROBE_MAX_REQUEST_BYTES",
        eval_set=jsonl(*[GOOD_ITEM] * 20),
        env={"FRONTIER_PROBE_MAX_REQUEST_BYTES": "200"},
    ),
    "JSON body over the byte limit": Case(
        413,
        "FRONTIER_PROBE_MAX_REQUEST_BYTES",
        json_body={"eval_set": [GOOD_ITEM] * 20},
        env={"FRONTIER_PROBE_MAX_REQUEST_BYTES": "200"},
    ),
    "answer pattern not a regex": Case(
        422, "field 'answer_pattern': not a valid regular expression", json_body={"answer_pattern": "(\\d+"}
    ),
    "answer pattern with two groups": Case(
        422, "at most one capturing group", json_body={"answer_pattern": "(a)(b)"}, detail={"field": "answer_pattern"}
    ),
    "answer pattern not a string": Case(422, "expected a string", json_body={"answer_pattern": 3}),
    "answer pattern that reads no answer in the job": Case(
        422,
        "none of the job's 16 original responses carries an answer that answer_pattern 'ZZZ(\\\\d+)' can read",
        json_body={**TINY, "answer_pattern": "ZZZ(\\d+)"},
        detail={"field": "eval_set"},
    ),
    "decision set of another job": Case(
        422,
        "has no decision set",
        json_body=None,  # built per run: the other job's decision set id
        detail={"field": "decision_sets"},
    ),
    "decision set that does not exist": Case(
        422, "has no decision set 999999", json_body={"decision_sets": [999999]}, detail={"field": "decision_sets"}
    ),
    "decision sets not a list": Case(422, "expected a list of decision set ids", json_body={"decision_sets": 3}),
    "decision set id not an integer": Case(422, "positive integers", json_body={"decision_sets": ["1"]}),
    "decision set id beyond BIGINT": Case(422, "positive integers", json_body={"decision_sets": [2**63]}),
    "teacher the job does not have": Case(
        422, "has no teacher 'nobody'", json_body={"teachers": ["nobody"]}, detail={"field": "teachers"}
    ),
    "teachers not a list": Case(422, "expected a non-empty list of teacher names", json_body={"teachers": "a"}),
    "teachers an empty list": Case(422, "expected a non-empty list of teacher names", json_body={"teachers": []}),
    "teacher name not a string": Case(422, "expected teacher names", json_body={"teachers": [3]}),
    "unknown parameter": Case(
        422, "field 'stepz': unknown probe parameter", json_body={"stepz": 4}, detail={"field": "stepz"}
    ),
    "budget value of the wrong type": Case(422, "field 'steps': expected an integer", json_body={"steps": "4"}),
    "warm-up not shorter than the run": Case(
        422, "expected fewer warm-up steps than steps", json_body={"steps": 4, "warmup_steps": 4}
    ),
    "learning rate out of range": Case(422, "expected 0 < peak_lr <= 1", json_body={"peak_lr": 2}),
    "zero steps": Case(422, "expected at least 1, got 0", json_body={"steps": 0}),
    "params not JSON": Case(422, "field 'params': not valid JSON", params="{steps: 4}"),
    "params a JSON list": Case(422, "expected a JSON object, got list", params="[1]"),
    "body not JSON": Case(422, "not valid JSON", raw_body=b"{steps"),
    "body a JSON list": Case(422, "expected a JSON object, got list", json_body=[TINY]),
}


def post(client: TestClient, job_id: str, case: Case, jobs: Jobs) -> Any:
    path = f"/v1/jobs/{job_id}/probes"
    if case.raw_body is not None:
        return client.post(path, content=case.raw_body, headers={"content-type": "application/json"})
    if case.eval_set is not None or case.params is not None:
        data = {}
        if case.params is not None:
            data["params"] = case.params if isinstance(case.params, str) else json.dumps(case.params)
        files = {"eval_set": ("eval.jsonl", case.eval_set, "application/x-ndjson")} if case.eval_set else None
        # A multipart request even without a file: the form's `params` field alone.
        return client.post(path, data=data, files=files or {"unused": ("", b"")})
    body = case.json_body
    if body is None:
        body = {**TINY, "decision_sets": [jobs.other_decision_set]}
    return client.post(path, json=body)


def test_every_bad_probe_request_is_refused_with_nothing_written(
    deployment: Deployment, client: TestClient, small_student: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = succeeded_job(client, small_student)
    other = succeeded_job(client, small_student, n=8, start=16)
    [other_set] = client.get(f"/v1/jobs/{other}/decision-sets").json()["items"]
    unfinished = create(client, small_student, example_records(4, start=24))["id"]
    jobs = Jobs(done=done, other=other, queued=unfinished, other_decision_set=other_set["id"])
    failures: list[str] = []
    for name, case in CASES.items():
        with monkeypatch.context() as patch:
            for key, value in case.env.items():
                patch.setenv(key, value)
            get_settings.cache_clear()
            rows, messages = probe_rows(), queued(deployment)
            response = post(client, case.job(jobs), case, jobs)
            get_settings.cache_clear()
        detail = response.json().get("detail")
        message = detail.get("message", "") if isinstance(detail, dict) else str(detail)
        problems = []
        if response.status_code != case.status:
            problems.append(f"status {response.status_code}, expected {case.status}")
        if case.says not in message:
            problems.append(f"message {message!r} does not say {case.says!r}")
        for key, value in case.detail.items():
            if not isinstance(detail, dict) or detail.get(key) != value:
                problems.append(f"detail[{key!r}] is {detail and detail.get(key)!r}, expected {value!r}")
        if probe_rows() != rows:
            problems.append(f"rows written: {rows} -> {probe_rows()}")
        if queued(deployment) != messages:
            problems.append("a probe task reached the broker")
        if problems:
            failures.append(f"{name}: {'; '.join(problems)}")
    assert not failures, "\n".join(failures)
    # And the same job takes a good request.
    assert client.post(f"/v1/jobs/{done}/probes", json=TINY).status_code == 202
