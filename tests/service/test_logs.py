"""Structured logs: JSON lines with the job id, for the API and the workers."""

from __future__ import annotations

import io
import json
import logging
import uuid

import pytest

from service.logs import JsonFormatter, configure
from service.settings import get_settings


def test_json_line_carries_message_job_id_chunk_and_exception() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("frontier.test.json")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.propagate = False
    job_id = uuid.uuid4()
    try:
        raise ValueError("bad chunk")
    except ValueError:
        logger.exception("job %s chunk %s failed", job_id, 3, extra={"job_id": job_id, "chunk": 3})
    logger.removeHandler(handler)

    line = json.loads(stream.getvalue())
    assert line["message"] == f"job {job_id} chunk 3 failed"
    assert line["job_id"] == str(job_id)
    assert line["chunk"] == "3"
    assert line["level"] == "error"
    assert line["logger"] == "frontier.test.json"
    assert "ValueError: bad chunk" in line["exception"]
    assert line["ts"].endswith("+00:00")


def test_configure_and_the_worker_signal_switch_formats(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    try:
        configure("json")
        assert isinstance(root.handlers[0].formatter, JsonFormatter)
        configure("text")
        assert not isinstance(root.handlers[0].formatter, JsonFormatter)
    finally:
        root.handlers[:] = saved
        root.setLevel(level)

    from workers.celery_app import _json_logs

    worker_logger = logging.getLogger("frontier.test.worker")
    worker_logger.addHandler(logging.StreamHandler(io.StringIO()))
    monkeypatch.setenv("FRONTIER_LOG_FORMAT", "json")
    get_settings.cache_clear()
    try:
        _json_logs(logger=worker_logger)
        assert all(isinstance(h.formatter, JsonFormatter) for h in worker_logger.handlers)
    finally:
        get_settings.cache_clear()
